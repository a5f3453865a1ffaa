"""The emulated Cortex-M board in real time (`cryo sim --board qemu-mps2`).

QEMU's ``mps2-an385`` machine (Arm MPS2, AN385 Cortex-M3 image, Arm DAI 0385)
runs the qemu-port MicroPython built by ``make qemu``: float32, 31-bit small
ints, an RP2040-sized heap and the firmware frozen in, with the virtual
board's chips and plant (boards/qemu-mps2). Here it runs in real time:

* no ``-icount``: QEMU's virtual clock is the host clock, so the SysTick
  the port's ``ticks_ms`` counts advances with the wall clock and the plant,
  the scenario and the control loop run at the speed of the real device
  (docs/boards.md, "The emulated board in real time");
* QEMU's first UART is its stdio (without QEMU's own signals) on pty A
  (``spawn_on_pty``); the relay (``PtyRelay``) bridges it to pty B, which
  mpremote and ``cryo`` open. The port handles Ctrl-C and the soft reset
  itself, so bytes pass as they are;
* a ROMFS image (``mpremote romfs build``) in the board's ROMFS partition holds
  ``realtime.json`` (what makes the frozen ``_boot.py`` build the world and
  run boot.py then main.py), the board and plant definitions, the scenario and
  the firmware's boot.py and main.py, which the ROM installs on the flash;
* the front panel (``cryo sim panel FILE``) reaches the board's second UART
  through a FIFO pair (``-serial pipe:``): one byte per panel state
  (``boards/qemu-mps2/qemu_rom.py``); the world's control lines come back on
  it, and ``machine.reset()`` or a flash power cut become a QMP
  ``system_reset`` of the machine, which keeps its memory.

The flash is the emulator's memory: it survives resets; ``--flash FILE``
loads it from FILE at start and saves it there when ``cryo sim`` stops
(QMP ``pmemsave``), and a power cycle carries it into a new QEMU the same way.
The chip's unique id is the image's, as on the unix-port board
(``host_tools.sim.sim_uid``: kept after the contents in FILE, a new one
for a new image or a board without FILE); it reaches ``machine.unique_id()``
in ``realtime.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from pathlib import Path

from host_tools import FIRMWARE_DIR, ROOT
from host_tools.errors import DeviceError, InvalidInput
from host_tools.sim import (
    SIM_DIR,
    check_plant,
    check_scenario,
    flash_blocks,
    read_panel,
    shipped_path,
    sim_uid,
    write_panel,
)
from host_tools.virtual.relay import (
    close_fds,
    close_relay,
    kill_board,
    open_relay,
    spawn_on_pty,
)

NAME = "qemu-mps2"
ROMFS_AT = 0x21000000  # MICROPY_HW_ROMFS_PART0_START of the port's MPS2_AN385 board
ROMFS_MAX = 0x400000 - 16  # the partition less the reset mark (qemu_rom._MARK_AT)
FLASH_AT = ROMFS_AT + 0x400000  # the flash chip's contents (qemu_rom.FLASH_AT)
STAGE_AT = ROMFS_AT + 0x800000  # an image loaded for power-up (qemu_rom.STAGE_AT)
FLASH_MAX_KIB = 4096  # the 16 MB PSRAM: ROMFS 4 MB, the chip, its staged image (4 MB each)
PANEL_BITS = ("footswitch", "handpiece", "estop")  # bit 0, 1, 2 (qemu_rom.UartPanel)
_PANEL_POLL_S = 0.05


def elf() -> Path:
    """The board's image, built by ``make qemu``."""
    p = Path(
        os.environ.get("QEMU_ELF")
        or ROOT / "build" / "micropython" / "ports" / "qemu" / "build-cryo" / "firmware.elf"
    )
    if not p.exists():
        raise DeviceError(f"{p} missing: `make qemu` builds the emulated board's image")
    return p


def panel_byte(inputs: dict) -> int:
    """The UART1 byte of a front-panel state: 0x40 | present << 3 | levels."""
    b = 0x40
    for i, k in enumerate(PANEL_BITS):
        if k in inputs:
            b |= 8 << i
            if inputs[k]:
                b |= 1 << i
    return b


class QemuVirtualBoard:
    """``open()`` boots the emulated board, ``serve()`` relays its UART,
    ``close()`` stops QEMU. ``port``: the pty the host opens."""

    def __init__(
        self,
        plant="default",
        scenario=None,
        seed=0,
        *,
        link=None,
        tcp=None,
        panel=None,
        flash=None,
        flash_kib=2048,
        board=None,
        rom=None,
        log=None,
    ):
        if flash_kib > FLASH_MAX_KIB:
            raise InvalidInput(
                f"--flash-size {flash_kib} KiB: the {NAME} board holds at most {FLASH_MAX_KIB} KiB"
            )
        self.blocks = flash_blocks(flash_kib)
        self.plant = check_plant(plant)
        self.scenario = check_scenario(scenario)
        self.seed = int(seed)
        self.link = link
        self.tcp_port = tcp
        self.board = Path(board) if board else SIM_DIR / "board.json"
        self.rom = Path(rom) if rom else FIRMWARE_DIR
        self.log = log or (lambda msg: print("cryo sim:", msg, file=sys.stderr, flush=True))
        self.relay = None
        self.proc = None
        self.port = None
        self.resets = []  # (monotonic s, "reset" | "power"), as VirtualBoard.resets
        self.t_boot = None
        self._stop = False
        if panel and os.path.exists(panel):
            read_panel(panel)  # refused before anything is made: never overwritten
        self._dir = tempfile.mkdtemp(prefix="cryo-qemu-")
        self.panel = os.path.abspath(panel) if panel else os.path.join(self._dir, "panel.json")
        write_panel(self.panel, reset=True)
        self._panel_seen = None
        self._panel_next = 0.0
        self._panel_fd = None
        self._out_fd = None
        self._ctrl_buf = b""
        self._qmp_path = os.path.join(self._dir, "qmp.sock")
        self.tail = b""  # the board's last output (what a failed check reports)
        self.flash = os.path.abspath(flash) if flash else None
        self.uid = None
        self._want_cycle = False
        self._cycle = threading.Event()

    # -- the ROMFS image --
    def _romfs(self) -> Path:
        src = Path(self._dir) / "rom"
        src.mkdir()
        opts = {"board": "/rom/board.json", "plant": "/rom/plant.json", "seed": self.seed}
        opts["flash_blocks"] = self.blocks
        opts["uid"] = self.uid
        opts["rtc_epoch_s"] = int(time.time())  # the board has no RTC of its own
        shutil.copy(self.board, src / "board.json")
        shutil.copy(shipped_path("plants", self.plant), src / "plant.json")
        if self.scenario:
            shutil.copy(shipped_path("scenarios", self.scenario), src / "scenario.json")
            opts["scenario"] = "/rom/scenario.json"
        for name in ("boot.py", "main.py"):
            if not (self.rom / name).exists():
                raise InvalidInput(f"--rom {self.rom}: no {name} to put on the board's flash")
            shutil.copy(self.rom / name, src / name)
        (src / "realtime.json").write_text(json.dumps(opts))
        img = Path(self._dir) / "romfs.img"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "mpremote",
                "romfs",
                "--no-mpy",
                "-o",
                str(img),
                "build",
                str(src),
            ],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise DeviceError(f"mpremote romfs build failed: {r.stderr.strip()[-500:]}")
        if img.stat().st_size > ROMFS_MAX:
            raise InvalidInput(
                f"the ROMFS image is {img.stat().st_size} bytes; at most {ROMFS_MAX}"
            )
        return img

    def _panel_fifo(self) -> str:
        """FIFOs of QEMU's ``pipe:`` chardev, opened read-write here first so
        QEMU's own open never blocks."""
        base = os.path.join(self._dir, "uart1")
        os.mkfifo(base + ".in")
        os.mkfifo(base + ".out")
        self._panel_fd = os.open(base + ".in", os.O_RDWR | os.O_NONBLOCK)
        self._out_fd = os.open(base + ".out", os.O_RDWR | os.O_NONBLOCK)
        return base

    # -- lifecycle --
    @property
    def tcp(self):
        return self.relay.tcp if self.relay is not None else None

    def open(self):
        image = elf()
        self.uid = sim_uid(self.flash, self.blocks)  # the image's chip id (made if missing)
        preload = self._flash_image()
        img = self._romfs()
        uart1 = self._panel_fifo()
        self.relay = open_relay(self.tcp_port, self.link, self.log)
        self.port = self.relay.port
        self._uart1 = uart1
        self._romfs_img = img
        self._image = image
        self._spawn(preload)
        self.t_boot = time.monotonic()
        return self.port

    def _flash_image(self):
        """The contents of ``--flash FILE`` to load at power-up, without the
        chip id that follows them (None: a blank chip)."""
        if not self.flash:
            return None
        contents = Path(self._dir) / "flash.bin"
        with open(self.flash, "rb") as f:
            contents.write_bytes(f.read(self.blocks * 4096))
        return contents

    def _spawn(self, flash=None):
        """Start QEMU on pty A; ``flash``: an image loaded into the chip first."""
        # UART0 on QEMU's stdio, pty A, without its signals (a 0x03 is the
        # guest's Ctrl-C, not QEMU's) and without ONLCR (QEMU turns OPOST on;
        # the port already sends \r\n, a doubled \r hangs mpremote)
        tty.setraw(self.relay.a_slave)
        a = termios.tcgetattr(self.relay.a_slave)
        a[1] &= ~termios.ONLCR
        termios.tcsetattr(self.relay.a_slave, termios.TCSANOW, a)
        if os.path.exists(self._qmp_path):
            os.unlink(self._qmp_path)
        cmd = ["qemu-system-arm", "-machine", "mps2-an385", "-display", "none"]
        cmd += ["-monitor", "none", "-semihosting", "-chardev", "stdio,id=uart0,signal=off"]
        cmd += ["-serial", "chardev:uart0", "-serial", "pipe:" + self._uart1]
        cmd += ["-qmp", f"unix:{self._qmp_path},server=on,wait=off"]
        cmd += ["-kernel", str(self._image)]
        cmd += ["-device", f"loader,file={self._romfs_img},addr=0x{ROMFS_AT:x},force-raw=on"]
        if flash is not None:
            # staged: the loader writes it again at every machine reset, so
            # the board copies it into the chip at power-up only
            cmd += ["-device", f"loader,file={flash},addr=0x{STAGE_AT:x},force-raw=on"]
        try:
            self.proc = spawn_on_pty(cmd, self.relay.a_slave, die_with_parent=True)
        except OSError as e:
            raise DeviceError(f"qemu-system-arm could not start: {e.strerror}")
        self._panel_seen = None  # the new board hears the panel's state again

    def close(self):
        self._stop = True
        if self.flash and self.proc is not None and self.proc.poll() is None:
            try:
                contents = Path(self._dir) / "flash.bin"
                self._save_flash(contents)
                with open(self.flash, "r+b") as f:  # in place: the chip id after it stays
                    f.write(contents.read_bytes())
            except OSError as e:
                self.log(f"flash image not saved to {self.flash}: {e}")
        kill_board(self.proc)
        close_fds(self._panel_fd, self._out_fd)
        self._panel_fd = self._out_fd = None
        close_relay(self.relay, self.link)
        shutil.rmtree(self._dir, ignore_errors=True)

    def press(self, **inputs):
        """Operate the front panel: ``press(handpiece=1, footswitch=1)``."""
        return write_panel(self.panel, **inputs)

    def _poll_panel(self):
        now = time.monotonic()
        if now < self._panel_next:
            return
        self._panel_next = now + _PANEL_POLL_S
        try:
            text = Path(self.panel).read_text()
            state = json.loads(text) if text.strip() else {}
        except (OSError, ValueError):
            return  # caught mid-write: read again next time
        if state != self._panel_seen and isinstance(state, dict):
            self._panel_seen = state
            try:
                os.write(self._panel_fd, bytes([panel_byte(state)]))
            except OSError as e:
                self.log(f"front panel not sent: {e.strerror}")

    def power_cycle(self):
        """Switch the board off and on (a technician's power button): the
        flash chip's contents are saved (QMP ``pmemsave``), QEMU is stopped
        and started again with them loaded back; everything else starts
        from power-up. Run by the thread in ``serve()`` (waited for here)."""
        self._cycle.clear()
        self._want_cycle = True
        if not self._cycle.wait(60):
            raise DeviceError("the power cycle did not complete within 60 s")

    def _save_flash(self, path):
        self._qmp("pmemsave", val=FLASH_AT, size=self.blocks * 4096, filename=str(path))

    def _power_cycle(self):
        self._want_cycle = False
        image = Path(self._dir) / "flash.bin"
        self._save_flash(image)
        kill_board(self.proc)
        self.resets.append((time.monotonic(), "power"))
        self.log("board power-cycled")
        self._spawn(image)
        self._cycle.set()

    def _qmp(self, command, **arguments):
        """One QMP command (QEMU Machine Protocol, docs/interop/qmp-spec)."""
        import socket

        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(self._qmp_path)
            f = s.makefile("rwb")
            f.readline()  # greeting
            for cmd, args in (("qmp_capabilities", {}), (command, arguments)):
                f.write(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
                f.flush()
                line = f.readline()
                while line and b'"return"' not in line:
                    if b'"error"' in line:
                        raise OSError(f"QMP {cmd}: {line.decode(errors='replace').strip()}")
                    line = f.readline()

    def _ctrl(self, data):
        """The world's control line (UART1 out): R/P ask for a hard reset."""
        self._ctrl_buf += data
        while b"\n" in self._ctrl_buf:
            line, self._ctrl_buf = self._ctrl_buf.split(b"\n", 1)
            if line in (b"R", b"P"):
                mode = "reset" if line == b"R" else "power"
                self.resets.append((time.monotonic(), mode))
                self.log(f"board reset ({mode})")
                try:
                    self._qmp("system_reset")
                except OSError as e:
                    self.log(f"reset not delivered to QEMU: {e}")

    def _from_board(self, data):
        self.tail = (self.tail + data)[-4096:]
        self.relay.to_host(data)

    def serve(self, until=None):
        """Relay until stopped (signal), ``until()`` is true, or QEMU exits."""
        relay = self.relay
        while not self._stop and (until is None or not until()):
            if self._want_cycle:
                self._power_cycle()
            if relay.step(self._from_board, relay.to_board, [self._out_fd]):
                try:
                    self._ctrl(os.read(self._out_fd, 4096))
                except BlockingIOError:
                    pass
            self._poll_panel()
            if self.proc.poll() is not None:
                relay.drain_board(self._from_board)
                if not self._stop:
                    self.log(f"qemu-system-arm exited ({self.proc.returncode})")
                break
