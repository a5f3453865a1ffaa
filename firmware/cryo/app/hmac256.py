"""HMAC-SHA256 (RFC 2104) for the app manifest, the config seal, the audit
trail and the command link's authentication.

The HMAC itself is micropython-lib's ``hmac`` on the board (frozen into the
image with ``require("hmac")``; from ``build/mpylib`` where the firmware
runs from files) and CPython's ``hmac`` on the host: one API, the same
bytes (tests compare them). Here only what neither gives on MicroPython: a
comparison whose time does not depend on where two digests differ
(micropython-lib's ``hmac`` has no ``compare_digest``) and lower-case hex.
Not on the safety path: it runs at boot, during a deploy and per command.
"""

import hashlib
import hmac


def new(key, msg=None):
    """An HMAC-SHA256 of ``msg`` under ``key`` (bytes): ``update(data)``,
    then ``digest()`` once (MicroPython's hashes cannot be copied)."""
    return hmac.new(key, msg, hashlib.sha256)


def hmac_sha256(key, msg):
    """One-shot HMAC-SHA256 of ``msg`` under ``key`` (both bytes) -> 32 bytes."""
    return hmac.new(key, msg, hashlib.sha256).digest()


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
