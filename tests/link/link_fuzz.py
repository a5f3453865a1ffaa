"""Seeded generator of random and malformed channel input (MicroPython + CPython).

``inputs(seed)`` yields byte strings: random bytes, bit-flipped valid
frames, random JSON with a correct CRC, well-formed requests with hostile
field values, oversize lines, truncated frames, bare CR/LF. Generated inside
the interpreter under test with its own PRNG so 100 000 inputs stay fast.
"""

import random

from cryo.link.framing import crc32, encode

_CMDS = (
    "hello",
    "status",
    "telemetry",
    "get",
    "set",
    "save",
    "autotune",
    "step",
    "ack",
    "service",
    "stats",
    "nope",
    "",
    "SET",
)
_FIELDS = ("name", "value", "role", "rate_hz", "action", "setpoint_c", "demand", "duration_s", "x")
_VALUES = (
    "0",
    "-1",
    "1e400",
    "-1e400",
    "1.5",
    "99999999999999999999999",
    "null",
    "true",
    "false",
    '"pid.kp"',
    '"freeze.setpoint_c"',
    '"engineer"',
    '"operator"',
    '"service"',
    '"admin"',
    '"start"',
    '"stop"',
    '"status"',
    '""',
    "[]",
    "{}",
    "[1,[2,[3]]]",
    '{"a":{"b":1}}',
    '"\\u0000\\ud800"',
    '"' + "A" * 70 + '"',
    "0.0001",
    "-30",
    "1000",
    "50",
    "0.2",
)
_TOKENS = ("{", "}", "[", "]", ",", ":", '"v"', '"id"', '"cmd"', "1", "2", "null", '"', "\\", "tru")


def _frame(payload):
    return payload + b"*%08x\n" % crc32(payload)


def _rand_bytes(n):
    b = bytearray(n)
    i = 0
    while i < n:
        r = random.getrandbits(32)
        j = 0
        while j < 4 and i < n:
            c = r & 0xFF
            b[i] = 11 if c == 10 else c  # no newline inside a random line
            r >>= 8
            i += 1
            j += 1
    return bytes(b)


def _pick(seq):
    return seq[random.getrandbits(16) % len(seq)]


def _request():
    parts = ['"v":%s' % _pick(("1", "1", "1", "2", "0", '"1"'))]
    if random.getrandbits(4):
        parts.append('"id":%s' % _pick(("1", "7", "-1", "1073741824", '"x"', "1.5", "null")))
    if random.getrandbits(4):
        parts.append('"cmd":"%s"' % _pick(_CMDS))
    k = random.getrandbits(2)
    while k:
        parts.append('"%s":%s' % (_pick(_FIELDS), _pick(_VALUES)))
        k -= 1
    return ("{" + ",".join(parts) + "}").encode()


def one():
    """One random input line (bytes, usually ending in a newline)."""
    kind = random.getrandbits(5)
    if kind < 6:  # random bytes
        return _rand_bytes(random.getrandbits(6)) + b"\n"
    if kind < 12:  # valid frame with a flipped bit
        f = bytearray(_frame(_request()))
        i = random.getrandbits(16) % (len(f) - 1)
        f[i] ^= 1 << random.getrandbits(3)
        if f[i] == 10:
            f[i] = 32
        return bytes(f)
    if kind < 16:  # random JSON tokens, correct CRC
        n = random.getrandbits(4)
        out = []
        while n:
            out.append(_pick(_TOKENS))
            n -= 1
        return _frame("".join(out).encode())
    if kind < 28:  # structured request with hostile values, correct CRC
        return _frame(_request())
    if kind < 29:  # truncated frame (joins the next line)
        f = _frame(_request())
        return f[0 : random.getrandbits(16) % len(f)]
    if kind < 30:  # CR / LF / empty
        return _pick((b"\n", b"\r\n", b"\r\r\n", b"*\n", b"*00000000\n"))
    if kind < 31:  # deep nesting, correct CRC
        d = random.getrandbits(8)
        return _frame(b"[" * d + b"]" * d)
    # oversize
    return b"{" + b"9" * (513 + random.getrandbits(7)) + b"}\n"


class Flood:
    """A stream that never runs dry: fuzz lines, and a valid ``status``
    request as every ``every``-th line (``readinto`` like a serial port)."""

    def __init__(self, every):
        self.every = every
        self.buf = b""
        self.pos = 0
        self.k = 0

    def readinto(self, buf):
        if self.pos >= len(self.buf):
            self.k += 1
            if self.k % self.every == 0:
                self.buf = encode({"id": self.k, "cmd": "status"})
            else:
                self.buf = one()
            self.pos = 0
        n = min(len(buf), len(self.buf) - self.pos)
        buf[0:n] = self.buf[self.pos : self.pos + n]
        self.pos += n
        return n
