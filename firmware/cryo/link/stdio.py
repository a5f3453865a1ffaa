"""The USB serial console as a non-blocking stream for the channel.

``sys.stdin.buffer.readinto`` blocks until its buffer is full on boards, so
``StdioStream.readinto`` asks ``select.poll`` before every byte and stops as
soon as nothing is pending: it never blocks, and it reads at most
``len(buf)`` bytes per call (the channel passes 64). ``write`` only writes
when the output is ready (``POLLOUT``) and at most ``_TX_BURST`` bytes, so a
host that stops reading cannot stall the loop; the channel keeps the rest.

Ctrl-C: bytes are read raw, so 0x03 reaches the channel (and is rejected as
a malformed frame) only when ``micropython.kbd_intr(-1)`` is in force; with
the default ``kbd_intr(3)`` it raises KeyboardInterrupt in the loop, whose
``finally`` closes the valves (docs/link.md, "Ctrl-C").
"""

import select
import sys

from micropython import const

_TX_BURST = const(256)


class StdioStream:
    def __init__(self, fin=None, fout=None):
        self._in = fin if fin is not None else sys.stdin.buffer
        self._out = fout if fout is not None else sys.stdout.buffer
        self._pin = select.poll()
        self._pin.register(self._in, select.POLLIN)
        self._pout = select.poll()
        self._pout.register(self._out, select.POLLOUT)
        self._one = bytearray(1)
        self.closed = False  # input hung up (unix port: stdin closed)

    def _ready(self, p, mask):
        for _obj, ev in p.ipoll(0):
            if ev & mask:
                return True
            if ev & (select.POLLHUP | select.POLLERR):
                self.closed = True
        return False

    def readinto(self, buf):
        n = 0
        cap = len(buf)
        one = self._one
        while n < cap and not self.closed and self._ready(self._pin, select.POLLIN):
            if not self._in.readinto(one):
                self.closed = True  # EOF
                break
            buf[n] = one[0]
            n += 1
        return n

    def write(self, mv):
        if not self._ready(self._pout, select.POLLOUT):
            return 0
        if len(mv) > _TX_BURST:
            mv = mv[0:_TX_BURST]
        w = self._out.write(mv)
        return len(mv) if w is None else w
