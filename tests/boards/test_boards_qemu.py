"""The firmware frozen into a real Cortex-M build, on the emulated board.

boards/qemu-mps2: QEMU's MPS2 AN385 machine (Cortex-M3) running the qemu
port of MicroPython built from the pinned upstream source by ``make qemu``
(boards/qemu-mps2/manifest.py frozen in), with the heap of an RP2040
(``QEMU_HEAP``). Reached over its emulated UART with real mpremote.
"""

import json

import pytest
import qemu_board as Q


@pytest.fixture(scope="module")
def board():
    with Q.QemuBoard() as b:
        yield b


def test_the_emulated_board_is_a_32_bit_float32_board_with_the_firmware_frozen(board):
    out = board.exec(
        """
import gc, json, sys, time
gc.collect()
free0 = gc.mem_free()
import cryo.controller, machine, os
gc.collect()
def on_a_filesystem(f):
    try:
        os.stat(f)
        return True
    except OSError:
        return False
files = [cryo.controller.__file__, machine.__file__]
print(json.dumps([sys.implementation._machine, 1 / 3, sys.maxsize, time.ticks_add(0, -1),
                  gc.mem_alloc() + gc.mem_free(), free0, gc.mem_free(),
                  files, [on_a_filesystem(f) for f in files]]))
"""
    )
    mach, third, maxsize, tick_max, heap, free0, free1, files, on_fs = json.loads(
        out.strip().splitlines()[-1]
    )
    assert "Cortex-M3" in mach
    assert third == pytest.approx(0.33333334, abs=1e-9) and third != 1 / 3  # float32
    assert maxsize == 2**31 - 1 and tick_max == 2**30 - 1
    assert heap <= Q.HEAP <= 190 * 1024
    # Frozen: the modules come from the image, not from a filesystem, and
    # importing the controller costs its objects only, not its bytecode
    # (143 KB of .mpy): measured 37 KB.
    assert files == ["cryo/controller.py", "machine.py"] and on_fs == [False, False]
    assert free0 - free1 < 64 * 1024


def test_a_treatment_on_the_emulated_board_fits_an_rp2040_heap():
    """The fast-mode runner (``cryo sim run``'s) with the frozen firmware
    and the virtual board's chips and plant, all on the emulated Cortex-M3
    heap of an RP2040: a minute of treatment that crosses the 2**30 tick
    wrap (pre-cool, freeze, thaw) without an escaped exception or a reset,
    collecting after every tick to find the peak. The whole treatment runs
    in ``make bench`` (bench/bench_qemu.py)."""
    s, _, free = Q.run_treatment(duration_s=60)
    assert s["errors"] == [] and s["resets"] == []
    assert s["heap_size"] <= Q.HEAP
    assert s["valve_cycles"] > 0 and s["min_probe_c"] < -30.0
    assert s["status"]["phase"] in ("FREEZE", "THAW") and s["status"]["faults"] == []
    assert s["heap_live_peak"] < s["heap_tick_peak"] <= s["heap_size"]
    assert free > s["heap_size"] - 8 * 1024  # nothing but the runner before it
