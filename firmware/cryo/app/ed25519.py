"""Ed25519 signature verification (RFC 8032, section 5.1.7) for MicroPython.

Verification only, for the release manifest at update time (never at boot,
never in the control path): MicroPython has arbitrary-precision integers
but neither ``hashlib.sha512`` nor ``pow`` with three arguments on every
port, so SHA-512 (FIPS 180-4) and modular exponentiation are written here.
Points in extended homogeneous coordinates (RFC 8032, 5.1.4). Follows the
RFC's reference verification; the host signs with the ``cryptography``
package and the tests check both agree. Not constant time: it handles only
public data (the signature, the public key, the message).
"""

from micropython import const

_B = const(32)  # bytes of an encoded point or scalar
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
_SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_MASK64 = 0xFFFFFFFFFFFFFFFF

# SHA-512 round constants and initial hash (FIPS 180-4, 4.2.3 and 5.3.5)
_K = (
    0x428A2F98D728AE22,
    0x7137449123EF65CD,
    0xB5C0FBCFEC4D3B2F,
    0xE9B5DBA58189DBBC,
    0x3956C25BF348B538,
    0x59F111F1B605D019,
    0x923F82A4AF194F9B,
    0xAB1C5ED5DA6D8118,
    0xD807AA98A3030242,
    0x12835B0145706FBE,
    0x243185BE4EE4B28C,
    0x550C7DC3D5FFB4E2,
    0x72BE5D74F27B896F,
    0x80DEB1FE3B1696B1,
    0x9BDC06A725C71235,
    0xC19BF174CF692694,
    0xE49B69C19EF14AD2,
    0xEFBE4786384F25E3,
    0x0FC19DC68B8CD5B5,
    0x240CA1CC77AC9C65,
    0x2DE92C6F592B0275,
    0x4A7484AA6EA6E483,
    0x5CB0A9DCBD41FBD4,
    0x76F988DA831153B5,
    0x983E5152EE66DFAB,
    0xA831C66D2DB43210,
    0xB00327C898FB213F,
    0xBF597FC7BEEF0EE4,
    0xC6E00BF33DA88FC2,
    0xD5A79147930AA725,
    0x06CA6351E003826F,
    0x142929670A0E6E70,
    0x27B70A8546D22FFC,
    0x2E1B21385C26C926,
    0x4D2C6DFC5AC42AED,
    0x53380D139D95B3DF,
    0x650A73548BAF63DE,
    0x766A0ABB3C77B2A8,
    0x81C2C92E47EDAEE6,
    0x92722C851482353B,
    0xA2BFE8A14CF10364,
    0xA81A664BBC423001,
    0xC24B8B70D0F89791,
    0xC76C51A30654BE30,
    0xD192E819D6EF5218,
    0xD69906245565A910,
    0xF40E35855771202A,
    0x106AA07032BBD1B8,
    0x19A4C116B8D2D0C8,
    0x1E376C085141AB53,
    0x2748774CDF8EEB99,
    0x34B0BCB5E19B48A8,
    0x391C0CB3C5C95A63,
    0x4ED8AA4AE3418ACB,
    0x5B9CCA4F7763E373,
    0x682E6FF3D6B2B8A3,
    0x748F82EE5DEFB2FC,
    0x78A5636F43172F60,
    0x84C87814A1F0AB72,
    0x8CC702081A6439EC,
    0x90BEFFFA23631E28,
    0xA4506CEBDE82BDE9,
    0xBEF9A3F7B2C67915,
    0xC67178F2E372532B,
    0xCA273ECEEA26619C,
    0xD186B8C721C0C207,
    0xEADA7DD6CDE0EB1E,
    0xF57D4F7FEE6ED178,
    0x06F067AA72176FBA,
    0x0A637DC5A2C898A6,
    0x113F9804BEF90DAE,
    0x1B710B35131C471B,
    0x28DB77F523047D84,
    0x32CAAB7B40C72493,
    0x3C9EBE0A15C9BEBC,
    0x431D67C49C100D4C,
    0x4CC5D4BECB3E42B6,
    0x597F299CFC657E2A,
    0x5FCB6FAB3AD6FAEC,
    0x6C44198C4A475817,
)
_H0 = (
    0x6A09E667F3BCC908,
    0xBB67AE8584CAA73B,
    0x3C6EF372FE94F82B,
    0xA54FF53A5F1D36F1,
    0x510E527FADE682D1,
    0x9B05688C2B3E6C1F,
    0x1F83D9ABFB41BD6B,
    0x5BE0CD19137E2179,
)


def _rotr(x, n):
    return ((x >> n) | (x << (64 - n))) & _MASK64


def sha512(data):
    """SHA-512 digest (64 bytes) of ``data`` (FIPS 180-4, 6.4)."""
    n = len(data)
    msg = bytes(data) + b"\x80" + bytes((111 - n) % 128) + (n * 8).to_bytes(16, "big")
    h = list(_H0)
    w = [0] * 80
    for off in range(0, len(msg), 128):
        for t in range(16):
            w[t] = int.from_bytes(msg[off + 8 * t : off + 8 * t + 8], "big")
        for t in range(16, 80):
            a = w[t - 15]
            b = w[t - 2]
            s0 = _rotr(a, 1) ^ _rotr(a, 8) ^ (a >> 7)
            s1 = _rotr(b, 19) ^ _rotr(b, 61) ^ (b >> 6)
            w[t] = (w[t - 16] + s0 + w[t - 7] + s1) & _MASK64
        a, b, c, d, e, f, g, hh = h
        for t in range(80):
            t1 = (
                hh
                + (_rotr(e, 14) ^ _rotr(e, 18) ^ _rotr(e, 41))
                + ((e & f) ^ (~e & g))
                + _K[t]
                + w[t]
            )
            t2 = (_rotr(a, 28) ^ _rotr(a, 34) ^ _rotr(a, 39)) + ((a & b) ^ (a & c) ^ (b & c))
            hh = g
            g = f
            f = e
            e = (d + t1) & _MASK64
            d = c
            c = b
            b = a
            a = (t1 + t2) & _MASK64
        for i, v in enumerate((a, b, c, d, e, f, g, hh)):
            h[i] = (h[i] + v) & _MASK64
    return b"".join(x.to_bytes(8, "big") for x in h)


def _pow(b, e, m):
    r = 1
    b %= m
    while e:
        if e & 1:
            r = r * b % m
        b = b * b % m
        e >>= 1
    return r


def _inv(x):
    return _pow(x, P - 2, P)


def _add(p, q):
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * _D % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, p):
    q = (0, 1, 1, 0)  # the neutral element
    while s > 0:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _equal(p, q):
    # x1/z1 == x2/z2 and y1/z1 == y2/z2, without inversions
    if (p[0] * q[2] - q[0] * p[2]) % P:
        return False
    return (p[1] * q[2] - q[1] * p[2]) % P == 0


def _decode(s):
    """The point encoded in 32 bytes ``s`` (RFC 8032, 5.1.3), or None."""
    if len(s) != _B:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    x2 = (y * y - 1) * _inv(_D * y * y + 1) % P
    if x2 == 0:
        if sign:
            return None
        x = 0
    else:
        x = _pow(x2, (P + 3) // 8, P)
        if (x * x - x2) % P:
            x = x * _SQRT_M1 % P
        if (x * x - x2) % P:
            return None
        if (x & 1) != sign:
            x = P - x
    return (x, y, 1, x * y % P)


_BASE = (_BX, _BY, 1, _BX * _BY % P)


def verify(public, msg, signature):
    """True if ``signature`` (64 bytes) is a valid Ed25519 signature of
    ``msg`` under the 32-byte ``public`` key; False for anything malformed."""
    if len(public) != _B or len(signature) != 2 * _B:
        return False
    a = _decode(public)
    r = _decode(signature[:_B])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[_B:], "little")
    if s >= L:
        return False
    k = int.from_bytes(sha512(signature[:_B] + public + msg), "little") % L
    return _equal(_mul(s, _BASE), _add(r, _mul(k, a)))
