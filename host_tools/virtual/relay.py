"""The virtual boards' one pty relay: board pty A <-> host pty B (or a TCP client).

A virtual board's interpreter sits on the slave of pty A; the host opens
the slave of pty B (mpremote's serial transport needs a path) or connects
over TCP. :class:`PtyRelay` copies bytes between them; the real-time board
(``host_tools.virtual.board``) and the minimal REPL board
(``host_tools.virtual.port``) both use it, each adding only what its board
does with the bytes (Ctrl-C, soft reboot, swallowing the banner).

Flow control.

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
import fcntl
import functools
import os
import select
import signal
import socket
import subprocess
import termios
import time
import tty

STALL_S = 10.0  # no host progress for this long: the host is gone, drop (a loaded
# 2-core machine can starve a reading host for seconds; a USB host never drops)
HIGH_WATER = 1 << 20  # host -> board bytes queued before older input is dropped


_PR_SET_PDEATHSIG = 1  # prctl(2)


@functools.cache
def _prctl():
    """libc's prctl, resolved once in this process (Linux; None elsewhere)."""
    try:
        import ctypes

        return ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return None


def spawn_on_pty(cmd, slave, *, die_with_parent=False, **popen_kw):
    """Start ``cmd`` with the pty ``slave`` as its console and controlling
    terminal, in a session of its own (a byte 0x03 with ISIG on then raises
    SIGINT in it, as on a terminal).

    Between fork and exec the child of a threaded process may only make
    system calls: another thread may have held a lock (the import lock,
    the dynamic loader's) at the fork, and the child would wait on it for
    ever, a board that never boots and prints nothing (Python docs,
    subprocess.Popen, preexec_fn). So ``setsid`` is done by subprocess's
    own C code (``start_new_session``), and prctl is looked up here,
    before the fork; the child only makes the two calls.

    ``die_with_parent``: the interpreter gets SIGKILL when the thread that
    started it ends (PR_SET_PDEATHSIG): no orphan boards after ``cryo sim``
    is killed.
    """
    prctl = _prctl() if die_with_parent else None

    def child():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return subprocess.Popen(
        cmd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=child,
        close_fds=True,
        **popen_kw,
    )


def close_fds(*fds):
    """Close each descriptor that is open (None and closed ones skipped)."""
    for fd in fds:
        if fd is None:
            continue
        try:
            os.close(fd)
        except OSError:
            pass


def open_relay(tcp=None, link=None, log=None):
    """A :class:`PtyRelay` for a virtual board, its host pty also reachable
    as the symlink ``link`` (``--link``) and on ``127.0.0.1:tcp`` (``--tcp``).

    The socket is registered as an alias of the pty in the port lock: one
    board, one owner, whichever of its names a command opens."""
    from host_tools.device import portlock
    from host_tools.errors import DeviceError

    try:
        relay = PtyRelay(tcp=tcp, log=log)
    except OSError as e:
        raise DeviceError(f"--tcp {tcp}: {e.strerror}")
    if relay.tcp is not None:
        portlock.alias(relay.tcp.url, relay.port)
    if link:
        try:
            if os.path.islink(link):
                os.unlink(link)
            os.symlink(relay.port, link)
        except OSError as e:
            close_relay(relay)
            raise DeviceError(f"--link {link}: {e.strerror}")
    return relay


def kill_board(proc):
    """SIGKILL the board process ``proc`` and its session (spawn_on_pty)."""
    if proc is not None and proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()


def close_relay(relay, link=None):
    """Close ``relay`` (if opened) and remove its ``--link`` symlink."""
    if relay is not None:
        if relay.tcp is not None:
            from host_tools.device import portlock

            portlock.unalias(relay.tcp.url)
        relay.close()
    if link and os.path.islink(link):
        os.unlink(link)


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


class PtyRelay:
    """Pty A (the board's side) <-> pty B (the host's side), and a TCP client.

    ``tcp``: also serve the line on ``127.0.0.1:tcp`` (0: any free port);
    ``log``: called with a message when host-bound output is dropped.
    """

    def __init__(self, tcp=None, log=None):
        self.a_master, self.a_slave = os.openpty()
        self.b_master, self.b_slave = os.openpty()
        tty.setraw(self.b_slave)
        attrs = termios.tcgetattr(self.b_slave)
        attrs[1] &= ~termios.ONLCR  # the board already sends \r\n
        termios.tcsetattr(self.b_slave, termios.TCSANOW, attrs)
        for fd in (self.a_master, self.b_master):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.port = os.ttyname(self.b_slave)
        self.log = log or (lambda msg: None)
        self._to_a = OutQueue(self.a_master, high_water=HIGH_WATER)
        self._to_b = OutQueue(self.b_master)
        self.tcp = None
        if tcp is not None:
            try:
                self.tcp = TcpEndpoint(int(tcp))
            except OSError:
                self.close()
                raise

    def to_board(self, data):
        """Host input for the board: queued, never dropped while the board reads."""
        self._to_a.put(data)

    def to_host(self, data):
        """Board output for the host. With a TCP client connected the socket
        gets the flow control and pty B is best effort."""
        tcp = self.tcp
        if tcp is not None and tcp.client is not None:
            tcp.out.put(data)
            try:
                os.write(self.b_master, data)
            except OSError:
                pass
            return
        self._to_b.put(data)

    def _host_queue(self):
        tcp = self.tcp
        return tcp.out if tcp is not None and tcp.client is not None else self._to_b

    @staticmethod
    def _read(fd):
        try:
            return os.read(fd, 65536)
        except OSError:  # BlockingIOError included; EIO once the board's side closed
            return b""

    def step(self, on_board, on_host, extra=(), timeout=0.02) -> list:
        """Wait up to ``timeout`` and move what is ready: board output goes
        to ``on_board(data)``, host input to ``on_host(data)``. Returns the
        descriptors of ``extra`` that are readable (the caller's own)."""
        out_q = self._host_queue()
        fds = [self.b_master, *extra]
        if not out_q:  # back-pressure: the board waits while the host lags
            fds.append(self.a_master)
        tcp = self.tcp
        if tcp is not None:
            fds.append(tcp.fileno())
            if tcp.client is not None:
                fds.append(tcp.client.fileno())
        wfds = [q.fd for q in (out_q, self._to_a) if q]
        try:
            r, w, _ = select.select(fds, wfds, [], timeout)
        except InterruptedError:
            return []
        if out_q.fd in w:
            out_q.flush()
        if self._to_a.fd in w:
            self._to_a.flush()
        if out_q.stalled():
            self.log(f"host not reading: {out_q.drop()} bytes of board output dropped")
        if tcp is not None:
            if tcp.fileno() in r:
                tcp.accept()
            if tcp.client is not None and tcp.client.fileno() in r:
                d = tcp.read()
                if d:
                    on_host(d)
        if self.a_master in r:
            d = self._read(self.a_master)
            if d:
                on_board(d)
        if self.b_master in r:
            d = self._read(self.b_master)
            if d:
                on_host(d)
        return [fd for fd in extra if fd in r]

    def drain_board(self, on_board):
        """What the board printed last (after its process ended)."""
        while True:
            d = self._read(self.a_master)
            if not d:
                return
            on_board(d)

    def close(self):
        close_fds(self.a_master, self.a_slave, self.b_master, self.b_slave)
        if self.tcp is not None:
            self.tcp.close()
