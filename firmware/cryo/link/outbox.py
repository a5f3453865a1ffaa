"""Frames waiting for the console: a preallocated byte ring that the command
channel fills with whole frames and drains without ever waiting.

``stream.write`` may take fewer bytes than offered (a UART FIFO, a USB CDC
buffer, a host that stopped reading): what it leaves stays here for the next
``flush``. A frame that does not fit is refused whole, never waited for and
never cut: the control loop must not stall behind a slow or absent host, and
a host must never receive half a frame glued to the next one. The ring is
allocated once, at its full size.
"""


class Outbox:
    def __init__(self, size):
        self.size = size  # bytes: the longest frame that can ever be sent
        self._buf = bytearray(size)
        self._mv = memoryview(self._buf)
        self._start = 0  # first byte not yet taken by the stream
        self._end = 0  # end of the frames put

    def put(self, frame):
        """Queue a whole frame; False (nothing queued) if it does not fit."""
        n = len(frame)
        if self.size - self._end < n and self._start:
            # Move what is pending to the front: the room at the end is what counts.
            pending = self._end - self._start
            self._buf[0:pending] = self._mv[self._start : self._end]
            self._start = 0
            self._end = pending
        if self.size - self._end < n:
            return False
        self._buf[self._end : self._end + n] = frame
        self._end += n
        return True

    def flush(self, stream):
        """Write until the stream takes nothing more (a stream OSError counts
        as nothing taken); bounded by the ring size. Returns bytes written."""
        written = 0
        while self._start < self._end:
            try:
                w = stream.write(self._mv[self._start : self._end])
            except OSError:
                w = 0
            if not w:
                break
            self._start += w
            written += w
        if self._start >= self._end:
            self._start = 0
            self._end = 0
        return written
