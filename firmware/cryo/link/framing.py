"""Frames on the serial line: ``<JSON>*<crc32 as 8 hex digits>\\n``.

Why JSON lines with a CRC and not COBS/binary: the traffic is small
(commands a few times a second, telemetry <= 50 Hz), MicroPython has a C
``json`` and ``binascii.crc32``, a human can read the stream with any serial
terminal, and a newline-terminated frame resynchronises after any garbage
(a crash message, a REPL banner, line noise) by construction. The CRC-32
catches what UART noise does to a line; the version field catches a host
talking to older firmware.

``encode`` and ``decode`` are shared by the firmware and the host.
"""

import json

from micropython import const

from cryo.crc import crc32
from cryo.link import messages as m

_STAR = const(0x2A)
_CR = const(0x0D)
_INF = float("inf")


class FrameError(Exception):
    """A frame or request was rejected: ``code`` is one of ``messages.E_*``."""

    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        # The request id, once the parser knows it (None: frame unreadable).
        self.rid = None


def _hexval(c):
    if 0x30 <= c <= 0x39:
        return c - 0x30
    if 0x61 <= c <= 0x66:
        return c - 0x57
    if 0x41 <= c <= 0x46:
        return c - 0x37
    return -1


def _hex8(line, start):
    """Value of 8 hex digits at ``line[start:]``, or -1 if any is not hex."""
    v = 0
    i = start
    end = start + 8
    while i < end:
        d = _hexval(line[i])
        if d < 0:
            return -1
        v = (v << 4) | d
        i += 1
    return v


def payload_length(line, n):
    """Check ``line[:n]`` (no newline) is ``payload*crc8``; return len(payload).

    Tolerates one trailing CR (terminals send CRLF). Raises FrameError.
    """
    if n > 0 and line[n - 1] == _CR:
        n -= 1
    if n < 10 or line[n - 9] != _STAR:
        raise FrameError(m.E_FRAME, "frame must be JSON followed by *crc32 (8 hex digits)")
    want = _hex8(line, n - 8)
    if want < 0:
        raise FrameError(m.E_FRAME, "frame checksum must be 8 hex digits after '*'")
    plen = n - 9
    if crc32(memoryview(line)[0:plen]) != want:
        raise FrameError(m.E_CRC, "frame checksum mismatch (CRC-32 of the JSON text)")
    return plen


def decode(line, n=None, limit=m.MAX_LINE):
    """Return the JSON object of a frame ``line[:n]``; check version and CRC.

    ``limit``: longest frame accepted (requests: MAX_LINE; the host reads
    replies up to MAX_REPLY).
    """
    if n is None:
        n = len(line)
    if n > limit:
        raise FrameError(m.E_TOO_LONG, "frame longer than %d bytes" % limit)
    plen = payload_length(line, n)
    try:
        obj = json.loads(bytes(memoryview(line)[0:plen]))
    except (ValueError, UnicodeError):
        raise FrameError(m.E_JSON, "frame payload is not valid JSON")
    if type(obj) is not dict:
        raise FrameError(m.E_JSON, "frame payload must be a JSON object")
    v = obj.get("v")
    if type(v) is not int or v != m.VERSION:
        raise FrameError(
            m.E_VERSION,
            "protocol version %r not supported (this side speaks v=%d)" % (v, m.VERSION),
        )
    return obj


def encode(obj):
    """``obj`` (a dict; ``v`` is added) as one frame, bytes ending in newline."""
    obj["v"] = m.VERSION
    payload = json.dumps(obj, separators=(",", ":")).encode()
    return payload + (b"*%08x\n" % crc32(payload))


def json_safe(x, nd=3):
    """A copy of a value JSON can carry: nan/inf -> None (JSON has
    neither), floats rounded.

    ``nd`` decimals for status/telemetry (compact frames); ``nd=None``
    keeps 7 significant digits (float32 precision) for parameters and
    tuning results, where small gains must survive the round trip.
    """
    t = type(x)
    if t is float:
        if x != x or x in (_INF, -_INF):
            return None
        if nd is None:
            return float("%.7g" % x)
        return round(x, nd)
    if t is dict:
        out = {}
        for k in x:
            out[k] = json_safe(x[k], nd)
        return out
    if t is list or t is tuple:
        return [json_safe(v, nd) for v in x]
    return x
