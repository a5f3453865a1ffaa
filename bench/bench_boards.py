"""Real boards: heap needed by a full simulated treatment, and firmware size.

- The smallest ``-X heapsize`` down to which ``cryo sim run``'s runner
  (boards/sim/fastrun.py) completes the default two-cycle treatment at
  every size (scanned down in 4 KB steps from 16 KB above the last measured
  minimum: completion is not monotonic below it, so no bisection); the
  budget as a ratio to it.
- Peak heap in use and the firmware's own share (peak minus interpreter +
  virtual board), from tests/boards/mpy_treatment.py, which collects at the
  controller's idle point after every tick as the loop on a board does.
- The same treatment with the firmware loaded as .mpy bytecode, and so with
  each real board's definition (its chip types and wiring), at the budget.
- Compiled firmware size per target architecture (flash footprint).

The unix port is 64-bit: heap figures are upper bounds for 32-bit boards.
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "boards"))

import boardcheck  # noqa: E402

_SOURCE_HEAP = 1024 * 1024  # the from-source run's heap (see its use)


def _kb(n):
    return "%.1f KB" % (n / 1024)


def run():
    rows = []
    # Scanned down from 16 KB above the last measured minimum (each passing
    # run is a whole ~11 s treatment; the budget itself is run below).
    top = boardcheck.HEAP_MIN_MEASURED + 16 * 1024
    heap, summary, failed = boardcheck.steady_heap(top, step=4096)
    rows.append(
        (
            "treatment (cryo sim run): completes at every -X heapsize",
            "from %s down to %s (4 KB steps; %s fails)" % (_kb(top), _kb(heap), _kb(failed)),
        )
    )
    rows.append(
        (
            "treatment (cryo sim run): test budget HEAP_BUDGET",
            "%s = %.2fx the minimum measured now"
            % (_kb(boardcheck.HEAP_BUDGET), boardcheck.HEAP_BUDGET / heap),
        )
    )
    st = summary["status"]
    rows.append(
        (
            "treatment (cryo sim run): how it ended / ticks / speed",
            "%s%s, cycle %s / %d / %.0fx real time"
            % (
                st["phase"],
                " (%s)" % st["reason"] if st.get("reason") else "",
                st.get("cycle"),
                summary["ticks"],
                summary["speed_x"],
            ),
        )
    )

    # Peak use, with the controller's idle-point gc.collect() after every tick.
    # From source the compiler needs contiguous chunks that this 64-bit port's
    # heap, fragmented by the imports, may not have left at the test budget
    # (a cost no board pays: they run frozen or .mpy code, measured below at
    # the budget); the peak live heap does not depend on the heap's size.
    ok, res = boardcheck.run_treatment(_SOURCE_HEAP)
    if not ok:
        rows.append(("treatment (idle-point gc): FAILED", str(res)[-200:]))
        return rows
    fw = res["live_peak"] - res["sim_base"]
    rows.append(
        (
            "treatment: peak heap in use after the idle-point collect",
            "%s (from source, -X heapsize=%s)" % (_kb(res["live_peak"]), _kb(_SOURCE_HEAP)),
        )
    )
    rows.append(
        ("treatment: peak heap in use within a tick (live + garbage)", _kb(res["tick_peak"]))
    )
    rows.append(
        (
            "treatment: bytes the controller tick allocates (avg / max)",
            "%d B / %s (the %s tick)"
            % (res["alloc_per_tick_avg"], _kb(res["alloc_per_tick_max"]), res["alloc_max_at"]),
        )
    )
    rows.append(("treatment: interpreter + virtual board (not firmware)", _kb(res["sim_base"])))
    rows.append(
        (
            "treatment: firmware's own peak live heap",
            "%s (%.0f%% of the peak)" % (_kb(fw), 100.0 * fw / res["live_peak"]),
        )
    )

    with tempfile.TemporaryDirectory() as d:
        mpy_dir = boardcheck.compile_firmware(Path(d) / "mpy")
        ok, r = boardcheck.run_treatment(boardcheck.HEAP_BUDGET, mpy_dir=mpy_dir)
        if ok:
            rows.append(
                (
                    "treatment from .mpy bytecode: firmware peak live heap",
                    "%s (%.2fx the source-import figure)"
                    % (_kb(r["live_peak"] - r["sim_base"]), (r["live_peak"] - r["sim_base"]) / fw),
                )
            )
        else:
            rows.append(("treatment from .mpy bytecode", "FAILED at the budget: " + r[-200:]))

        # Each real board's wiring, from the .mpy tree as a board loads it:
        # compiling the MAX31856 boards' sources on this 64-bit port
        # fragments the heap so that one compiler chunk finds no room below
        # about 800 KB, a cost no board pays (frozen or .mpy).
        for name in ("esp32s3", "rp2040", "rp2350", "stm32f4"):
            ok, r = boardcheck.run_treatment(boardcheck.HEAP_BUDGET, board=name, mpy_dir=mpy_dir)
            chip = boardcheck.load_board(name)["thermocouples"]["tissue"]["chip"]
            if ok:
                share = r["live_peak"] - r["sim_base"]
                rows.append(
                    (
                        "treatment with %s wiring (%s, .mpy): firmware peak live heap"
                        % (name, chip),
                        "%s (%.2fx the sim board from source)" % (_kb(share), share / fw),
                    )
                )
            else:
                rows.append(
                    ("treatment with %s wiring" % name, "FAILED at the budget: " + r[-200:])
                )

    files = boardcheck.firmware_files()
    src = sum(p.stat().st_size for p in files)
    rows.append(("firmware: modules / source size", "%d / %s" % (len(files), _kb(src))))
    sizes = []
    with tempfile.TemporaryDirectory() as d:
        for march in boardcheck.REQUIRED_ARCHS + ("armv7m",):
            total = 0
            for p in files:
                out = Path(d) / march / (boardcheck.rel(p).replace("/", "__") + ".mpy")
                proc = boardcheck.mpy_cross(p, out, march)
                if proc.returncode != 0:
                    total = -1
                    break
                total += out.stat().st_size
                if march == "armv6m":
                    sizes.append((out.stat().st_size, boardcheck.rel(p)))
            rows.append(
                (
                    "firmware: .mpy size for -march=%s" % march,
                    "compile error"
                    if total < 0
                    else "%s (%.2fx source)" % (_kb(total), total / src),
                )
            )
    sizes.sort(reverse=True)
    rows.append(
        (
            "firmware: largest .mpy modules",
            ", ".join("%s %s" % (name.split("firmware/")[-1], _kb(n)) for n, name in sizes[:4]),
        )
    )
    return rows


if __name__ == "__main__":
    for label, fig in run():
        print(label, fig)
