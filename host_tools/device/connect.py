"""Finding and talking to a board: port resolution and a raw-REPL session.

mpremote's ``SerialTransport`` is used as a library (pinned version, see
pyproject.toml) with two rules:

* ``timeout=`` is always passed: on a pty ``read_until`` does a blocking
  ``read(1)`` and would hang forever without it. It is a few seconds, not
  one: mpremote reads the 2-byte answers of the raw REPL (``OK``, the
  raw-paste ``R\x01``) with a single read, and a board that answers late
  (a loaded host, a busy port) would leave that answer for the next
  request, out of step;
* ``enter_raw_repl(soft_reset=False)``: a soft reset would end the unix
  port (the virtual board) and would skip main.py on a real board anyway.

Before entering the raw REPL the firmware is asked, over its own command
channel (the command channel client, ``host_tools.device.link``), whether a treatment is running:
if so we refuse; otherwise we ask it to stop safely (service mode, valves
closed) instead of breaking in with a bare Ctrl-C.

Bulk transfers do not use mpremote's ``fs_readfile``/``fs_writefile`` (one
round trip per 256 bytes, repr-encoded): :meth:`Session.run_stream` runs one
command whose output is read straight off the serial port in large reads;
reads, writes and replies are framed and CRC-checked (``host_tools.device.transfer``).
Every session holds the port's lock (``host_tools.device.portlock``).
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import sys
import time

from host_tools.device import portlock, porturl, transfer
from host_tools.device.snippets import DEVICE_HELPERS
from host_tools.errors import AccessDenied, CryoError, DeviceError

ENV_PORT = "CRYO_PORT"
# USB vendor ids of boards we build for (MicroPython/pyboard, Raspberry Pi,
# Espressif native USB, ST, and the usual USB-UART bridges on dev boards).
KNOWN_VIDS = {0xF055, 0x2E8A, 0x303A, 0x0483, 0x10C4, 0x1A86, 0x0403}
WRITE_CHUNK = 4096


def _list_ports():
    from serial.tools import list_ports

    return list(list_ports.comports())


def resolve_port(port: str | None = None, *, environ=None, ports=None) -> str:
    """The port to use: ``--port``, else ``$CRYO_PORT``, else the one attached board.

    Raises DeviceError when no board (or more than one) is found, saying
    what to do.
    """
    environ = os.environ if environ is None else environ
    if port:
        return porturl.check(port)
    if environ.get(ENV_PORT):
        return porturl.check(environ[ENV_PORT], f"{ENV_PORT}=")
    found = [p for p in (_list_ports() if ports is None else ports) if p.vid in KNOWN_VIDS]
    if not found:
        raise DeviceError(
            "no board found: connect one by USB, or pass --port (serial device, pty, "
            "socket://HOST:PORT, rfc2217://HOST:PORT) or set CRYO_PORT"
        )
    if len(found) > 1:
        names = ", ".join(p.device for p in found)
        raise DeviceError(f"{len(found)} boards attached ({names}): choose one with --port")
    return found[0].device


def add_port_argument(parser):
    parser.add_argument(
        "--port",
        "-p",
        help="serial device, pty, socket://HOST:PORT or rfc2217://HOST:PORT "
        f"(default ${ENV_PORT}, else the single attached board)",
    )


TREATMENT_RUNNING = (
    "a treatment is running on the device: wait for it to finish (or stop it at the "
    "device) before this operation"
)
# A running controller answers within a few ticks: 0.1 s on the unix-port
# virtual board, up to 0.3 s on the emulated Cortex-M3 (its service entry
# writes the flash); a reply later than this is taken for no controller.
SERVICE_PROBE_TIMEOUT = 1.0


def _stop_safely(port: str, link_module=None) -> str:
    """Ask the running firmware to stop safely; refuse if a treatment runs.

    Uses ``host_tools.device.link.request_service_mode``: the controller closes
    the valves and enters SERVICE, or answers E_STATE while treating. A
    board at the REPL (blank, just deployed, stopped) answers as a REPL:
    nothing to stop. A board that is still booting is waited for, never
    interrupted. After a treatment the watchdog it armed blocks service
    mode until a reset: the board is asked to reset itself (as `cryo reset`
    does; refused during a treatment), then asked again, once. Returns what
    happened (for messages and tests).
    """
    try:
        return _ask_service(port, link_module)
    except _WatchdogArmed as e:
        from host_tools.device.probe import reset_controller

        try:
            done = reset_controller(port, None)
        except CryoError:
            done = None  # not reset: the refusal says what to do
        if done is None:
            raise DeviceError(
                f"the device refuses service mode: {e}; run `cryo reset` "
                "(with --pin on a locked board)"
            ) from None
    sys.stderr.write("cryo: the board's watchdog was armed by its last treatment: reset it first\n")
    try:
        return _ask_service(port, link_module)
    except _WatchdogArmed as e:
        raise DeviceError(f"the device refuses service mode: {e}") from None


class _WatchdogArmed(Exception):
    """Service mode refused until the board is reset (the device's words)."""


def _ask_service(port: str, link_module=None) -> str:
    if link_module is None:
        from host_tools.device import link as link_module
    try:
        reply = link_module.request_service_mode(port, timeout=SERVICE_PROBE_TIMEOUT)
    except AccessDenied:
        raise
    except CryoError as e:
        code = getattr(e, "code", None)
        if getattr(e, "booting", False):
            raise DeviceError(str(e)) from None
        if code is None:
            if "port busy" in str(e) or "cannot " in str(e):
                raise
            return "no command channel"
        text = str(e)
        if any(w in text for w in ("PRECOOL", "FREEZE", "THAW", "treatment running")):
            raise DeviceError(TREATMENT_RUNNING) from None
        if "watchdog" in text:
            raise _WatchdogArmed(text) from None
        raise DeviceError(f"the device refuses service mode: {text}") from None
    if isinstance(reply, dict) and reply.get("controller") is False:
        return "no command channel"
    return "service mode"


class Session:
    """A raw-REPL session on one board (context manager).

    ``exec``/``eval`` run code; ``write_file``/``stream`` move bytes in
    bulk. Every transport failure becomes a one-line DeviceError.
    """

    def __init__(self, port: str, *, timeout: float = 5.0, stop_firmware=True, restart=True):
        self.port = port
        self.timeout = timeout
        self.stop_firmware = stop_firmware
        # A controller we put into service mode is restarted when we leave:
        # a device must never be left idle at the REPL after a service job.
        self.restart = restart
        self.stopped = None
        self.transport = None
        self.bytes_written = 0
        self.files_written: list[str] = []
        self._have_prompt = False
        self._helpers = False
        self._locked = False
        self.retries = 0  # damaged exchanges repeated (host_tools.device.transfer)
        self.stream_timeout = 10.0  # s of silence before a transfer counts as lost

    # -- lifecycle -------------------------------------------------------
    def open(self):

        portlock.acquire(self.port)  # released by close()
        self._locked = True
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def _open(self):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        if self.stop_firmware:
            self.stopped = _stop_safely(self.port)
        try:
            self.transport = SerialTransport(self.port, baudrate=115200, timeout=self.timeout)
        except (TransportError, OSError, ValueError) as e:
            if "://" in self.port:
                raise DeviceError(f"cannot connect to {self.port}: {e}") from None
            if os.path.exists(self.port):
                raise DeviceError(portlock.busy_message(self.port, {})) from None
            raise DeviceError(
                f"no such port: {self.port} (is the board connected? `cryo sim` prints its port)"
            ) from None
        except Exception as e:  # pyserial raises SerialException for busy ports
            raise DeviceError(f"cannot open {self.port} (busy or missing?): {e}") from None
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints what it saw
                self.transport.enter_raw_repl(soft_reset=False, timeout_overall=5)
        except Exception as e:
            self.transport.close()
            self.transport = None
            raise DeviceError(
                f"no MicroPython raw REPL on {self.port} ({e}): the firmware ignores Ctrl-C "
                "(a treatment running with the console locked) or this build has no REPL"
            ) from None
        self.exec(DEVICE_HELPERS)
        self._helpers = True

    def close(self):
        if self.transport is not None:
            try:
                self.transport.exit_raw_repl()
                if self.restart and self.stopped == "service mode":
                    # Ctrl-D at the friendly REPL: soft reboot, boot.py then
                    # main.py run again (they do not after a raw-REPL reset).
                    self.transport.serial.write(b"\x04")
                    self.transport.serial.flush()
            except Exception:
                pass
            try:
                self.transport.close()
            except Exception:
                pass
            self.transport = None
        if self._locked:
            self._locked = False
            portlock.release(self.port)

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    # -- commands --------------------------------------------------------
    def exec(self, code: str, timeout: float = 10) -> bytes:
        from mpremote.transport import TransportError

        try:
            self._start(code)
            out, err = self.transport.follow(timeout)
        except TransportError as e:
            raise DeviceError(f"link to {self.port} lost: {e}") from None
        except OSError as e:
            raise DeviceError(f"link to {self.port} lost: {e}") from None
        if err:
            text = err.decode(errors="replace").strip().splitlines()
            raise DeviceError(f"device error: {text[-1] if text else '?'}")
        return out

    def _start(self, code: str):
        """Send ``code`` for execution (raw-paste), without waiting for output.

        Not mpremote's ``exec_raw_no_follow``: when stale bytes sit in the
        input (a second raw-REPL banner a restarting board printed), its
        single 2-byte read of the raw-paste answer misses, it falls back to
        the plain raw REPL and the board's late ``R\x01`` is then read as
        the answer to the next step: out of step for the whole session.
        Here the answer is searched for (stale output always comes before
        it). After a :meth:`stream` the ``>`` prompt may already have been
        read. Every command first feeds the firmware watchdog
        (``_cry_feed``).
        """
        from mpremote.transport import TransportError

        if self._helpers:
            code = "_cry_feed()\n" + code
        t = self.transport
        if not self._have_prompt:
            if not t.read_until(1, b">", timeout=self.timeout).endswith(b">"):
                raise TransportError("no raw REPL prompt")
        self._have_prompt = False
        data = code.encode() if isinstance(code, str) else code
        t.serial.write(b"\x05A\x01")
        got = t.read_until(2, b"R\x01", timeout=self.timeout)
        if not got.endswith(b"R\x01"):
            raise TransportError("device refused raw-paste mode (%r)" % got[-16:])
        t.raw_paste_write(data)

    def eval(self, expr: str):
        out = self.exec(f"print(repr({expr}))")
        try:
            return ast.literal_eval(out.decode().strip())
        except (ValueError, SyntaxError):
            raise DeviceError(f"unexpected reply from device: {out[:80]!r}") from None

    # -- bulk ------------------------------------------------------------
    def makedirs(self, path: str):
        self.exec(f"_cry_mk({path!r})")

    def write_file(self, path: str, data: bytes, progress=None):
        """Write ``data`` to ``path`` on the device (base64, 4 KiB chunks, CRC-checked)."""
        d = path.rsplit("/", 1)[0] if "/" in path else ""
        if d:
            self.makedirs(d)
        self.exec(f"_cry_open({path!r})")
        transfer.put(self, data, WRITE_CHUNK, progress)
        self.exec("_cry_close()")
        self.bytes_written += len(data)
        self.files_written.append(path)

    def read_file(self, path: str, offset: int = 0, progress=None) -> bytes:
        """Read ``path`` from ``offset`` to its end (framed, CRC-checked, retried)."""
        out = bytearray()
        transfer.fetch(self, path, offset, out.extend, progress)
        return bytes(out)

    def query(self, expr: str):
        """``eval`` for reads: the reply is CRC-checked and asked again if damaged."""
        return transfer.query(self, expr)

    def run_stream(self, code: str, feed, timeout: float | None = None):
        """Run ``code`` and hand its output to ``feed(bytes)`` as it arrives.

        Reads the serial port directly in large blocks (mpremote's
        ``follow`` reads one byte at a time on a pty and concatenates).
        Raises DeviceError after ``timeout`` s of silence, or with the
        device's error line.
        """
        from mpremote.transport import TransportError

        t = self.transport
        timeout = self.stream_timeout if timeout is None else timeout
        try:
            self._start(code)
        except (TransportError, OSError) as e:
            raise DeviceError(f"link to {self.port} lost: {e}") from None
        ser = t.serial
        last = time.monotonic()
        tail = bytearray()
        while True:
            try:
                n = ser.in_waiting
                data = ser.read(n if n > 0 else 1)
            except OSError as e:
                raise DeviceError(f"link to {self.port} lost: {e}") from None
            if data:
                last = time.monotonic()
                eof = data.find(b"\x04")
                if eof < 0:
                    feed(data)
                    continue
                feed(data[:eof])
                tail += data[eof + 1 :]
                break
            if time.monotonic() - last > timeout:
                raise DeviceError(f"link to {self.port} lost: no data for {timeout:.0f} s")
        # after the first \x04: stderr up to the second \x04, then '>'
        while tail.count(b"\x04") < 1:
            data = ser.read(max(1, ser.in_waiting))
            if not data:
                if time.monotonic() - last > timeout:
                    raise DeviceError(f"link to {self.port} lost while finishing a transfer")
                continue
            last = time.monotonic()
            tail += data
        cut = tail.find(b"\x04")
        self._have_prompt = b">" in tail[cut:]
        err = bytes(tail[:cut])
        if self._have_prompt:
            self.exec("pass")  # leaves the next '>' unread, as mpremote expects
        if err.strip():
            lines = err.decode(errors="replace").strip().splitlines()
            raise DeviceError(f"device error: {lines[-1]}")

    def recover(self):
        """Back to a clean raw-REPL prompt after a damaged exchange.

        Interrupts whatever still runs (Ctrl-C), discards what is in flight
        and re-enters the raw REPL; the helpers survive (same interpreter).
        """
        t = self.transport
        try:
            t.serial.write(b"\r\x03\x03")
            time.sleep(0.2)
            t.serial.reset_input_buffer()
            with contextlib.redirect_stdout(io.StringIO()):
                t.enter_raw_repl(soft_reset=False, timeout_overall=5)
        except Exception as e:  # noqa: BLE001 - any transport failure means the link is gone
            raise DeviceError(f"link to {self.port} lost: cannot recover the REPL ({e})") from None
        self._have_prompt = False
