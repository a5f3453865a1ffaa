"""A MicroPython unix-port "board" on a pty, for host-tool tests and benches.

The process sits on the slave of pty A (ONLCR cleared, its controlling
terminal); a thread runs the virtual boards' one relay
(``host_tools.virtual.relay.PtyRelay``) to pty B, whose path mpremote opens. The board's flash is either a plain
directory (VfsPosix, the process's cwd) or a littlefs image through
the flash block device (``boards/sim/flash.py``, ``FlashBlockDevice``)
mounted at ``/flash``, so a test can cut the power mid-deploy
(``cut_power_after``) and boot the image again.

The virtual board's ``cryo sim`` pty mode (host_tools/sim.py) runs the
whole firmware; this harness is the minimal board at the REPL that the
deploy/pull tests need, and also
what :func:`host_tools.commands.logs.pull_and_report` uses to read a flash image.
"""

from __future__ import annotations

import os
import subprocess
import termios
import threading
import time
from pathlib import Path

from host_tools import (
    BOARDS_DIR,
    fwimport,  # noqa: F401  (firmware/ importable, micropython shim)
)
from host_tools.interpreter import micropython_exe
from host_tools.mpylib import MPYLIB_DIR
from host_tools.virtual.relay import PtyRelay, spawn_on_pty

# isort: split
from cryo.paths import LOG_ROOT

_STARTUP = """
import sys, os
sys.path.insert(0, {sim!r})
from flash import FlashBlockDevice
sys.path.pop(0)
import vfs
_cry_bd = FlashBlockDevice({image!r}, block_size={bs}, block_count={bc})
try:
    vfs.mount(vfs.VfsLfs2(_cry_bd), '/flash')
except OSError:
    vfs.VfsLfs2.mkfs(_cry_bd)
    vfs.mount(vfs.VfsLfs2(_cry_bd), '/flash')
os.chdir('/flash')
del FlashBlockDevice
"""


def _startup(image, block_count) -> str:
    """MicroPython code that mounts the littlefs ``image`` as the flash root."""
    return _STARTUP.format(
        sim=str(BOARDS_DIR / "sim"),
        image=str(Path(image).resolve()),
        bs=4096,
        bc=block_count,
    )


def _raw_no_onlcr(fd):
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~termios.ONLCR  # oflag: the unix port already sends \r\n
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class VirtualPort:
    """``with VirtualPort(flash_dir=...) as vp: ... vp.port ...``.

    ``flash_dir``: directory that is the board's flash (cwd), or
    ``image``: littlefs image file (created and formatted if missing).
    ``heapsize``: e.g. "256K" to behave like a small MCU.
    """

    def __init__(self, flash_dir=None, image=None, heapsize=None, block_count=512):
        if (flash_dir is None) == (image is None):
            raise ValueError("give exactly one of flash_dir or image")
        self.flash_dir = Path(flash_dir) if flash_dir else None
        self.image = Path(image) if image else None
        self.heapsize = heapsize
        self.block_count = block_count
        self.proc = None
        self.port = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._boot_out = b""
        self._seen = b""
        self.relay = None

    def start(self):
        self.relay = PtyRelay()
        a_slave = self.relay.a_slave
        _raw_no_onlcr(a_slave)
        cmd = [micropython_exe()]
        if self.heapsize:
            cmd += ["-X", "heapsize=" + self.heapsize]
        env = dict(os.environ, MICROPYPATH=".frozen:lib")
        env.pop("MICROPYINSPECT", None)
        if self.image is not None:
            self.image.parent.mkdir(parents=True, exist_ok=True)
            startup = self.image.with_suffix(".boot.py")
            startup.write_text(_startup(self.image, self.block_count))
            cmd += ["-i", str(startup)]
            cwd = str(self.image.parent)
        else:
            self.flash_dir.mkdir(parents=True, exist_ok=True)
            cwd = str(self.flash_dir)

        self.proc = spawn_on_pty(cmd, a_slave, cwd=cwd, env=env)
        self.port = self.relay.port
        self._relay_thread = threading.Thread(target=self._serve, daemon=True)
        self._relay_thread.start()
        self._wait_banner()
        return self

    def _wait_banner(self):
        # The REPL prints its banner and '>>> ' once it is ready for input
        # (generous: a loaded CI machine may take seconds to start a process).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"virtual board exited at start-up (code {self.proc.returncode}): "
                    f"{self._boot_out[-500:]!r}"
                )
            if self._ready.is_set():
                return
            time.sleep(0.01)
        raise RuntimeError(f"virtual board did not show a REPL prompt: {self._boot_out[-500:]!r}")

    def _serve(self):
        relay = self.relay
        while not self._stop.is_set():
            try:
                relay.step(self._from_board, relay.to_board, timeout=0.05)
            except (OSError, ValueError):
                return

    def _from_board(self, data):
        if not self._ready.is_set():
            self._boot_out = (self._boot_out + data)[-2000:]
            self._seen = (self._seen + data)[-16:]
            if b">>> " in self._seen:
                self._ready.set()
                return  # swallow the banner, like a board already up
        self.relay.to_host(data)

    def power_off(self):
        """Kill the board process (a power cut, as far as the host sees)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self):
        self._stop.set()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Join the relay before closing its descriptors: once closed, their
        # numbers are reused (e.g. by the next subprocess's pipes) and a relay
        # still in select() would steal that data.
        relay = getattr(self, "_relay_thread", None)
        if relay is not None:
            relay.join(timeout=5)
        if self.relay is not None:
            self.relay.close()
            self.relay = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def boot_check(flash_dir=None, image=None, block_count=512) -> dict:
    """Boot the flash like boot.py would: select the app slot, import cryo.

    Runs a fresh MicroPython process (a power-up) and returns
    ``select_app``'s result plus the ``cryo.VERSION`` that got imported.
    """
    import json

    code = "import sys, os\n"
    if image is not None:
        code += _startup(image, block_count)
    code += (
        "from cryo.app import select_app\n"
        "r = select_app('')\n"
        "import cryo\n"
        "r['cryo_version'] = getattr(cryo, 'VERSION', None)\n"
        "import json\n"
        "print('@@BOOT@@' + json.dumps(r))\n"
    )
    cwd = str(Path(image).parent if image is not None else flash_dir)
    env = dict(os.environ, MICROPYPATH=".frozen:lib")
    proc = subprocess.run(
        [micropython_exe(), "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("@@BOOT@@"):
            return json.loads(line[8:])
    raise RuntimeError("boot failed:\n" + proc.stdout[-2000:] + proc.stderr[-2000:])


TREATMENT = """
import sys, os
from cryo.storage.log import TreatmentLog
from cryo.storage import records as R
log = TreatmentLog({root!r}, sample_hz=10, segment_bytes=16384, max_bytes=1048576)
lifetime = 0
for sess in range({sessions}):
    log.begin_session({{'rtc_s': 848000000 + sess * 3600, 'rtc_ms': 0, 'fw_version': '0.1.0',
        'fw_hash': bytes(32), 'config_hash': bytes(32), 'board_id': 'sim',
        'target_cc': -2500, 'thaw_cc': 0, 'freeze_ds': 200, 'cycles': 2, 'floor_cc': -6000,
        'max_freeze_ds': 600, 'min_thaw_ds': 300}}, now_ms=0)
    t = 0
    temp = 3200
    phase = 3
    log.event(R.EV_PHASE, 3, 2, now_ms=0)
    n = {seconds} * 10
    i = 0
    opened = 0
    was = 0
    while i < n:
        t = i * 100
        q = (i * 4) // n  # quarters: freeze, thaw, freeze, thaw
        want = -2500 if q % 2 == 0 else 2000
        new_phase = 4 if q % 2 == 0 else 5
        if new_phase != phase:
            log.event(R.EV_PHASE, new_phase, phase, now_ms=t)
            phase = new_phase
        temp += (want - temp) // 20
        demand = 80 if (want < 0 and temp > want) else 0
        log.sample(t, temp + (i * 37) % 50, 240, want // 10, demand, 1 if demand else 0, phase)
        opened += 1 if demand and not was else 0
        was = demand
        if i == n // 3 and sess == {sessions} - 1:
            log.event(R.EV_FAULT, 7, 1, now_ms=t)
            log.event(R.EV_FAULT_CLEAR, 7, 0, now_ms=t)
        i += 1
    log.event(R.EV_PHASE, 6, phase, now_ms=t)
    lifetime += opened
    log.event(R.EV_VALVE_CYCLES, opened, lifetime, now_ms=t)  # as the controller closes a session
    log.end_session(now_ms=t)
log.close()
print('@@OK@@')
"""


def write_demo_treatment(
    flash_dir=None,
    image=None,
    seconds=60,
    sessions=1,
    root=LOG_ROOT,
    block_count=512,
    treatment=None,
):
    """Log synthetic treatments with the real cryo.storage.log.TreatmentLog on the board's flash.

    For tests and benches that need a treatment log before (or without)
    ``cryo sim run``: two freeze-thaw cycles, phases, a fault and its
    clearance, 10 Hz samples, written by the firmware's own log code under
    MicroPython into the same flash (directory or littlefs image).
    ``treatment``: another script of that kind (the same ``{root}``,
    ``{sessions}`` and ``{seconds}`` fields; prints ``@@OK@@`` when done).
    """
    code = "import sys, os\n"
    if image is not None:
        code += _startup(image, block_count)
    code += "sys.path.insert(0, %r)\n" % str(BOARDS_DIR.parent / "firmware")
    code += "sys.path.insert(0, %r)\n" % str(MPYLIB_DIR)
    code += (treatment or TREATMENT).format(root=root, sessions=sessions, seconds=seconds)
    if image is not None:
        Path(image).parent.mkdir(parents=True, exist_ok=True)
        cwd = str(Path(image).parent)
    else:
        Path(flash_dir).mkdir(parents=True, exist_ok=True)
        cwd = str(flash_dir)
    env = dict(os.environ, MICROPYPATH=".frozen:lib")
    proc = subprocess.run(
        [micropython_exe(), "-X", "heapsize=8M", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "@@OK@@" not in proc.stdout:
        raise RuntimeError(
            "treatment log writer failed:\n" + proc.stdout[-2000:] + proc.stderr[-2000:]
        )
