"""Register/frame-level emulations of the virtual board's SPI chips.

Each emulator exposes ``select()``, ``deselect()`` and
``transfer(wbuf, rbuf)`` (full-duplex bytes while selected); the virtual
board's ``machine.SPI`` (or :mod:`chips.bus` in tests) routes transfers to the
chip whose CS pin is low. Real drivers run against them unchanged.
"""
