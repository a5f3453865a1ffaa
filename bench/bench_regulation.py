"""Regulation benchmark: our PID vs simple-pid vs bang-bang on the plant models.

For every plant variant, in one run:

1. relay autotune (our firmware, under MicroPython) proposes gains (SIMC);
2. our PID with those gains drives the plant from rest to −25 °C and holds
   (MicroPython: the figures come from the interpreter that runs on the
   device);
3. simple-pid 2.0.1 (PyPI, CPython) with the same gains — reverse action
   the way its docs say, negative gains, output limits (0, 1) — drives the
   same plant through the same valve driver and harness;
4. a bang-bang baseline (Klipper-style watermark, ±0.5 °C) the same way.

Printed per controller: time to reach the setpoint (surface within 0.5 °C),
maximum undershoot below the setpoint, hold-phase RMS error (from 20 s
after reaching), IAE over the whole run and after reaching, valve cycles
per minute. Metrics are on the true skin surface (what over-freezes).
Targets on the default plant: hold RMS ≤ 0.5 °C, undershoot
≤ 2 °C, IAE better than simple-pid's — printed as ratios, never asserted.
"""

import sys
import time
from pathlib import Path

import mpyrun

ROOT = Path(__file__).resolve().parents[1]
CTL_LIB = ROOT / "tests" / "control" / "ctl_lib"
SETPOINT = -25.0
# (label, plant file, overrides, run length s). long_line needs ~470 s at
# full flow to reach −25 °C; its shipped 0.4 kg dewar runs dry around then,
# so it is also run with a 2 kg dewar.
CASES = [
    ("default", "default", None, 420),
    ("keloid_perfused", "keloid_perfused", None, 420),
    ("long_line", "long_line", None, 700),
    ("long_line 2kg", "long_line", {"reservoir_kg": 2.0}, 700),
]

_MPY = """
import gc
gc.threshold(200000)
import json
from closed_loop import make_plant, run_autotune, run_loop, BangBang, TUNE_OVERRIDES
from cryo.pid import PID
cases = json.loads(%r)
out = []
tuned = {}
for label, name, ov, dur in cases:
    if name not in tuned:  # the tune runs with TUNE_OVERRIDES: once per plant file
        tuned[name] = run_autotune(make_plant(name, 1, TUNE_OVERRIDES), %r)
    tune = tuned[name]
    row = {"label": label, "tune": tune}
    if tune["ok"]:
        pid = PID(tune["kp"], tune["ki"], tune["kd"], d_filter_s=0.5)
        row["ours"] = run_loop(make_plant(name, 2, ov), pid.update, %r, dur)
        if label == "default":
            pid = PID(tune["kp"], tune["ki"], tune["kd"], d_filter_s=0.5)
            row["ours_prop"] = run_loop(make_plant(name, 2, ov), pid.update, %r, dur, proportional=True)
    row["bang"] = run_loop(make_plant(name, 2, ov), BangBang(0.5).update, %r, dur)
    out.append(row)
    gc.collect()
# per-update cost of the control path and the valve service
pid = PID(0.19, 0.05, 0.05, d_filter_s=0.5, beta=0.8)
m = [-24.0]
def upd():
    m[0] = -m[0] - 49.0
    return pid.update(-25.0, m[0], 0.2)
from cryo.clock import ManualClock
from closed_loop import make_valve
c = ManualClock()
v, pin = make_valve(c)
v.request(0.4)
def svc():
    c.advance(10)
    v.refresh(c.ticks_ms())
    v.service(c.ticks_ms())
from cryo.control.autotune import RelayAutotune
at = RelayAutotune(c, -25.0)
ya = [-24.0]
def ast():
    c.advance(200)
    ya[0] = -ya[0] - 49.0
    return at.step(c.ticks_ms(), ya[0])
b_at = bytes_per_call(ast, 200)
ts = time_us(upd, 500)
tv = time_us(svc, 500)
out.append({"bytes_update": bytes_per_call(upd, 200), "bytes_service": bytes_per_call(svc, 200),
            "us_update": ts[len(ts) // 2], "us_service": tv[len(tv) // 2], "bytes_autotune": b_at})
result(out)
"""


def _simple_pid_run(name, ov, dur, g):
    from closed_loop import make_plant, run_loop
    from simple_pid import PID as SimplePID

    # simple-pid's documented reverse action: negative gains.
    sp = SimplePID(
        -g["kp"],
        -g["ki"],
        -g["kd"],
        setpoint=SETPOINT,
        sample_time=None,
        output_limits=(0.0, 1.0),
    )
    return run_loop(make_plant(name, 2, ov), lambda s, y, dt: sp(y, dt=dt), SETPOINT, dur)


def _fmt(m):
    if m is None:
        return "n/a"
    reach = "%.1f s" % m["t_reach_s"] if m["t_reach_s"] is not None else "not reached"
    rms = "%.2f °C" % m["hold_rms_c"] if m["hold_rms_c"] is not None else "n/a"
    iae_r = "%.0f" % m["iae_reached"] if m["iae_reached"] is not None else "n/a"
    hc = m.get("hold_cycles_per_min")
    hc = "%.0f" % hc if hc is not None else "n/a"
    return (
        "reach %s | undershoot %.2f °C | hold RMS %s | IAE %.0f (after reach %s) °C·s"
        " | valve %.1f cycles/min (hold %s)"
        % (reach, m["undershoot_c"], rms, m["iae"], iae_r, m["cycles_per_min"], hc)
    )


def run():
    import json

    if str(CTL_LIB) not in sys.path:
        sys.path.insert(0, str(CTL_LIB))
    mpyrun.ensure_cpython_path()
    cases = [[a, b, c, d] for a, b, c, d in CASES]
    t0 = time.perf_counter()
    res = mpyrun.run(
        _MPY % (json.dumps(cases), SETPOINT, SETPOINT, SETPOINT, SETPOINT),
        extra_path=[CTL_LIB],
        timeout=900,
    )
    t_mpy = time.perf_counter() - t0
    costs = res.pop()
    rows = []
    for case, r in zip(CASES, res):
        label, name, ov, dur = case
        tune = r["tune"]
        if not tune["ok"]:
            rows.append((label + ": autotune", "FAILED: " + tune["reason"]))
            rows.append((label + ": bang-bang", _fmt(r["bang"])))
            continue
        fop = tune["fopdt"]
        rows.append(
            (
                label + ": autotune",
                "Ku %.3f /°C, Tu %.1f s, bias %.2f, FOPDT K %.0f °C, τ %.1f s, θ %.2f s, %d cycles, %.0f s -> %s kp %.3f ki %.4f kd %.3f"
                % (
                    tune["Ku"],
                    tune["Tu"],
                    tune["bias"],
                    fop["gain"],
                    fop["tau"],
                    fop["dead_time"],
                    tune["cycles"],
                    tune["elapsed_s"],
                    tune["rule"],
                    tune["kp"],
                    tune["ki"],
                    tune["kd"],
                ),
            )
        )
        ours = r["ours"]
        simple = _simple_pid_run(name, ov, dur, tune)
        rows.append((label + ": our PID (MicroPython)", _fmt(ours)))
        rows.append((label + ": simple-pid, same gains (CPython)", _fmt(simple)))
        rows.append((label + ": bang-bang ±0.5 °C", _fmt(r["bang"])))
        if "ours_prop" in r:
            rows.append((label + ": our PID, proportional valve", _fmt(r["ours_prop"])))
        if ours["t_reach_s"] is not None and simple["iae"] > 0:
            ratio = [
                "IAE ours/simple-pid %.4f (target < 1)" % (ours["iae"] / simple["iae"]),
            ]
            if ours["iae_reached"] is not None and simple["iae_reached"]:
                ratio.append("after reach %.3f" % (ours["iae_reached"] / simple["iae_reached"]))
            if simple["undershoot_c"] > 0:
                ratio.append("undershoot %.2f" % (ours["undershoot_c"] / simple["undershoot_c"]))
            if ours["hold_rms_c"] is not None:
                ratio.append("hold RMS / 0.5 °C target %.2f" % (ours["hold_rms_c"] / 0.5))
            ratio.append("undershoot / 2 °C target %.2f" % (ours["undershoot_c"] / 2.0))
            rows.append((label + ": ratios", ", ".join(ratio)))
    # Window trade-off (docs/control.md): ripple vs valve cycles, CPython
    # harness (same code), default plant, the default plant's tuned gains.
    g = res[0]["tune"]
    if g["ok"]:
        from closed_loop import make_plant, run_loop

        from cryo.pid import PID

        for win in (2000, 1000, 500, 250, 200, 100):
            pid = PID(g["kp"], g["ki"], g["kd"], d_filter_s=0.5)
            valve_kw = {"window_ms": win, "min_on_ms": 30, "min_off_ms": 30}
            m = run_loop(make_plant("default", 2), pid.update, SETPOINT, 420, valve_kw=valve_kw)
            rows.append(
                (
                    "default: window %d ms" % win,
                    "hold RMS %.2f °C, max |err| %.2f °C, undershoot %.2f °C, %.0f cycles/min in hold"
                    % (
                        m["hold_rms_c"],
                        m["hold_max_abs_c"],
                        m["undershoot_c"],
                        m["hold_cycles_per_min"],
                    ),
                )
            )
    rows.append(("PID.update bytes allocated (MicroPython)", "%.0f B" % costs["bytes_update"]))
    rows.append(("PID.update median time (unix port)", "%d µs" % costs["us_update"]))
    rows.append(("RelayAutotune.step bytes allocated", "%.0f B" % costs["bytes_autotune"]))
    rows.append(
        (
            "valve refresh+service bytes / median time",
            "%.0f B / %d µs" % (costs["bytes_service"], costs["us_service"]),
        )
    )
    rows.append(("MicroPython part of this benchmark", "%.1f s" % t_mpy))
    return rows


if __name__ == "__main__":
    for label, fig in run():
        print("%-45s %s" % (label, fig))
