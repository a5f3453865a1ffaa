"""The real-time virtual board (`cryo sim`): the firmware on a pseudo-terminal.

``cryo sim [--link PATH] [--flash FILE] [--plant P] ...`` starts the
firmware in the MicroPython unix port on a pseudo-terminal and bridges it to
a second pty that mpremote / pyserial open like a USB serial port (real
time). ``cryo sim run --plant P --scenario S --seed N --flash FILE
--duration S`` runs the firmware's control tick in fast virtual time.

How the serial line is made to behave like a board's USB serial port:

* the relay is ``host_tools.virtual.relay.PtyRelay`` (flow-controlled both
  ways); pty A carries the interpreter (``setsid`` + ``TIOCSCTTY``, so it is the
  controlling terminal); its line discipline is reset before every start:
  no ONLCR (the port already sends ``\\r\\n``; a doubled ``\\r`` hangs
  mpremote), no echo, no canonical mode, ISIG off: the relay, not the
  kernel, turns Ctrl-C into SIGINT (next point);
* pty B is what the host opens; the relay copies A <-> B. A 0x03 that
  arrives while code runs (a script, or code started from the raw REPL)
  becomes a KeyboardInterrupt at a safe point of the interpreter
  (``host_tools.virtual.interrupt``); at the REPL prompt it is plain input.
  If the firmware disabled Ctrl-C the byte is dropped, as a board ignores
  it, instead of killing the interpreter;
* the unix port exits on Ctrl-D; the relay prints ``MPY: soft reboot`` and
  starts it again: boot.py then main.py, or, after a soft reset from the raw
  REPL, boot.py only and back into the raw REPL (mpremote's expectation);
* ``machine.reset()``, an unfed ``machine.WDT`` and a flash power cut arrive
  on a control pipe (``SIM_CTRL_FD``); the relay kills the interpreter and
  starts it again (hard reset: main.py runs; the watchdog is disarmed).
"""

from __future__ import annotations

import os
import sys
import termios
import time

from host_tools import FIRMWARE_DIR
from host_tools.interpreter import micropython_exe
from host_tools.mpylib import MPYLIB_DIR
from host_tools.sim import (
    DEFAULT_FLASH,
    SIM_DIR,
    _abs,
    _sim_modules,
    check_plant,
    check_scenario,
    flash_blocks,
    read_panel,
    sim_uid,
    write_panel,
)
from host_tools.virtual.interrupt import RUNNING_MARK, CtrlC
from host_tools.virtual.relay import (
    close_fds,
    close_relay,
    kill_board,
    open_relay,
    spawn_on_pty,
)


def _base_termios(fd):
    """Board-like line discipline: raw bytes, no echo, no ONLCR, ISIG off
    (the relay delivers Ctrl-C), and the running mark."""
    a = termios.tcgetattr(fd)
    a[0] &= ~(termios.ICRNL | termios.INLCR | termios.IGNCR | termios.IXON | termios.ISTRIP)
    a[1] &= ~termios.ONLCR
    a[3] &= ~(termios.ICANON | termios.ECHO | termios.ECHONL | termios.IEXTEN | termios.ISIG)
    a[3] |= RUNNING_MARK
    a[6][termios.VMIN] = 1
    a[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, a)


class VirtualBoard:
    """The real-time virtual board: interpreter on pty A, host side on pty B."""

    def __init__(
        self,
        flash=DEFAULT_FLASH,
        plant="default",
        seed=0,
        scenario=None,
        link=None,
        power_cut_after=None,
        tear=False,
        flash_kib=2048,
        board=None,
        rom=None,
        log=None,
        panel=None,
        tcp=None,
    ):
        self.flash = _abs(flash)
        self.plant = check_plant(plant)
        self.seed = seed
        self.scenario = check_scenario(scenario)
        self.link = link
        self.tcp_port = tcp  # also serve the line on 127.0.0.1:PORT (0: any free port)
        self.relay = None
        self.power_cut_after = power_cut_after
        self.tear = tear
        self.blocks = flash_blocks(flash_kib)
        self.board = _abs(board)
        self.rom = _abs(rom) if rom else str(FIRMWARE_DIR)
        self.log = log or (lambda msg: print("cryo sim:", msg, file=sys.stderr, flush=True))
        self.proc = None
        self.port = None
        self.uid = None
        self.resets = []
        self._stop = False
        self._raw = False
        self._exec_raw = False
        self._enter_raw = False
        self._tail = b""
        self._ctrl_c = None  # Ctrl-C for the interpreter (interrupt.CtrlC)
        self._kill_reason = None
        self._wdt_ms = 0
        self._wdt_fed = 0.0
        self._ctrl_r = None
        self._ctrl_buf = b""
        self._serial_events = self._load_serial_events()
        self._t_boot = None
        self._t0_ms = None
        if panel and os.path.exists(panel):
            read_panel(panel)  # refused before anything is made: never overwritten
        import tempfile

        self._state_dir = tempfile.mkdtemp(prefix="cryo-sim-")
        self.state_path = os.path.join(self._state_dir, "plant-state.json")
        # The front panel: the physical inputs (footswitch, handpiece,
        # e-stop) as a JSON file the host writes (write_panel); the board
        # reads it about every 100 ms. Created with nothing pressed.
        self.panel = _abs(panel) if panel else os.path.join(self._state_dir, "panel.json")
        write_panel(self.panel, reset=True)

    def _load_serial_events(self):
        """Scenario ``serial`` events: the relay types them on the line."""
        if not self.scenario:
            return []
        _, scenario = _sim_modules()
        out = []
        for ev in scenario.load(self.scenario)["events"]:
            if ev["event"] != "serial":
                continue
            if "frame" in ev:
                from host_tools import fwimport

                fwimport.ensure()
                from cryo.link.framing import encode

                out.append((float(ev["t"]), encode(ev["frame"])))
            else:
                out.append((float(ev["t"]), ev["data"].encode()))
        return out

    # -- lifecycle --
    @property
    def tcp(self):
        return self.relay.tcp if self.relay is not None else None

    def open(self):
        self.uid = sim_uid(self.flash, self.blocks)  # the image's chip id: one board, one serial
        self.relay = open_relay(self.tcp_port, self.link, self.log)
        self.port = self.relay.port
        self._ctrl_c = CtrlC(self.relay.a_slave, self._write_a)
        self._spawn("power", first=True)
        self._t_boot = time.monotonic()
        return self.port

    def _spawn(self, mode, first=False):
        _base_termios(self.relay.a_slave)
        r, w = os.pipe()
        env = dict(
            os.environ,
            MICROPYPATH=f"{MPYLIB_DIR}:{SIM_DIR}:{FIRMWARE_DIR}",
            SIM_FLASH=self.flash or "",
            SIM_FLASH_BLOCKS=str(self.blocks),
            SIM_PLANT=self.plant,
            SIM_SEED=str(self.seed),
            SIM_SCENARIO=self.scenario or "",
            SIM_BOARD=self.board or "",
            SIM_ROM=self.rom,
            SIM_DIR=str(SIM_DIR),
            SIM_CTRL_FD=str(w),
            SIM_UID=self.uid,
            SIM_RESET_MODE=mode,
            SIM_RESET_CAUSE=mode,
        )
        if first:
            self._t0_ms = int(time.monotonic() * 1000)
        env["SIM_T0_MS"] = str(self._t0_ms)
        env["SIM_STATE"] = self.state_path
        env["SIM_PANEL"] = self.panel
        env.pop("SIM_POWER_CUT_AFTER", None)
        if first and self.power_cut_after is not None:
            env["SIM_POWER_CUT_AFTER"] = str(self.power_cut_after)
            env["SIM_TEAR"] = "1" if self.tear else "0"
        cmd = [micropython_exe()]
        if not self.flash:  # RAM flash lives on the interpreter's heap
            cmd += ["-X", "heapsize=%dK" % (2048 + self.blocks * 4)]
        self.proc = spawn_on_pty(
            cmd + ["-i", str(SIM_DIR / "sim_boot.py")],
            self.relay.a_slave,
            die_with_parent=True,
            env=env,
            cwd="/",
            pass_fds=(w,),
        )
        os.close(w)
        held = self._ctrl_c.attach(self.proc)
        if held:  # the reset answered a waiting Ctrl-C; what followed it goes on
            self._write_a(held)
        if self._ctrl_r is not None:
            os.close(self._ctrl_r)
        self._ctrl_r = r
        self._ctrl_buf = b""
        self._kill_reason = None
        self._exec_raw = False
        self._tail = b""
        self._enter_raw = mode == "raw"
        if mode in ("power", "reset", "wdt"):
            self._wdt_ms = 0  # a hard reset stops the watchdog
            self._raw = False

    def _kill(self, reason):
        self._kill_reason = reason
        kill_board(self.proc)

    def close(self):
        self._stop = True
        kill_board(self.proc)
        close_fds(self._ctrl_r)
        self._ctrl_r = None
        close_relay(self.relay, self.link)
        import shutil

        shutil.rmtree(self._state_dir, ignore_errors=True)

    def press(self, **inputs):
        """Operate the front panel: ``press(handpiece=1, footswitch=1)``."""
        return write_panel(self.panel, **inputs)

    # -- relay --
    def _restart(self):
        reason = self._kill_reason
        if reason is None:  # the interpreter exited itself: Ctrl-D / sys.exit
            mode = "raw" if self._raw else "soft"
            self._write_b(b"MPY: soft reboot\r\n")
        else:
            mode = reason
            time.sleep(0.05)
        self.resets.append((time.monotonic(), mode))
        self.log(f"board reset ({mode})")
        self._spawn(mode)

    def _write_b(self, data):
        self.relay.to_host(data)

    def _from_client(self, data):
        if self._ctrl_c.waiting():
            self._ctrl_c.hold(data)
            return
        out = bytearray()
        for i, b in enumerate(data):
            if b == 0x01:
                self._raw = True
            elif b == 0x02:
                self._raw = False
                self._exec_raw = False
            elif b == 0x04 and self._raw:
                self._exec_raw = True
                self._tail = b""  # only the output of this execution ends it
            if b == 0x03:
                if not self._ctrl_c.enabled():
                    continue  # Ctrl-C disabled by the firmware: a board ignores it
                running = self._ctrl_c.code_running()
                if running or self._exec_raw:
                    if not running:
                        out.append(b)  # the raw REPL's own reader sees it too
                    if out:
                        self._write_a(bytes(out))
                    self._ctrl_c.start(data[i + 1 :])
                    self._pump_interrupt()
                    return
            out.append(b)
        if out:
            self._write_a(bytes(out))

    def _pump_interrupt(self):
        held = self._ctrl_c.pump(self._exec_raw)
        if held:
            self._from_client(held)

    def _write_a(self, data):
        self.relay.to_board(data)

    def _from_board(self, data):
        self._write_b(data)
        t = self._tail + data
        if b"\x04>" in t:
            self._exec_raw = False
        if self._enter_raw and b">>> " in t:
            self._enter_raw = False
            self._raw = True
            self._write_a(b"\x01")
        self._tail = t[-8:]

    def _ctrl(self, data):
        self._ctrl_buf += data
        while b"\n" in self._ctrl_buf:
            line, self._ctrl_buf = self._ctrl_buf.split(b"\n", 1)
            if line.startswith(b"W"):
                self._wdt_ms = int(line[1:])
                self._wdt_fed = time.monotonic()
            elif line == b"F":
                self._wdt_fed = time.monotonic()
            elif line == b"K":
                self._ctrl_c.ready()
            elif line == b"R":
                self._kill("reset")
            elif line == b"P":
                self.log("power cut (flash)")
                self._kill("power")

    def serve(self, until=None):
        """Relay until stopped (signal) or ``until()`` is true."""
        relay = self.relay
        while not self._stop and (until is None or not until()):
            extra = [self._ctrl_r] if self._ctrl_r is not None else []
            wait = 0.001 if self._ctrl_c.waiting() else 0.02
            ready = relay.step(self._from_board, self._from_client, extra, timeout=wait)
            self._pump_interrupt()
            if self._ctrl_r is not None and self._ctrl_r in ready:
                try:
                    d = os.read(self._ctrl_r, 4096)
                except OSError:
                    d = b""
                if d:
                    self._ctrl(d)
                else:
                    os.close(self._ctrl_r)
                    self._ctrl_r = None
            while self._serial_events and (
                time.monotonic() - self._t_boot >= self._serial_events[0][0]
            ):
                self._from_client(self._serial_events.pop(0)[1])
            if self._wdt_ms and (time.monotonic() - self._wdt_fed) * 1000 > self._wdt_ms:
                self.log("watchdog expired")
                self._kill("wdt")
            if self.proc is not None and self.proc.poll() is not None:
                relay.drain_board(self._from_board)
                if self._stop:
                    break
                self._restart()
