"""Virtual board: fast-mode speed and the default plant against Har-Shai 2007.

* fast virtual time: the whole firmware (Controller.tick with sensing,
  interlock, PID, valve, log on littlefs) plus the plant, under MicroPython,
  as a multiple of real time (target >= 50x); the plant alone for reference;
* open-valve cooling rate and minimum of the default plant's skin surface,
  next to the Har-Shai 2007 contact-cryotherapy measurements (mean +- SD).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "boards" / "sim"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import mpyrun  # noqa: E402

from host_tools import sim  # noqa: E402

HAR_SHAI_RATE = (13.47, 9.04)
HAR_SHAI_MIN = (-46.77, 14.74)
TARGET_X = 50.0


def open_valve(name, duration_s=900.0, dt=0.5):
    import plant

    p = plant.Plant(plant.load(name), seed=1)
    t0 = p.surface_c
    hist = []
    for _ in range(int(duration_s / dt)):
        p.step(dt, 1.0, True)
        hist.append(p.surface_c)
    tmin = min(hist)
    drop = t0 - tmin
    i90 = next(i for i, x in enumerate(hist) if t0 - x >= 0.9 * drop)
    return t0, tmin, 0.9 * drop / ((i90 + 1) * dt) * 60.0, hist


def run():
    rows = []
    runs = [sim.run_fast(scenario="treatment", duration_s=300, seed=s) for s in (1, 2, 3)]
    speeds = sorted(r["speed_x"] for r in runs)
    x = speeds[1]
    rows.append(
        (
            "fast mode, default plant, treatment 300 s (median of 3)",
            f"{x:.0f}x real time ({x / TARGET_X:.1f}x the {TARGET_X:.0f}x target), "
            f"{runs[0]['ticks']} ticks of {runs[0]['period_ms']} ms",
        )
    )
    r = mpyrun.run(
        """
import plant, time
p = plant.Plant(plant.load("default"), 1)
t = time.ticks_us()
for i in range(3000):
    p.step(0.02, 1.0 if (i // 50) % 2 else 0.0, True)
us = time.ticks_diff(time.ticks_us(), t)
result(us / 3000)
"""
    )
    rows.append(
        ("plant step alone (20 ms step, MicroPython)", f"{r:.0f} us = {20000 / r:.0f}x real time")
    )
    t0, tmin, rate, hist = open_valve("default")
    rows.append(("default plant: skin surface before treatment", f"{t0:.1f} C"))
    rows.append(
        (
            "open valve: surface cooling rate (90 % of the drop)",
            f"{rate:.1f} C/min  vs Har-Shai {HAR_SHAI_RATE[0]} +- {HAR_SHAI_RATE[1]} "
            f"({(rate - HAR_SHAI_RATE[0]) / HAR_SHAI_RATE[1]:+.2f} SD)",
        )
    )
    rows.append(
        (
            "open valve: surface minimum (15 min)",
            f"{tmin:.1f} C  vs Har-Shai {HAR_SHAI_MIN[0]} +- {HAR_SHAI_MIN[1]} "
            f"({(tmin - HAR_SHAI_MIN[0]) / HAR_SHAI_MIN[1]:+.2f} SD)",
        )
    )
    rows.append(
        (
            "open valve: surface at 30 s / 60 s / 120 s / 300 s",
            " / ".join(f"{hist[int(t / 0.5) - 1]:.1f}" for t in (30, 60, 120, 300)) + " C",
        )
    )
    for name in ("keloid_perfused", "long_line"):
        _, m, rt, _ = open_valve(name)
        rows.append((f"variant {name}: rate / minimum", f"{rt:.1f} C/min / {m:.1f} C"))
    return rows
