"""The emulated Cortex-M board (boards/qemu-mps2): start it, reach it.

QEMU's ``mps2-an385`` machine (an Arm MPS2 FPGA board with the AN385
Cortex-M3 image, Arm DAI 0385) runs the qemu port of MicroPython built by
``make qemu``: float32, 31-bit small ints, ticks that wrap at 2**30, a heap
of ``QEMU_HEAP`` bytes (an RP2040's free heap) and the firmware plus the
virtual board's chips and plant frozen in. Its UART is a pseudo-terminal
that real ``mpremote`` opens, as it would a USB board.

``-icount shift=0`` makes QEMU advance the virtual clock by exactly 1 ns per
executed guest instruction (QEMU manual, "-icount"), and the port's
``ticks_us`` reads the SysTick counter on that clock: on this board a
``ticks_us`` difference times 1000 is the number of instructions executed.

Files the run needs (options, board, plant, scenario) go in a ROMFS image
(``mpremote romfs build``) that QEMU's generic loader places in the ROMFS
partition at 0x21000000; the port mounts it at ``/rom`` when it starts. The flash chip's
contents live in memory above it (``FLASH_AT``), outside the heap.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import mpyrun

ROOT = mpyrun.ROOT
BOARDS = ROOT / "boards"
ELF = Path(
    os.environ.get("QEMU_ELF")
    or ROOT / "build" / "micropython" / "ports" / "qemu" / "build-cryo" / "firmware.elf"
)
HEAP = int(os.environ.get("QEMU_HEAP") or 194560)
ROMFS_AT = 0x21000000  # MICROPY_HW_ROMFS_PART0_START of the port's MPS2_AN385 board
FLASH_AT = 0x21400000  # after the 4 MB ROMFS partition, in the board's 16 MB PSRAM
MPREMOTE = str(ROOT / ".venv" / "bin" / "mpremote")
MARK = "@@SIM@@"
# The smallest supported board's free heap: the pyboard's (STM32F405),
# docs/boards.md. The emulated board's heap is an RP2040's; a run with
# ``firmware_heap=STM32F4_FREE_HEAP`` holds the rest apart for the virtual board.
STM32F4_FREE_HEAP = 100 * 1000
# The heap test's plant: the calibrated keloid with a ~7x spray (docs/boards.md, "Heap").
TREATMENT_PLANT = ("keloid_perfused", {"h_spray_w_m2k": 300.0})


def require_elf():
    if not ELF.exists():
        raise RuntimeError("%s missing: `make qemu` builds the emulated board" % ELF)
    return ELF


class QemuBoard:
    """``with QemuBoard(romfs_dir) as b:`` boots the board; ``b.port`` is its UART."""

    def __init__(self, romfs_dir: Path | None = None, icount=True):
        self.romfs_dir = romfs_dir
        self.icount = icount
        self.proc = None
        self.port = None
        self._tmp = None

    def __enter__(self):
        cmd = ["qemu-system-arm", "-machine", "mps2-an385", "-nographic", "-monitor", "null"]
        cmd += ["-semihosting", "-serial", "pty", "-kernel", str(require_elf())]
        if self.icount:
            cmd += ["-icount", "shift=0"]
        if self.romfs_dir is not None:
            self._tmp = tempfile.mkdtemp(prefix="cryo_qemu_")
            img = Path(self._tmp) / "romfs.img"
            subprocess.run(
                [MPREMOTE, "romfs", "--no-mpy", "-o", str(img), "build", str(self.romfs_dir)],
                check=True,
                capture_output=True,
                text=True,
            )
            cmd += ["-device", "loader,file=%s,addr=0x%x,force-raw=on" % (img, ROMFS_AT)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        line = self.proc.stdout.readline()
        m = re.search(r"(/dev/pts/\d+)", line)
        if not m:
            self.close()
            raise RuntimeError("qemu did not offer a pty: %r" % line)
        self.port = m.group(1)
        return self

    def exec(self, code: str, timeout: float = 120) -> str:
        """Run ``code`` on the board through real mpremote (raw REPL); its output."""
        proc = subprocess.run(
            [MPREMOTE, "connect", self.port, "exec", code],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise mpyrun.MicroPythonError(
                "mpremote exec on the emulated board failed (%d)\n%s\n%s"
                % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
            )
        return proc.stdout

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __exit__(self, *exc):
        self.close()


def run_treatment(
    duration_s: int = 900,
    flash_kib: int = 1024,
    collect_each_tick=True,
    icount=True,
    timeout: float = 900,
    firmware_heap: int | None = None,
):
    """The default treatment through the fast-mode runner (what ``cryo sim
    run`` runs) on the emulated board: scenario ``treatment``, the 7x-spray
    keloid, one minute before the 2**30 tick wrap, flash outside the heap;
    with ``firmware_heap`` the firmware gets that many bytes of free heap,
    the rest held apart once the virtual board is built (fastrun.py).

    Returns (summary dict, wall seconds, heap free at boot)."""
    plant, overrides = TREATMENT_PLANT
    with tempfile.TemporaryDirectory(prefix="cryo_qemu_rom_") as d:
        params = json.loads((BOARDS / "sim" / "plants" / (plant + ".json")).read_text())
        params.update(overrides)
        (Path(d) / "plant.json").write_text(json.dumps(params))
        shutil.copy(BOARDS / "sim" / "board.json", Path(d) / "board.json")
        shutil.copy(BOARDS / "sim" / "scenarios" / "treatment.json", Path(d) / "treatment.json")
        opts = {
            "plant": "/rom/plant.json",
            "scenario": "/rom/treatment.json",
            "board": "/rom/board.json",
            "seed": 1,
            "flash": None,
            "flash_at": FLASH_AT,
            "flash_blocks": flash_kib // 4,
            "duration_s": duration_s,
            "start_ms": (1 << 30) - 60000,
            "collect_each_tick": collect_each_tick,
            "firmware_heap": firmware_heap,
        }
        (Path(d) / "opts.json").write_text(json.dumps(opts))
        with QemuBoard(Path(d), icount=icount) as b:
            code = (
                "import gc\ngc.collect()\nprint('@@FREE@@', gc.mem_free())\n"
                "import fastrun\nfastrun.main('/rom/opts.json')\n"
            )
            t0 = time.monotonic()
            out = b.exec(code, timeout=timeout)
            wall = time.monotonic() - t0
    free = [int(ln.split()[1]) for ln in out.splitlines() if ln.startswith("@@FREE@@")]
    lines = [ln for ln in out.splitlines() if ln.startswith(MARK)]
    if not lines:
        raise mpyrun.MicroPythonError("no summary from the emulated board:\n" + out[-3000:])
    return json.loads(lines[-1][len(MARK) :]), wall, free[0] if free else None
