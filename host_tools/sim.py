"""`cryo sim`: the virtual board.

``cryo sim [--link PATH] [--flash FILE] [--plant P] ...`` starts the
firmware in the MicroPython unix port on a pseudo-terminal and bridges it to
a second pty that mpremote / pyserial open like a USB serial port (real
time). ``cryo sim run --plant P --scenario S --seed N --flash FILE
--duration S`` runs the firmware's control tick in fast virtual time.

How the serial line is made to behave like a board's USB serial port:

* pty A carries the interpreter (``setsid`` + ``TIOCSCTTY``, so it is the
  controlling terminal); its line discipline is reset before every start:
  no ONLCR (the port already sends ``\\r\\n``; a doubled ``\\r`` hangs
  mpremote), no echo, no canonical mode, but ISIG on so Ctrl-C raises SIGINT
  while a script (boot.py/main.py) runs;
* pty B is what the host opens; the relay copies A <-> B. A 0x03 that
  arrives while code started from the raw REPL is running (the unix port
  leaves the tty raw there, so the byte alone does nothing) is also sent as
  SIGINT — unless the firmware disabled Ctrl-C (``kbd_intr(-1)`` restores
  SIGINT to SIG_DFL on unix: the relay sees that in /proc and drops the
  byte, as a board would ignore it, instead of killing the interpreter);
* the unix port exits on Ctrl-D; the relay prints ``MPY: soft reboot`` and
  starts it again: boot.py then main.py, or, after a soft reset from the raw
  REPL, boot.py only and back into the raw REPL (mpremote's expectation);
* ``machine.reset()``, an unfed ``machine.WDT`` and a flash power cut arrive
  on a control pipe (``SIM_CTRL_FD``); the relay kills the interpreter and
  starts it again (hard reset: main.py runs; the watchdog is disarmed).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path

from host_tools import BOARDS_DIR, FIRMWARE_DIR
from host_tools.errors import CryoError, DeviceError, InvalidInput
from host_tools.interpreter import micropython_exe
from host_tools.simrelay import HIGH_WATER, OutQueue, TcpEndpoint

SIM_DIR = BOARDS_DIR / "sim"
DEFAULT_FLASH = "cryo-sim-flash.img"
BLOCK_SIZE = 4096
MARK = "@@SIM@@"


def _sim_modules():
    if str(SIM_DIR) not in sys.path:
        sys.path.insert(0, str(SIM_DIR))
    import plant
    import scenario

    return plant, scenario


def _check_shipped(sub, load, error, name):
    """Validate a shipped name or JSON file on the host; returns what the board loads."""
    try:
        load(name)
    except error as e:
        shipped = sorted(p.stem for p in (SIM_DIR / sub).glob("*.json"))
        raise InvalidInput(f"{e} (shipped {sub}: {', '.join(shipped)})")
    return str(Path(name).resolve()) if ("/" in name or name.endswith(".json")) else name


def check_plant(name: str) -> str:
    plant, _ = _sim_modules()
    return _check_shipped("plants", plant.load, plant.PlantError, name)


def check_scenario(name: str | None):
    if not name:
        return None
    _, scenario = _sim_modules()
    return _check_shipped("scenarios", scenario.load, scenario.ScenarioError, name)


def _abs(path):
    return str(Path(path).resolve()) if path else None


def sim_uid(flash) -> str:
    """The virtual board's ``machine.unique_id()`` (12 hex digits): derived
    from its flash image's resolved path, so every image is its own board
    with its own serial and archive folder; a RAM-only board gets 'SIM' 0001."""
    if not flash:
        return "53494d000001"
    import hashlib

    return hashlib.sha256(str(Path(flash).resolve()).encode()).hexdigest()[:12]


def flash_blocks(size_kib: int) -> int:
    if size_kib * 1024 % BLOCK_SIZE or size_kib < 64:
        raise InvalidInput(
            f"--flash-size must be a multiple of 4 KiB and at least 64 KiB, got {size_kib}"
        )
    return size_kib * 1024 // BLOCK_SIZE


# --------------------------------------------------------------------- fast
def run_fast(
    plant="default",
    scenario=None,
    seed=0,
    flash=None,
    duration_s=60.0,
    trace=None,
    trace_ms=100,
    config=None,
    start_ms=0,
    autostart=True,
    flash_kib=2048,
    board=None,
    timeout=600,
):
    """Run ``cryo sim run`` and return its summary dict (used by tests/bench)."""
    opts = {
        "plant": check_plant(plant),
        "scenario": check_scenario(scenario),
        "seed": int(seed),
        "flash": _abs(flash),
        "flash_blocks": flash_blocks(flash_kib),
        "duration_s": float(duration_s),
        "trace": _abs(trace),
        "trace_ms": int(trace_ms),
        "config": config,
        "start_ms": int(start_ms),
        "autostart": bool(autostart),
        "board": _abs(board),
        "rom": str(FIRMWARE_DIR),
        "sim": str(SIM_DIR),
    }
    env = dict(os.environ, MICROPYPATH=f"{SIM_DIR}:{FIRMWARE_DIR}", SIM_UID=sim_uid(flash))
    cmd = [micropython_exe()]
    if not flash:  # RAM flash lives on the interpreter's heap
        cmd += ["-X", "heapsize=%dK" % (2048 + opts["flash_blocks"] * 4)]
    # Options go in a file: the PyPI unix port aborts ("FATAL: uncaught
    # NLR") on any command-line argument of 256 characters or more.
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="cryo-sim-") as f:
        json.dump(opts, f)
        f.flush()
        cmd += [str(SIM_DIR / "fastrun.py"), f.name]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"cryo sim run did not finish within {timeout} s")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise CryoError(
            "the virtual board failed:\n" + (proc.stdout[-3000:] + proc.stderr[-3000:]).strip()
        )
    out = json.loads(lines[-1][len(MARK) :])
    out["console"] = "\n".join(ln for ln in proc.stdout.splitlines() if not ln.startswith(MARK))
    return out


def _cmd_run(args):
    if not args.duration > 0:
        raise InvalidInput(f"--duration must be > 0 virtual seconds, got {args.duration:g}")
    config = None
    if args.config:
        try:
            config = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as e:
            raise InvalidInput(f"--config {args.config}: {e}")
    s = run_fast(
        plant=args.plant,
        scenario=args.scenario,
        seed=args.seed,
        flash=args.flash,
        duration_s=args.duration,
        trace=args.trace,
        trace_ms=args.trace_ms,
        config=config,
        start_ms=args.start_ms,
        autostart=not args.no_autostart,
        flash_kib=args.flash_size,
        board=args.board,
    )
    if args.json:
        print(json.dumps(s, indent=1))
        return 1 if s["errors"] else 0
    st = s.get("status") or {}
    print(
        f"plant {s['plant']} seed {s['seed']}: {s['duration_s']:.1f} s virtual in "
        f"{s['wall_s']:.2f} s ({s['speed_x']:.0f}x real time), {s['ticks']} ticks"
    )
    print(
        f"surface min {s['min_surface_c']:.1f} C, probe min {s['min_probe_c']:.1f} C, "
        f"valve open {s['valve_open_s']:.1f} s ({s['valve_cycles']} cycles), "
        f"reservoir {s['reservoir_fraction'] * 100:.0f} %"
    )
    print(f"final phase {st.get('phase')} ({st.get('reason') or '-'}), latched {st.get('latched')}")
    for t, cause in s["resets"]:
        print(f"reset at {t / 1000:.1f} s: {cause}")
    for e in s["errors"]:
        print("error:", e)
    if args.flash:
        print(f"flash image: {args.flash}")
    return 1 if s["errors"] else 0  # an exception escaped the firmware


# ---------------------------------------------------------------- real time
def _base_termios(fd):
    """Board-like line discipline: raw bytes, no echo, no ONLCR, ISIG on."""
    a = termios.tcgetattr(fd)
    a[0] &= ~(termios.ICRNL | termios.INLCR | termios.IGNCR | termios.IXON | termios.ISTRIP)
    a[1] &= ~termios.ONLCR
    a[3] &= ~(termios.ICANON | termios.ECHO | termios.ECHONL | termios.IEXTEN)
    a[3] |= termios.ISIG
    a[6][termios.VMIN] = 1
    a[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, a)


def _die_with_parent():
    """Linux: the interpreter gets SIGKILL if `cryo sim` dies (no orphans)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _sigint_caught(pid) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except OSError:
        pass
    return True


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
        self.tcp = None
        self._to_a = None  # host -> board bytes waiting for the board's pty
        self._to_b = None  # board -> host bytes waiting for pty B (flow control)
        self.power_cut_after = power_cut_after
        self.tear = tear
        self.blocks = flash_blocks(flash_kib)
        self.board = _abs(board)
        self.rom = _abs(rom) if rom else str(FIRMWARE_DIR)
        self.log = log or (lambda msg: print("cryo sim:", msg, file=sys.stderr, flush=True))
        self.proc = None
        self.port = None
        self.resets = []
        self._stop = False
        self._raw = False
        self._exec_raw = False
        self._enter_raw = False
        self._tail = b""
        self._kill_reason = None
        self._wdt_ms = 0
        self._wdt_fed = 0.0
        self._ctrl_r = None
        self._ctrl_buf = b""
        self._serial_events = self._load_serial_events()
        self._t_boot = None
        self._t0_ms = None
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
    def open(self):
        self._a_master, self._a_slave = os.openpty()
        self._b_master, self._b_slave = os.openpty()
        tty.setraw(self._b_slave)
        a = termios.tcgetattr(self._b_slave)
        a[1] &= ~termios.ONLCR
        termios.tcsetattr(self._b_slave, termios.TCSANOW, a)
        for fd in (self._a_master, self._b_master):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.port = os.ttyname(self._b_slave)
        self._to_a = OutQueue(self._a_master, high_water=HIGH_WATER)
        self._to_b = OutQueue(self._b_master)
        if self.tcp_port is not None:
            try:
                self.tcp = TcpEndpoint(int(self.tcp_port))
            except OSError as e:
                raise DeviceError(f"--tcp {self.tcp_port}: {e.strerror}")
        if self.link:
            try:
                if os.path.islink(self.link):
                    os.unlink(self.link)
                os.symlink(self.port, self.link)
            except OSError as e:
                raise DeviceError(f"--link {self.link}: {e.strerror}")
        self._spawn("power", first=True)
        self._t_boot = time.monotonic()
        return self.port

    def _spawn(self, mode, first=False):
        _base_termios(self._a_slave)
        r, w = os.pipe()
        env = dict(
            os.environ,
            MICROPYPATH=f"{SIM_DIR}:{FIRMWARE_DIR}",
            SIM_FLASH=self.flash or "",
            SIM_FLASH_BLOCKS=str(self.blocks),
            SIM_PLANT=self.plant,
            SIM_SEED=str(self.seed),
            SIM_SCENARIO=self.scenario or "",
            SIM_BOARD=self.board or "",
            SIM_ROM=self.rom,
            SIM_DIR=str(SIM_DIR),
            SIM_CTRL_FD=str(w),
            SIM_UID=sim_uid(self.flash),
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
        slave = self._a_slave

        def child_setup():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            _die_with_parent()

        cmd = [micropython_exe()]
        if not self.flash:  # RAM flash lives on the interpreter's heap
            cmd += ["-X", "heapsize=%dK" % (2048 + self.blocks * 4)]
        self.proc = subprocess.Popen(
            cmd + ["-i", str(SIM_DIR / "sim_boot.py")],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd="/",
            pass_fds=(w,),
            preexec_fn=child_setup,
            close_fds=True,
        )
        os.close(w)
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
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()

    def close(self):
        self._stop = True
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        for fd in (self._a_master, self._a_slave, self._b_master, self._b_slave, self._ctrl_r):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._ctrl_r = None
        if self.tcp is not None:
            self.tcp.close()
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)
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
        """Board output to the host side. With a TCP client connected the
        socket gets the flow control and pty B is best effort."""
        tcp = self.tcp
        if tcp is not None and tcp.client is not None:
            tcp.out.put(data)
            try:
                os.write(self._b_master, data)
            except OSError:
                pass
            return
        self._to_b.put(data)

    def _host_queue(self):
        tcp = self.tcp
        return tcp.out if tcp is not None and tcp.client is not None else self._to_b

    def _from_client(self, data):
        out = bytearray()
        for b in data:
            if b == 0x01:
                self._raw = True
            elif b == 0x02:
                self._raw = False
                self._exec_raw = False
            elif b == 0x04 and self._raw:
                self._exec_raw = True
                self._tail = b""  # only the output of this execution ends it
            if b == 0x03:
                pid = self.proc.pid if self.proc else None
                if pid is not None and not _sigint_caught(pid):
                    continue  # Ctrl-C disabled by the firmware: a board ignores it
                isig = bool(termios.tcgetattr(self._a_slave)[3] & termios.ISIG)
                if not isig and self._exec_raw:
                    self._write_a(bytes(out) + b"\x03")
                    out.clear()
                    try:
                        os.kill(pid, signal.SIGINT)
                    except OSError:
                        pass
                    continue
            out.append(b)
        if out:
            self._write_a(bytes(out))

    def _write_a(self, data):
        # Queued, never dropped while the board reads its input (see simrelay).
        self._to_a.put(data)

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
            elif line == b"R":
                self._kill("reset")
            elif line == b"P":
                self.log("power cut (flash)")
                self._kill("power")

    def serve(self, until=None):
        """Relay until stopped (signal) or ``until()`` is true."""
        while not self._stop and (until is None or not until()):
            out_q = self._host_queue()
            fds = [self._b_master]
            if not out_q:  # back-pressure: the board waits while the host lags
                fds.append(self._a_master)
            if self._ctrl_r is not None:
                fds.append(self._ctrl_r)
            tcp = self.tcp
            if tcp is not None:
                fds.append(tcp.fileno())
                if tcp.client is not None:
                    fds.append(tcp.client.fileno())
            wfds = [q.fd for q in (out_q, self._to_a) if q]
            try:
                r, w, _ = select.select(fds, wfds, [], 0.02)
            except InterruptedError:
                continue
            if out_q.fd in w:
                out_q.flush()
            if self._to_a.fd in w:
                self._to_a.flush()
            if out_q.stalled():
                n = out_q.drop()
                self.log(f"host not reading: {n} bytes of board output dropped")
            if tcp is not None:
                if tcp.fileno() in r:
                    tcp.accept()
                if tcp.client is not None and tcp.client.fileno() in r:
                    d = tcp.read()
                    if d:
                        self._from_client(d)
            if self._ctrl_r in r:
                try:
                    d = os.read(self._ctrl_r, 4096)
                except OSError:
                    d = b""
                if d:
                    self._ctrl(d)
                else:
                    os.close(self._ctrl_r)
                    self._ctrl_r = None
            if self._a_master in r:
                try:
                    d = os.read(self._a_master, 65536)
                except (BlockingIOError, OSError):
                    d = b""
                if d:
                    self._from_board(d)
            if self._b_master in r:
                try:
                    d = os.read(self._b_master, 65536)
                except (BlockingIOError, OSError):
                    d = b""
                if d:
                    self._from_client(d)
            while self._serial_events and (
                time.monotonic() - self._t_boot >= self._serial_events[0][0]
            ):
                self._from_client(self._serial_events.pop(0)[1])
            if self._wdt_ms and (time.monotonic() - self._wdt_fed) * 1000 > self._wdt_ms:
                self.log("watchdog expired")
                self._kill("wdt")
            if self.proc is not None and self.proc.poll() is not None:
                # drain what the board printed last
                try:
                    while True:
                        d = os.read(self._a_master, 65536)
                        if not d:
                            break
                        self._from_board(d)
                except (BlockingIOError, OSError):
                    pass
                if self._stop:
                    break
                self._restart()


PANEL_INPUTS = ("estop", "footswitch", "handpiece")


def write_panel(path, reset=False, **inputs):
    """Set physical inputs of a running real-time virtual board.

    ``path``: the front-panel file (``cryo sim --panel FILE``, printed at
    start). ``inputs``: ``footswitch``/``handpiece`` 1 = pressed/held,
    ``estop`` 1 = loop closed (0 = pressed). Merged into the file's current
    content and written in place (the board keeps the file open, so no
    rename). Returns the panel state written.
    """
    for k, v in inputs.items():
        if k not in PANEL_INPUTS:
            raise InvalidInput(
                f"front panel: unknown input {k!r}; allowed: {', '.join(PANEL_INPUTS)}"
            )
        if v not in (0, 1, True, False):
            raise InvalidInput(f"front panel: {k} must be 0 or 1, got {v!r}")
    state = {}
    if not reset:
        try:
            with open(path) as f:
                state = json.loads(f.read() or "{}")
        except (OSError, ValueError):
            state = {}
    state.update({k: int(bool(v)) for k, v in inputs.items()})
    text = json.dumps(state, sort_keys=True)
    with open(path, "r+" if os.path.exists(path) else "w") as f:
        f.write(text.ljust(64))  # fixed size: a read never sees a shorter tail
        f.truncate()
    return state


def _cmd_panel(args):
    inputs = {}
    for k in PANEL_INPUTS:
        v = getattr(args, k)
        if v is not None:
            inputs[k] = v
    if not inputs:
        raise InvalidInput(
            "cryo sim panel: give at least one of --footswitch, --handpiece, --estop"
        )
    print(json.dumps(write_panel(args.panel_file, **inputs)))
    return 0


def _cmd_realtime(args):
    vb = VirtualBoard(
        flash=args.flash or DEFAULT_FLASH,
        plant=args.plant,
        seed=args.seed,
        scenario=args.scenario,
        link=args.link,
        power_cut_after=args.power_cut_after,
        tear=args.tear,
        flash_kib=args.flash_size,
        board=args.board,
        rom=args.rom,
        panel=args.panel,
        tcp=args.tcp,
    )

    def stop(signum, frame):
        vb._stop = True

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        port = vb.open()
        print(
            f"virtual board on {port}"
            + (f" (link {args.link})" if args.link else "")
            + (f", {vb.tcp.url}" if vb.tcp else ""),
            flush=True,
        )
        print(
            f"  flash {vb.flash}, plant {args.plant}, seed {args.seed}; "
            f"try: mpremote connect {args.link or port} resume exec \"print('hi')\"",
            flush=True,
        )
        print(
            f"  front panel {vb.panel}: cryo sim panel {vb.panel} --handpiece 1 --footswitch 1",
            flush=True,
        )
        vb.serve()
    finally:
        vb.close()
        for s, h in old.items():
            signal.signal(s, h)
    print("cryo sim: stopped", file=sys.stderr)
    return 0


def _common(p, run=False):
    # `run` inherits what was given before it (cryo sim --plant X run ...):
    # its own options only override when given (SUPPRESS keeps the parent's).
    d = argparse.SUPPRESS if run else None
    p.add_argument(
        "--plant",
        default=d or "default",
        help="plant name (boards/sim/plants) or JSON file (default: default)",
    )
    p.add_argument("--seed", type=int, default=d or 0, help="noise seed (deterministic per seed)")
    p.add_argument(
        "--scenario", default=d, help="scenario name (boards/sim/scenarios) or JSON file"
    )
    p.add_argument(
        "--flash",
        default=d,
        help="littlefs2 flash image file (created if missing); default "
        + ("RAM only" if run else DEFAULT_FLASH),
    )
    p.add_argument(
        "--flash-size", type=int, default=d or 2048, help="flash size in KiB (default 2048)"
    )
    p.add_argument("--board", default=d, help="board.json (default boards/sim/board.json)")


def register(subparsers):
    p = subparsers.add_parser(
        "sim",
        help="start the virtual board (real time on a pty, or `run` in fast virtual time)",
        description="Start the virtual board on a pseudo-terminal (mpremote/pyserial open the "
        "printed port), or `cryo sim run` for fast virtual time.",
    )
    _common(p)
    p.add_argument("--link", help="also make a stable symlink to the port at PATH")
    p.add_argument(
        "--tcp",
        type=int,
        metavar="PORT",
        help="also serve the line on socket://127.0.0.1:PORT (0: any free port, printed)",
    )
    p.add_argument(
        "--power-cut-after", type=int, help="cut power after N flash operations, then reboot"
    )
    p.add_argument(
        "--tear", action="store_true", help="with --power-cut-after: tear the last write"
    )
    p.add_argument("--rom", help="firmware tree served read-only at /rom (default firmware/)")
    p.add_argument(
        "--panel",
        help="front-panel file (physical inputs as JSON; default: in the relay's temp dir)",
    )
    p.set_defaults(func=_cmd_realtime)
    sub = p.add_subparsers(dest="sim_command", metavar="run|panel")
    q = sub.add_parser(
        "panel",
        help="press/release inputs of a running real-time board (the technician's hands)",
    )
    q.add_argument("panel_file", help="the front-panel file printed by `cryo sim`")
    for k, what in (
        ("footswitch", "1 = pressed"),
        ("handpiece", "1 = out of its holder"),
        ("estop", "1 = loop closed, 0 = pressed"),
    ):
        q.add_argument(f"--{k}", type=int, choices=(0, 1), help=what)
    q.set_defaults(func=_cmd_panel)
    r = sub.add_parser("run", help="fast virtual time: run the control tick as fast as possible")
    _common(r, run=True)
    r.add_argument("--duration", type=float, default=60.0, help="virtual seconds (default 60)")
    r.add_argument("--trace", help="write a CSV trace (t, surface, probes, valve, ...)")
    r.add_argument("--trace-ms", type=int, default=100, help="trace interval (ms, default 100)")
    r.add_argument("--config", help="controller configuration (JSON file)")
    r.add_argument("--start-ms", type=int, default=0, help="virtual ticks at boot (wrap tests)")
    r.add_argument("--no-autostart", action="store_true", help="do not call start() after boot")
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    r.set_defaults(func=_cmd_run)


def package_json() -> dict:
    """The mip package of the firmware (firmware/package.json): every .py of
    the cryo package, installed as /lib/cryo/... by ``mpremote mip install``."""
    from host_tools import fwimport

    fwimport.ensure()
    import cryo

    fw = FIRMWARE_DIR
    files = sorted(p.relative_to(fw).as_posix() for p in (fw / "cryo").rglob("*.py"))
    return {"urls": [[f, f] for f in files], "version": cryo.VERSION}


def write_package_json() -> Path:
    from host_tools import FIRMWARE_DIR as fw

    path = fw / "package.json"
    path.write_text(json.dumps(package_json(), indent=1) + "\n")
    return path


if __name__ == "__main__":  # python -m host_tools.sim --write-package
    if sys.argv[1:] == ["--write-package"]:
        print(write_package_json())
