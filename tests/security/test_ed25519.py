"""The device's Ed25519 verifier (cryo/app/ed25519.py) under real MicroPython,
against RFC 8032's test vectors and signatures made by the host's
``cryptography`` package; every forgery and malformed input is refused."""

import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# RFC 8032, 7.1: TEST 1 (empty message) and TEST 2 (one byte)
RFC = [
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


def _cases():
    out = [(pk, msg, sig, True) for pk, msg, sig in RFC]
    for i in range(3):
        k = Ed25519PrivateKey.generate()
        pub = k.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        msg = bytes(range(i * 40, i * 40 + 37 * i))
        sig = k.sign(msg)
        out.append((pub.hex(), msg.hex(), sig.hex(), True))
        bad = bytearray(sig)
        bad[5] ^= 1
        out.append((pub.hex(), msg.hex(), bytes(bad).hex(), False))  # R changed
        bad = bytearray(sig)
        bad[40] ^= 1
        out.append((pub.hex(), msg.hex(), bytes(bad).hex(), False))  # S changed
        out.append((pub.hex(), (msg + b"!").hex(), sig.hex(), False))  # message changed
        other = Ed25519PrivateKey.generate().public_key()
        opub = other.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        out.append((opub.hex(), msg.hex(), sig.hex(), False))  # another key
    pk, msg, sig = RFC[0]
    out.append((pk, msg, sig[:64], False))  # truncated
    big_s = sig[:64] + "ff" * 32  # S >= L: malleability refused
    out.append((pk, msg, big_s, False))
    out.append(("ff" * 32, msg, sig, False))  # not a point
    return out


def test_verifier_agrees_with_rfc_and_cryptography(mpy):
    cases = _cases()
    got = mpy.run(
        """
import json
from binascii import unhexlify
from cryo.app import ed25519
out = []
for pk, msg, sig, _ in json.loads(%r):
    out.append(ed25519.verify(unhexlify(pk), unhexlify(msg), unhexlify(sig)))
result(out)
"""
        % json.dumps(cases)
    )
    assert got == [c[3] for c in cases]


def test_sha512_matches_fips_vectors(mpy):
    import hashlib

    msgs = [b"", b"abc", b"a" * 111, b"a" * 112, b"x" * 300]
    got = mpy.run(
        """
from cryo.app.ed25519 import sha512
from binascii import hexlify
result([hexlify(sha512(m)).decode() for m in %r])
"""
        % msgs
    )
    assert got == [hashlib.sha512(m).hexdigest() for m in msgs]
