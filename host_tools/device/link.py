"""Host side of the command channel (docs/link.md).

``Link`` talks to the running firmware over any pyserial URL (a serial
device, a pty, ``socket://HOST:PORT``, ``rfc2217://…``) or an already open
serial-like object (``read(n)``/``write(b)``). A reader thread splits the
stream into lines: reply frames wake the request waiting for their ``id``,
telemetry frames go to a bounded queue, anything else
(REPL output, print() lines, echoed requests) is counted as noise.

Message definitions and framing are imported from the firmware package
(``cryo.link.messages`` / ``cryo.link.framing``): one definition for both
sides.

Errors the device reports become CryoError subclasses carrying the code:
``E_DENIED`` -> :class:`LinkDenied` (exit 4), ``E_INVALID``/``E_ARGS`` ->
:class:`LinkInvalid` (exit 5), ``E_VERSION`` -> :class:`LinkMismatch`
(exit 6), everything else and timeouts -> :class:`LinkError` (exit 3).
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
import time

from host_tools import fwimport  # noqa: F401  (firmware/ importable, micropython shim)
from host_tools.device import portlock
from host_tools.errors import AccessDenied, DeviceError, InvalidInput, Mismatch

# isort: split
from cryo.link import framing
from cryo.link import messages as msg

DEFAULT_TIMEOUT = 2.0
DEFAULT_BAUD = 115200
_TEL_QUEUE = 4096  # telemetry frames kept for readers (bounded)


class LinkError(DeviceError):
    """The device refused or did not answer; ``code`` is the E_* code or None."""

    def __init__(self, message, code=None, reply=None):
        super().__init__(message)
        self.code = code
        self.reply = reply or {}

    @property
    def treatment_running(self):
        return self.code == msg.E_STATE and "treatment" in str(self).lower()


class LinkDenied(AccessDenied):
    def __init__(self, message, code=msg.E_DENIED, reply=None):
        super().__init__(message)
        self.code = code
        self.reply = reply or {}


class LinkInvalid(InvalidInput):
    def __init__(self, message, code=msg.E_INVALID, reply=None):
        super().__init__(message)
        self.code = code
        self.reply = reply or {}


class LinkMismatch(Mismatch):
    def __init__(self, message, code=msg.E_VERSION, reply=None):
        super().__init__(message)
        self.code = code
        self.reply = reply or {}


_ERROR_CLASS = {
    msg.E_DENIED: LinkDenied,
    msg.E_INVALID: LinkInvalid,
    msg.E_ARGS: LinkInvalid,
    msg.E_VERSION: LinkMismatch,
    msg.E_AUTH: LinkDenied,
    msg.E_LOCKED: LinkDenied,
}


def error_for(reply: dict):
    """The exception a failed reply maps to."""
    code = reply.get("err")
    cls = _ERROR_CLASS.get(code, LinkError)
    return cls("device: %s (%s)" % (reply.get("msg", "error"), code), code, reply)


class _SerialLike:
    """Adapts a raw file descriptor pair (tests, pipes) to read/write."""

    def __init__(self, rfd, wfd):
        self.rfd, self.wfd = rfd, wfd

    def read(self, n):
        import os
        import select

        r, _, _ = select.select([self.rfd], [], [], 0.05)
        return os.read(self.rfd, n) if r else b""

    def write(self, data):
        import os

        return os.write(self.wfd, data)

    def close(self):
        pass


# What a MicroPython REPL (not the controller) answers a frame with.
_REPL_MARKS = (b">>>", b"raw REPL", b"Traceback", b"Error:")


def open_serial(port: str, baudrate: int = DEFAULT_BAUD):
    """Open ``port`` (device path or pyserial URL) with a short read timeout."""
    import serial

    kw = {} if "://" in port else {"exclusive": True}
    if "://" not in port and not os.path.exists(port):
        raise DeviceError(
            f"no such port: {port} (is the board connected? `cryo sim` prints its port)"
        )
    try:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=0.05, write_timeout=2, **kw)
    except (serial.SerialException, OSError, ValueError) as e:
        text = str(e)
        if "exclusively lock" in text or "Resource temporarily unavailable" in text:
            raise DeviceError(portlock.busy_message(port, {})) from None
        if "://" in port:
            raise DeviceError(f"cannot connect to {port}: {e}") from None
        raise DeviceError(f"cannot open {port}: {e}") from None


BOOT_WAIT = 8.0  # s a board may take from reset to a running controller
REPL_SETTLE = 0.3  # s for a restarting board's stale output to arrive before asking again


class Link:
    """Client of the firmware command channel.

    ``Link(port)`` opens and starts the reader; use as a context manager or
    call ``close()``. ``request(cmd, **fields)`` returns the reply dict
    (``ok`` true) or raises; helpers below wrap each command.
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
        self._closed_reason = None
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
                self._closed_reason = str(e) or type(e).__name__
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
                self.saw_repl = True
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
            self.saw_repl = True
            return
        with self._lock:
            slot = self._pending.get(obj.get("id"))
            if slot is None:
                self.orphan_replies += 1
                return
            slot[0] = obj
            slot[1].set()

    # ---- requests -------------------------------------------------------

    def request(self, cmd: str, timeout: float | None = None, **fields) -> dict:
        obj = {"cmd": cmd}
        obj.update(fields)
        reply = self._exchange(obj, timeout)
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
        obj = dict(fields, cmd=cmd)
        reply = self._exchange(obj, wait, (self.credentials.key(ch), ch["nonce"]))
        if not reply.get("ok"):
            raise error_for(reply)
        return reply

    def _exchange(self, obj: dict, timeout: float | None, auth=None) -> dict:
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
        slot = [None, threading.Event()]
        with self._lock:
            self._pending[rid] = slot
        try:
            try:
                self._ser.write(frame)
            except Exception as e:  # noqa: BLE001 - pyserial raises several types
                raise LinkError(f"cannot write to {self.port}: {e}") from None
            wait = self.timeout if timeout is None else timeout
            if not slot[1].wait(wait) or slot[0] is None:
                if self._closed_reason:
                    raise LinkError(f"link to {self.port} lost: {self._closed_reason}")
                raise LinkError(
                    f"no reply to {cmd!r} from {self.port} within {wait:g} s "
                    "(is the controller running with its command channel?)"
                )
        finally:
            with self._lock:
                self._pending.pop(rid, None)
        return slot[0]

    def await_controller(self, boot_wait: float = BOOT_WAIT, repl_ok=False) -> bool:
        """Wait until the controller answers ``hello`` (True).

        Silence is a board still booting: asked again until ``boot_wait`` s
        have passed, so no command breaks into boot.py/main.py; then
        LinkError (``booting``). A MicroPython REPL answering instead means
        no controller runs: False with ``repl_ok``, else LinkError.
        """
        deadline = time.monotonic() + boot_wait
        settled = False
        while True:
            try:
                self.hello()
                return True
            except LinkError as e:
                if getattr(e, "code", None) is not None or self._closed_reason:
                    raise
            if self.saw_repl and not settled:
                # Maybe only the output of a board that was restarting (the
                # prompt a previous session left, printed before its soft
                # reset started the controller): forget it and ask again.
                # A REPL answers the fresh request too (it echoes every
                # line); a controller still starting is silent, so it is
                # waited for like any boot.
                settled = True
                time.sleep(REPL_SETTLE)
                self.saw_repl = False
                continue
            if self.saw_repl:
                if repl_ok:
                    return False
                raise LinkError(
                    f"no controller running on {self.port}: the board is at the MicroPython "
                    "REPL (stopped by another tool?); restart it with `cryo reset`"
                )
            if time.monotonic() >= deadline:
                err = LinkError(
                    f"no answer from {self.port} within {boot_wait:g} s: neither the "
                    "controller nor a REPL (still booting, hung, or in the raw REPL of "
                    "another tool); not interrupting it: retry, or `cryo reset`"
                )
                err.booting = True
                raise err

    def hello(self):
        r = self.request("hello")
        if r.get("proto") != msg.VERSION:
            raise LinkMismatch(
                f"device speaks protocol {r.get('proto')}, host {msg.VERSION}: update one side"
            )
        return r

    def status(self) -> dict:
        return self.request("status")["status"]

    def set_telemetry(self, rate_hz: float) -> dict:
        return self.request("telemetry", rate_hz=rate_hz)

    def get(self, name: str):
        return self.request("get", name=name)["value"]

    def set(self, name: str, value, role: str = "engineer"):
        return self.request("set", name=name, value=value, role=role)["value"]

    def save(self, role: str = "engineer"):
        return self.request("save", role=role)

    def autotune(self, action: str, role: str | None = None, **params) -> dict:
        if role is not None:
            params["role"] = role
        return self.request("autotune", action=action, **params)["state"]

    def step_test(self, action: str, role: str | None = None, **params) -> dict:
        if role is not None:
            params["role"] = role
        return self.request("step", action=action, **params)["state"]

    def ack(self, role: str = "operator"):
        return self.request("ack", role=role)

    def service(self, role: str = "service", unlock_s: int | None = None):
        """Service mode; on a provisioned device the REPL unlock for ``unlock_s`` s."""
        if unlock_s is None:
            return self.request("service", role=role)
        return self.request("service", role=role, unlock_s=unlock_s)

    def stats(self) -> dict:
        return self.request("stats")["stats"]

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


def request_service_mode(
    port: str, role: str = "service", timeout: float = DEFAULT_TIMEOUT, boot_wait=BOOT_WAIT
):
    """Ask the running firmware to enter service mode (used by host_tools.device.connect before file work).

    Returns the reply dict, or ``{"controller": False}`` when a MicroPython
    REPL answered instead (no controller runs: nothing to stop). A board
    still booting is waited for (:meth:`Link.await_controller`). Raises
    LinkError with ``treatment_running`` true when the controller is not idle.
    """
    with Link(port, timeout=timeout) as link:
        if not link.await_controller(boot_wait, repl_ok=True):
            return {"controller": False}
        return link.service(role)
