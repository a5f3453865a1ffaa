"""Storage that survives power loss (docs/storage.md).

* ``records`` - binary record layouts of the treatment log (shared with the host)
* ``log``     - TreatmentLog: append-only segment files, power-cut safe
* ``schema``  - configuration schema: type, unit, range and role per field
* ``config``  - CRC-checked atomic config files, last-known-good fallback
* ``audit``   - hash-chained audit trail
* ``roles``   - salted PIN hashes per role
"""
