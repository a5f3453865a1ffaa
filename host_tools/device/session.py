"""A framed session with the firmware's command channel (docs/link.md).

The transport under it is any pyserial URL or an already open serial-like
object (``read(n)``/``write(b)``; host_tools.device.serialport). A reader
thread splits the stream into lines: reply frames wake the request waiting
for their ``id``, telemetry frames go to a bounded queue, anything else
(REPL output, print() lines, echoed requests) is counted as noise. A
provisioned device's ``E_AUTH`` is answered with a challenge-response
(host_tools.auth) and the request sent again, signed.

Message definitions and framing are imported from the firmware package
(``cryo.link.messages`` / ``cryo.link.framing``): one definition for both
sides. The commands themselves are :class:`host_tools.device.link.Link`'s.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time

from host_tools import fwimport  # noqa: F401  (firmware/ importable, micropython shim)
from host_tools.device import portlock
from host_tools.device.link_errors import LinkError, LinkInvalid, error_for
from host_tools.device.serialport import DEFAULT_BAUD, open_serial

# isort: split
from cryo.link import framing
from cryo.link import messages as msg

DEFAULT_TIMEOUT = 2.0
_TEL_QUEUE = 4096  # telemetry frames kept for readers (bounded)

# What a MicroPython REPL (not the controller) answers a frame with.
_REPL_MARKS = (b">>>", b"raw REPL", b"Traceback", b"Error:")


class Session:
    """A framed session with the firmware's command channel.

    ``Session(port)`` opens and starts the reader; use as a context manager
    or call ``close()``. ``request(cmd, **fields)`` returns the reply dict
    (``ok`` true) or raises the error the reply maps to
    (host_tools.device.link_errors).
    """

    def __init__(
        self,
        port,
        *,
        baudrate=DEFAULT_BAUD,
        timeout=DEFAULT_TIMEOUT,
        on_noise=None,
        credentials=None,
    ):
        self.port = port if isinstance(port, str) else "<stream>"
        if credentials is None:
            from host_tools.auth import Credentials

            credentials = Credentials()
        self.credentials = credentials  # keys for a provisioned device (host_tools.auth)
        self.timeout = timeout
        self._locked = None
        if isinstance(port, str):
            portlock.acquire(port)  # one cryo command at a time on a port
            self._locked = port
            try:
                self._ser = open_serial(port, baudrate)
            except BaseException:
                self._release()
                raise
        else:
            self._ser = port
        self.saw_repl = False  # a REPL answered (prompt, echo, traceback): no controller
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[int, list] = {}
        self._tel = collections.deque(maxlen=_TEL_QUEUE)
        self._tel_cv = threading.Condition()
        self._on_noise = on_noise
        self.noise_lines = 0
        self.bad_frames = 0
        self.telemetry_frames = 0
        self.orphan_replies = 0
        self._stop = threading.Event()
        self.closed_reason = None
        self._reader = threading.Thread(target=self._read_loop, name="cryo-link", daemon=True)
        self._reader.start()

    # ---- lifecycle ------------------------------------------------------

    def close(self):
        self._stop.set()
        self._reader.join(timeout=1)
        try:
            self._ser.close()
        except Exception:  # noqa: BLE001 - closing a dead port
            pass
        self._release()

    def _release(self):
        if self._locked is not None:
            portlock.release(self._locked)
            self._locked = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- reader thread --------------------------------------------------

    def _read_loop(self):
        buf = bytearray()
        while not self._stop.is_set():
            try:
                chunk = self._ser.read(4096)
            except Exception as e:  # noqa: BLE001 - port vanished
                self.closed_reason = str(e) or type(e).__name__
                break
            if not chunk:
                continue
            buf += chunk
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > 4 * msg.MAX_REPLY:
                        del buf[:]  # runaway non-frame output
                        self.noise_lines += 1
                    break
                line = bytes(buf[:nl])
                del buf[: nl + 1]
                self._line(line)
        with self._lock:
            for slot in self._pending.values():
                slot[1].set()

    def _repl_answered(self, certain):
        """A REPL answered: a prompt or a traceback (a controller may print
        one too: only probes stop waiting), or an echoed request (certain: a
        controller never echoes, so nothing pending will be answered)."""
        self.saw_repl = True
        with self._lock:
            for slot in self._pending.values():
                if certain or slot[2]:
                    slot[1].set()

    def _line(self, line: bytes):
        line = line.rstrip(b"\r")
        if not line:
            return
        try:
            obj = framing.decode(line, limit=msg.MAX_REPLY)
        except framing.FrameError:
            if line[:1] == b"{":
                self.bad_frames += 1
            else:
                self.noise_lines += 1
            if any(m in line for m in _REPL_MARKS):
                self._repl_answered(False)
            if self._on_noise:
                self._on_noise(line)
            return
        if "tel" in obj:
            obj["_rx"] = time.monotonic()
            self.telemetry_frames += 1
            with self._tel_cv:
                self._tel.append(obj)
                self._tel_cv.notify_all()
            return
        if "ok" not in obj:
            self.noise_lines += 1  # an echoed request: a REPL's line editor echoes
            self._repl_answered(True)
            return
        with self._lock:
            slot = self._pending.get(obj.get("id"))
            if slot is None:
                self.orphan_replies += 1
                return
            slot[0] = obj
            slot[1].set()

    # ---- requests -------------------------------------------------------

    def request(self, cmd: str, timeout: float | None = None, *, probe=False, **fields) -> dict:
        """One request and its reply. ``probe``: asking whether a controller
        runs at all, so a REPL's prompt or traceback ends the wait."""
        obj = {"cmd": cmd}
        obj.update(fields)
        reply = self._exchange(obj, timeout, probe=probe)
        if not reply.get("ok") and reply.get("err") == msg.E_AUTH and reply.get("required"):
            # A provisioned device: challenge-response (host_tools.auth). It
            # answered, so a short probe timeout no longer applies.
            wait = max(self.timeout if timeout is None else timeout, DEFAULT_TIMEOUT)
            ch = self.request("challenge", wait, role=fields.get("role"))
            key = self.credentials.key(ch)
            reply = self._exchange(obj, wait, (key, ch["nonce"]))
        if not reply.get("ok"):
            raise error_for(reply)
        return reply

    def authenticated(self, cmd: str, timeout: float | None = None, **fields) -> dict:
        """``request`` to a device known to authenticate ``cmd`` (``hello``:
        ``auth``): the challenge first, two round trips instead of three."""
        wait = max(self.timeout if timeout is None else timeout, DEFAULT_TIMEOUT)
        ch = self.request("challenge", wait, role=fields.get("role"))
        return self.signed(cmd, (self.credentials.key(ch), ch["nonce"]), wait, **fields)

    def signed(self, cmd: str, auth, timeout: float | None = None, **fields) -> dict:
        """``cmd`` signed with ``auth`` = (key, nonce hex) of a challenge
        already answered: the reply, or the error it maps to."""
        reply = self._exchange(dict(fields, cmd=cmd), timeout, auth)
        if not reply.get("ok"):
            raise error_for(reply)
        return reply

    def _exchange(self, obj: dict, timeout: float | None, auth=None, probe=False) -> dict:
        """Send one request (signed with ``auth`` = (key, nonce)), return its reply."""
        cmd = obj["cmd"]
        rid = next(self._ids) & 0x3FFFFFFF
        obj = dict(obj, id=rid)
        if auth is None:
            frame = framing.encode(obj)
        else:
            from host_tools.auth import signed_frame

            frame = signed_frame(obj, *auth)
        if len(frame) - 1 > msg.MAX_LINE:
            raise LinkInvalid(
                f"{cmd}: request too long ({len(frame) - 1} > {msg.MAX_LINE} B)", msg.E_TOO_LONG
            )
        slot = [None, threading.Event(), probe]  # reply, woken, a probe
        with self._lock:
            self._pending[rid] = slot
        try:
            try:
                self._ser.write(frame)
            except Exception as e:  # noqa: BLE001 - pyserial raises several types
                raise LinkError(f"cannot write to {self.port}: {e}") from None
            wait = self.timeout if timeout is None else timeout
            if not slot[1].wait(wait) or slot[0] is None:
                if self.closed_reason:
                    raise LinkError(f"link to {self.port} lost: {self.closed_reason}")
                raise LinkError(
                    f"no reply to {cmd!r} from {self.port} within {wait:g} s "
                    "(is the controller running with its command channel?)"
                )
        finally:
            with self._lock:
                self._pending.pop(rid, None)
        return slot[0]

    # ---- telemetry ------------------------------------------------------
    def drain_telemetry(self) -> list[dict]:
        with self._tel_cv:
            out = list(self._tel)
            self._tel.clear()
        return out

    def next_telemetry(self, timeout: float = 1.0) -> dict | None:
        deadline = time.monotonic() + timeout
        with self._tel_cv:
            while not self._tel:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._tel_cv.wait(left)
            return self._tel.popleft()
