"""The emulated Cortex-M board (boards/qemu-mps2): a whole treatment with
the firmware frozen, on an RP2040-sized heap.

- The default two-cycle treatment (``cryo sim run``'s runner, 7x-spray
  keloid, across the 2**30 tick wrap), collecting after every tick: the heap
  peaks (live; live + one tick's garbage), heap size.
- Instructions per controller tick: QEMU runs with ``-icount shift=0`` (1 ns
  of virtual time per guest instruction) and the port's ``ticks_us`` reads
  SysTick on that clock, so microseconds x 1000 = instructions.
- The tick's time at each real board's CPU clock, at one instruction per
  cycle (a lower bound: flash wait states and XIP cache misses add cycles;
  the M0+ of the RP2040 has Thumb-1 only and needs more instructions for the
  same bytecode than the Cortex-M3 measured here).
- Frozen size: the frozen content of the image (bytecode, constants, qstr
  pool) and the ``cryo`` package's own share of it.
- The same treatment with the firmware in the smallest supported board's
  free heap (the pyboard's, ~100 KB): the virtual board is built first and
  everything else it would leave free is held apart (fastrun.py,
  ``firmware_heap``), so the firmware has exactly that heap; its live peak
  is the heap in use minus what was in use when it started.
"""

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "boards"))

import qemu_board as Q  # noqa: E402

# CPU clocks of the real boards (datasheets; MicroPython's default for each).
CLOCKS_MHZ = (
    ("rp2040 (RP2040 Cortex-M0+)", 125),
    ("rp2350 (RP2350 Cortex-M33)", 150),
    ("stm32f4 (STM32F405 Cortex-M4)", 168),
    ("esp32s3 (ESP32-S3 Xtensa LX7)", 240),
)


def frozen_sizes():
    """(whole frozen content: its object's text, the cryo package's own
    symbols: bytecode, constants and qstr tables named after its modules)."""
    obj = str(Q.ELF.parent / "frozen_content.o")
    size = subprocess.run(
        ["arm-none-eabi-size", obj], capture_output=True, text=True, check=True
    ).stdout
    total = int(size.splitlines()[1].split()[0])
    out = subprocess.run(["arm-none-eabi-nm", "-S", obj], capture_output=True, text=True).stdout
    cryo = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and "cryo" in parts[3]:
            cryo += int(parts[1], 16)
    return total, cryo


def _kb(n):
    return "%.1f KB" % (n / 1024)


def _ended(s):
    st = s["status"] or {}
    return "%s%s, cycle %s / %d / %d / %d" % (
        st.get("phase"),
        " (%s)" % st["reason"] if st.get("reason") else "",
        st.get("cycle"),
        s["ticks"],
        len(s["errors"]),
        len(s["resets"]),
    )


def pyboard_heap_rows():
    fw = Q.STM32F4_FREE_HEAP
    s, _, _ = Q.run_treatment(duration_s=900, timeout=1500, firmware_heap=fw)
    in_use_before = s["heap_size"] - s["firmware_heap_free"]
    live = s["heap_live_peak"] - in_use_before
    tick = s["heap_tick_peak"] - in_use_before
    return [
        (
            "firmware in the pyboard's free heap (%s): how it ended / ticks / errors / resets"
            % _kb(fw),
            _ended(s),
        ),
        (
            "  its live peak (after the per-tick collect) / of that heap",
            "%s / %.2f" % (_kb(live), live / fw),
        ),
        (
            "  its peak within a tick (live + garbage, the virtual board's too) / of that heap",
            "%s / %.2f" % (_kb(tick), tick / fw),
        ),
    ]


def run():
    t0 = time.perf_counter()
    s, _, free = Q.run_treatment(duration_s=900, timeout=1500)
    wall = time.perf_counter() - t0
    st = s["status"]
    rows = [
        (
            "treatment on the emulated Cortex-M3: how it ended / ticks / errors / resets",
            "%s%s, cycle %s / %d / %d / %d (%.0f s wall)"
            % (
                st["phase"],
                " (%s)" % st["reason"] if st.get("reason") else "",
                st.get("cycle"),
                s["ticks"],
                len(s["errors"]),
                len(s["resets"]),
                wall,
            ),
        ),
        ("heap (MICROPY_HEAP_SIZE; an RP2040's free heap)", _kb(s["heap_size"])),
        ("heap free before the runner", _kb(free)),
        ("peak heap in use after the per-tick collect (live)", _kb(s["heap_live_peak"])),
        ("peak heap in use within a tick (live + garbage)", _kb(s["heap_tick_peak"])),
        (
            "instructions per controller tick (mean / max, the longest in phase)",
            "%.2f M / %.1f M (%s, t = %.1f s)"
            % (
                s["tick_us_mean"] / 1e3,
                s["tick_us_max"] / 1e3,
                s["tick_max_at"][1],
                s["tick_max_at"][0] / 1e3,
            ),
        ),
    ]
    for name, mhz in CLOCKS_MHZ:
        rows.append(
            (
                "tick at %d MHz, %s (mean / max; of the 100 ms period)" % (mhz, name),
                "%.1f ms / %.0f ms" % (s["tick_us_mean"] / mhz, s["tick_us_max"] / mhz),
            )
        )
    rows += pyboard_heap_rows()
    total, cryo = frozen_sizes()
    rows.append(("frozen content of the image (with the virtual board, asyncio)", _kb(total)))
    rows.append(("of which the cryo package's own code and constants", _kb(cryo)))
    return rows
