"""Role PINs: a salted, iterated SHA-256 per role in a small file.

File (text, one line per role)::

    <role> <iterations> <salt hex> <hash hex>

hash = SHA-256 applied ``iterations`` times to ``salt + pin`` (MicroPython
has ``hashlib.sha256`` but no PBKDF2; 2000 rounds take ~10 ms on the unix
port, more on a board - acceptable for a login). The PIN itself is never
stored or logged. Written atomically (tmp + rename). Deny by default: a
role without an entry cannot log in.
"""

import hashlib
import os
from binascii import hexlify, unhexlify

from cryo.storage.schema import ROLES

ITERATIONS = 2000


def verifier(salt, pin, iterations):
    """The stored verifier of ``pin``: SHA-256 iterated over ``salt + pin``.

    The host computes the same bytes from the PIN the user types and the
    salt and iteration count the device sends with a challenge
    (``cryo.link.auth``), so the PIN never crosses the link.
    """
    h = salt + pin.encode()
    i = 0
    while i < iterations:
        h = hashlib.sha256(h).digest()
        i += 1
    return h


def _read(path):
    out = {}
    try:
        with open(path, "rb") as f:
            text = f.read().decode()
    except OSError:
        return out
    for line in text.split("\n"):
        parts = line.split()
        if len(parts) == 4 and parts[0] in ROLES:
            try:
                out[parts[0]] = (int(parts[1]), unhexlify(parts[2]), unhexlify(parts[3]))
            except ValueError:
                pass
    return out


def entry(path, role):
    """``(iterations, salt, verifier)`` stored for ``role``, or None."""
    return _read(path).get(role)


def set_pin(path, role, pin, salt=None, iterations=ITERATIONS):
    """Store ``role``'s PIN (4..12 digits) as a salted hash."""
    if role not in ROLES:
        raise ValueError("unknown role %r: allowed operator, engineer, service" % (role,))
    if not (isinstance(pin, str) and pin.isdigit() and 4 <= len(pin) <= 12):
        raise ValueError("PIN for %s must be 4..12 digits" % role)
    if salt is None:
        salt = os.urandom(16)
    entries = _read(path)
    entries[role] = (iterations, salt, verifier(salt, pin, iterations))
    lines = []
    for r in sorted(entries):
        it, s, h = entries[r]
        lines.append("%s %d %s %s" % (r, it, hexlify(s).decode(), hexlify(h).decode()))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(("\n".join(lines) + "\n").encode())
    os.rename(tmp, path)


def check_pin(path, role, pin):
    """True only if ``role`` has a stored PIN and ``pin`` matches it."""
    entry = _read(path).get(role)
    if entry is None or not isinstance(pin, str):
        return False
    it, salt, want = entry
    got = verifier(salt, pin, it)
    diff = 0
    i = 0
    while i < len(want):  # constant time in the PIN
        diff |= got[i] ^ want[i]
        i += 1
    return diff == 0 and len(got) == len(want)
