"""A lost or damaged byte costs a retry, never a failed pull or a wrong archive.

A relay between the host and the board (a pty pair, as a USB-serial bridge
would sit) drops one byte, or flips one bit, inside the framed stream every
so many kilobytes of board output. The pull must still verify, match a pull
over a clean line byte for byte, and count the retries.
"""

import os
import select
import threading
import tty

import pytest

from host_tools.archive import pull as archive_pull
from host_tools.device.connect import Session
from host_tools.virtual.port import VirtualPort, write_demo_treatment


class LossyLine:
    """pty relay that damages board -> host bytes inside long lines only."""

    def __init__(self, upstream: str, every: int, mode: str):
        self.up = os.open(upstream, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.up)
        self.m, self.s = os.openpty()
        tty.setraw(self.s)
        self.port = os.ttyname(self.s)
        self.every, self.mode = every, mode
        self.damaged = 0
        self._count = 0
        self._line = 0
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _damage(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            self._line = 0 if b == 10 else self._line + 1
            self._count += 1
            if self._line > 200 and self._count >= self.every:
                self._count = 0
                self.damaged += 1
                if self.mode == "drop":
                    continue
                b ^= 0x04
            out.append(b)
        return bytes(out)

    def _run(self):
        while not self._stop:
            r, _, _ = select.select([self.up, self.m], [], [], 0.05)
            for fd in r:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    return
                if fd == self.up:
                    data = self._damage(data)
                    dst = self.m
                else:
                    dst = self.up
                view = memoryview(data)
                while view:
                    n = os.write(dst, view)
                    view = view[n:]

    def close(self):
        self._stop = True
        self._t.join(2)
        for fd in (self.up, self.m, self.s):
            os.close(fd)


@pytest.mark.parametrize("mode", ["drop", "flip"])
def test_damaged_bytes_are_retried_and_the_archive_is_exact(mpy, tmp_path, mode):
    img = tmp_path / "board" / "flash.img"
    write_demo_treatment(image=img, seconds=150, sessions=2)
    with VirtualPort(image=img) as vp:
        with Session(vp.port, stop_firmware=False) as s:
            clean = archive_pull.pull(s, tmp_path / "clean", mark=False)
        line = LossyLine(vp.port, every=15000, mode=mode)
        try:
            with Session(line.port, stop_firmware=False) as s:
                s.stream_timeout = 2.0
                lossy = archive_pull.pull(s, tmp_path / "lossy", mark=False)
        finally:
            line.close()
    # one retry per damaged stream (two hits in one stream cost one retry)
    assert line.damaged >= 2 and 1 <= lossy["retries"] <= line.damaged
    assert lossy["verify"]["ok"] and lossy["verify"]["complete_sessions"] == [1, 2]
    a = tmp_path / "clean" / clean["serial"] / "logs"
    b = tmp_path / "lossy" / lossy["serial"] / "logs"
    segs = sorted(p.name for p in a.glob("seg*.bin"))
    assert segs and segs == sorted(p.name for p in b.glob("seg*.bin"))
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in segs)
