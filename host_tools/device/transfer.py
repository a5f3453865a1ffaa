"""Checked bulk transfers over the raw REPL: framed, CRC-32 per frame, retried.

A serial line can lose or corrupt bytes (a USB CDC port whose host fell
behind, a noisy UART, a relay under load). Nothing that crosses it is
trusted unchecked:

* **device → host** (:func:`fetch`): the device prints one frame per
  chunk, ``OFFSET CRC32 BASE64\\n`` (offset and CRC-32 of the decoded chunk
  in hex), then ``= END\\n`` with the offset after the last byte. The host
  keeps a chunk only if its offset is the next expected one and its CRC
  matches; at the first bad frame it stops keeping data, lets the command
  end (or, if the end never comes, interrupts it and re-enters the raw
  REPL) and asks again from the first byte it does not hold. A lost byte
  costs one retry of the rest of the file, never a wrong archive.
* **host → device** (:func:`put`): each base64 chunk carries its CRC-32 and
  its file position; the device checks the CRC before writing, and a retry
  writes the same bytes at the same position (idempotent).
* **replies** (:func:`query`): ``repr(value)*CRC32`` — a damaged reply is
  asked again (for reads only: they have no side effects).

Retries are bounded (``ATTEMPTS`` without progress) and end in a one-line
``DeviceError``, never a traceback.
"""

from __future__ import annotations

import ast
import base64
import binascii
import time

from host_tools.errors import DeviceError

ATTEMPTS = 6  # tries without progress before a transfer counts as failed
CHUNK = 3072  # bytes per frame (a multiple of 3: base64 without padding inside)

# Injected with the session helpers (host_tools.device.connect.DEVICE_HELPERS).
DEVICE_CODE = """
def _cry_fs(p, off, chunk):
    import sys
    b = bytearray(chunk)
    w = sys.stdout.write
    with open(p, 'rb') as f:
        f.seek(off)
        while True:
            _cry_feed()
            n = f.readinto(b)
            if not n:
                break
            d = b[:n] if n < chunk else b
            w('%x %08x ' % (off, binascii.crc32(d) & 0xffffffff))
            w(binascii.b2a_base64(d))
            off += n
    w('= %x\\n' % off)
def _cry_pr(v):
    s = repr(v)
    print(s + '*%08x' % (binascii.crc32(s.encode()) & 0xffffffff))
def _cry_wc(s, c, pos):
    d = binascii.a2b_base64(s)
    if binascii.crc32(d) & 0xffffffff != c:
        raise ValueError('chunk CRC mismatch')
    _cry_f.seek(pos)
    _cry_f.write(d)
"""


def _crc(data: bytes) -> int:
    return binascii.crc32(data) & 0xFFFFFFFF


class _Frames:
    """Parser of one ``_cry_fs`` output: keeps only verified, contiguous chunks."""

    def __init__(self, offset, sink, progress):
        self.expect = offset
        self.sink = sink
        self.progress = progress
        self.broken = None  # why the first bad frame was rejected
        self.end = None  # offset named by the end frame
        self._buf = bytearray()

    def feed(self, data: bytes):
        self._buf += data
        cut = self._buf.rfind(b"\n") + 1
        if not cut:
            return
        lines = bytes(self._buf[:cut]).split(b"\n")
        del self._buf[:cut]
        for ln in lines:
            self._line(ln.strip())

    def finish(self):
        if self._buf.strip():
            self._line(bytes(self._buf).strip())
        self._buf.clear()

    def _line(self, ln: bytes):
        if not ln or self.broken:
            return
        parts = ln.split(b" ")
        try:
            if parts[0] == b"=" and len(parts) == 2:
                self.end = int(parts[1], 16)
                if self.end != self.expect:
                    self.broken = f"stream ended at {self.end}, expected {self.expect}"
                return
            if len(parts) != 3:
                raise ValueError("not a frame")
            off, crc = int(parts[0], 16), int(parts[1], 16)
            data = binascii.a2b_base64(parts[2])
        except (ValueError, binascii.Error):
            self.broken = f"damaged frame at byte {self.expect}"
            return
        if off != self.expect:
            self.broken = f"frame for byte {off} while expecting {self.expect} (bytes lost)"
        elif _crc(data) != crc:
            self.broken = f"CRC mismatch in the frame at byte {off}"
        else:
            self.expect += len(data)
            self.sink(data)
            if self.progress:
                self.progress(len(data))


def fetch(session, path: str, offset: int, sink, progress=None, chunk=CHUNK) -> int:
    """Copy ``path`` from ``offset`` to its end into ``sink(bytes)``, verified.

    Returns the offset after the last byte. Every chunk handed to ``sink``
    passed its CRC and continues the previous one; a damaged or lost frame
    is asked for again (``ATTEMPTS`` tries without progress).
    """
    expect = int(offset)
    fails = 0
    why = ""
    while fails < ATTEMPTS:
        frames = _Frames(expect, sink, progress)
        try:
            session.run_stream(f"_cry_fs({path!r}, {expect}, {int(chunk)})", frames.feed)
        except DeviceError as e:
            if "device error" in str(e):
                raise  # the device refused (no such file, ...): not a line problem
            why = str(e)
            frames.broken = frames.broken or why
            session.recover()
        frames.finish()
        progressed = frames.expect > expect
        expect = frames.expect
        if frames.broken is None and frames.end == expect:
            return expect
        why = frames.broken or "the end of the stream was lost"
        session.retries += 1
        fails = 0 if progressed else fails + 1
    raise DeviceError(f"transfer of {path} from {session.port} failed {ATTEMPTS} times: {why}")


def query(session, expr: str):
    """The value of ``expr`` on the device (a read: retried when the reply is damaged)."""
    why = ""
    for _ in range(ATTEMPTS):
        buf = bytearray()
        try:
            session.run_stream(f"_cry_pr({expr})", buf.extend)
            out = buf.decode(errors="replace").strip()
        except DeviceError as e:
            if "device error" in str(e):
                raise
            why = str(e)
            session.recover()
            continue
        text, star, crc = out.rpartition("*")
        try:
            if star and int(crc, 16) == _crc(text.encode()):
                return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            pass
        why = f"damaged reply {out[:60]!r}"
        session.retries += 1
    raise DeviceError(f"no intact reply from {session.port} to {expr[:40]!r}: {why}")


def put(session, data: bytes, chunk: int, progress=None):
    """Write ``data`` into the device file opened by ``_cry_open``, CRC-checked per chunk."""
    for i in range(0, len(data), chunk):
        part = data[i : i + chunk]
        b64 = base64.b64encode(part).decode()
        for attempt in range(ATTEMPTS):
            try:
                session.exec(f"_cry_wc({b64!r}, {_crc(part)}, {i})")
                break
            except DeviceError as e:
                if attempt == ATTEMPTS - 1:
                    raise
                if "device error" not in str(e):
                    session.recover()
                session.retries += 1
                time.sleep(0.05)
        if progress:
            progress(len(part))
