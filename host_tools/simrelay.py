"""Flow-controlled byte queues for the virtual board's relay (``cryo sim``).

A board's USB CDC port never loses a byte while the host reads: when the
host falls behind, the device's endpoint is NAKed and the firmware's
``write`` waits (USB 2.0 §8.5.1, bulk transfers are flow-controlled). The
relay must behave the same way. Writing to a non-blocking pty master or
socket takes only what fits in the kernel buffer; whatever did not fit is
kept here, and while it waits the relay stops reading the board's pty, so
the interpreter's own ``write`` blocks — back-pressure, as on the wire.

Only when no host drains the queue for ``stall_s`` (nobody has the port
open, or a client stopped reading) is it discarded, as a board whose host
went away drops its output instead of hanging; ``dropped`` counts those
bytes.
"""

from __future__ import annotations

import errno
import os
import socket
import time

STALL_S = 10.0  # no host progress for this long: the host is gone, drop (a loaded
# 2-core machine can starve a reading host for seconds; a USB host never drops)
HIGH_WATER = 1 << 20  # host -> board bytes queued before older input is dropped


class OutQueue:
    """Bytes waiting for one non-blocking descriptor (pty master or socket)."""

    def __init__(self, fd, *, stall_s=STALL_S, sock=None, high_water=None):
        self.fd = fd
        self.sock = sock
        self.stall_s = stall_s
        self.high_water = high_water
        self.buf = bytearray()
        self.dropped = 0
        self._since = 0.0  # when the queue last made progress (or became non-empty)

    def __bool__(self):
        return bool(self.buf)

    def put(self, data) -> None:
        if not self.buf:
            self._since = time.monotonic()
        self.buf += data
        if self.high_water is not None and len(self.buf) > self.high_water:
            cut = len(self.buf) - self.high_water
            del self.buf[:cut]
            self.dropped += cut
        self.flush()

    def flush(self) -> bool:
        """Write what the descriptor takes now; False if the peer is gone."""
        while self.buf:
            try:
                if self.sock is not None:
                    n = self.sock.send(self.buf)
                else:
                    n = os.write(self.fd, self.buf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    break
                self.drop()
                return False
            if n <= 0:
                break
            del self.buf[:n]
            self._since = time.monotonic()
        return True

    def stalled(self, now=None) -> bool:
        now = time.monotonic() if now is None else now
        return bool(self.buf) and now - self._since > self.stall_s

    def drop(self) -> int:
        n = len(self.buf)
        self.dropped += n
        self.buf.clear()
        return n


class TcpEndpoint:
    """One TCP client at a time on ``127.0.0.1:port`` (``socket://`` URLs).

    A second client while one is connected is told the port is busy and
    closed, as a serial port opened exclusively would refuse it.
    """

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((host, port))
        self.srv.listen(2)
        self.srv.setblocking(False)
        self.port = self.srv.getsockname()[1]
        self.url = f"socket://{host}:{self.port}"
        self.client = None
        self.out = None

    def fileno(self):
        return self.srv.fileno()

    def accept(self):
        try:
            c, _ = self.srv.accept()
        except OSError:
            return
        if self.client is not None:
            try:
                c.sendall(b"port busy: another client is connected\r\n")
            except OSError:
                pass
            c.close()
            return
        c.setblocking(False)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client = c
        self.out = OutQueue(c.fileno(), sock=c)

    def read(self) -> bytes | None:
        """Bytes from the client; None when it disconnected."""
        try:
            d = self.client.recv(65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            d = b""
        if not d:
            self.disconnect()
            return None
        return d

    def disconnect(self):
        if self.client is not None:
            try:
                self.client.close()
            except OSError:
                pass
        self.client = None
        self.out = None

    def close(self):
        self.disconnect()
        self.srv.close()
