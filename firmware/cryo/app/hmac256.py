"""HMAC-SHA256 (RFC 2104) for MicroPython, which ships sha256 but no hmac.

Used to authenticate the app manifest with the per-device key provisioned
at first flash. The same code runs under CPython on the host (tests compare
it with CPython's ``hmac`` module), so host and device agree byte for byte.
Not on the safety path: it runs once at boot and during a deploy.
"""

import hashlib

from micropython import const

_BLOCK = const(64)  # SHA-256 block size in bytes (RFC 2104 "B")


class HMAC:
    """Incremental HMAC-SHA256: ``update(data)`` then ``digest()``."""

    def __init__(self, key, msg=None):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        pad = bytearray(_BLOCK)
        pad[: len(key)] = key
        ipad = bytearray(_BLOCK)
        opad = bytearray(_BLOCK)
        i = 0
        while i < _BLOCK:
            ipad[i] = pad[i] ^ 0x36
            opad[i] = pad[i] ^ 0x5C
            i += 1
        self._opad = bytes(opad)
        self._inner = hashlib.sha256(bytes(ipad))
        if msg is not None:
            self._inner.update(msg)

    def update(self, data):
        self._inner.update(data)

    def digest(self):
        outer = hashlib.sha256(self._opad)
        outer.update(self._inner.digest())
        return outer.digest()

    def hexdigest(self):
        return hexlify(self.digest())


def hmac_sha256(key, msg):
    """One-shot HMAC-SHA256 of ``msg`` under ``key`` (both bytes) → 32 bytes."""
    return HMAC(key, msg).digest()


def hexlify(b):
    """Lower-case hex string of bytes (binascii differs between ports)."""
    import binascii

    return binascii.hexlify(b).decode()


def equal(a, b):
    """Compare two digests in time independent of where they differ."""
    if len(a) != len(b):
        return False
    d = 0
    i = 0
    n = len(a)
    while i < n:
        d |= a[i] ^ b[i]
        i += 1
    return d == 0
