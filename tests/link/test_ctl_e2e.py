"""`cryo tune auto` and `cryo tune step` through the CLI on the real controller.

The device is ``link_rigs.py ctl`` under the real MicroPython unix port:
the virtual board with the calibrated default plant (Har-Shai, ~5 min
pull-down), ``cryo.controller.Controller`` (TUNE phase, hold-to-run, every interlock
armed) with the valve sub-ticks every ``service_ms``,
``RelayAutotune`` stepped from the tick, the command channel on stdio — in
unpaced virtual time. The host is the real ``cryo tune auto --apply
chosen``. The gains it applied then hold the setpoint through a treatment
on the same plant (virtual time, another seed).
"""

from link_devrig import DeviceRig

from host_tools.device.link import Link


def test_cli_autotune_on_the_real_controller_gives_gains_that_hold(cli_json, run_link):
    with DeviceRig("hold", "seed=1", controller="ctl") as rig:
        rc, lines, err = cli_json(
            [
                "tune",
                "auto",
                "--port",
                rig.url,
                "--timeout",
                "10",
                "--setpoint",
                "-35",
                "--apply",
                "chosen",
                "--json",
                "--max-time",
                "240",
            ],
        )
        assert rc == 0, err
        with Link(rig.url, timeout=10) as link:
            on_device = {n: link.get(n) for n in ("pid.kp", "pid.ki", "pid.kd")}
            st = link.status()
            tune_state = link.autotune("status")
    res = lines[-1]
    at = res["autotune"]
    assert at["ok"] and set(at["gains"]) == {"zn", "no_overshoot", "tyreus_luyben", "simc"}
    chosen = at["gains"][at["rule"]]
    assert res["applied"] == {
        "pid.kp": chosen["kp"],
        "pid.ki": chosen["ki"],
        "pid.kd": chosen["kd"],
    }
    assert on_device == res["applied"]
    # The stuck-open watch's grace checked against the dead time it found
    # (the default line: the factory grace covers it, no warning).
    sg = res["stuck_grace"]
    assert sg["dead_time_s"] == at["fopdt"]["dead_time"] and sg["covered"]
    assert sg["device_s"] == 1.0 and sg["needed_s"] <= sg["device_s"]
    assert tune_state["state"] == "done" and st["phase"] == "IDLE" and st["faults"] == []
    # A treatment on the same plant (another seed) with exactly these gains:
    # the FREEZE hold at -35 degC, sampled every tick.
    hold = run_link(
        """
import gc
gc.threshold(200000)
from link_rigs import RealRig
from cryo.protocol import states as S
r = RealRig(seed=7, start_ms=(1 << 30) - 200000,
            config={"pid.kp": %r, "pid.ki": %r, "pid.kd": %r, "cycles": 1, "freeze_s": 30.0})
ctl = r.ctl
r.start_treatment()
errs = []
seen = []
c = r.clock
deadline = c.ticks_ms()
k = 0
while k < 9000 and ctl.protocol.state != S.THAW:   # <= 900 s
    r.tick()
    st = ctl.protocol.state
    if not seen or seen[-1] != st:
        seen.append(st)
    t = ctl.inputs.temps[0]
    if st == S.FREEZE and t is not None and ctl.protocol.reached:
        errs.append(t - ctl.ticker.setpoint_c)
    deadline = c.add(deadline, r.period)
    r.service_until(deadline)
    k += 1
n = len(errs)
result({"n": n, "mae": sum(abs(e) for e in errs) / n if n else None,
        "worst": max(abs(e) for e in errs) if n else None, "phases": [S.name(s) for s in seen],
        "faults": ctl.journal.fault_history, "overruns": ctl.ticker.overruns, "wall_ticks": k})
"""
        % (chosen["kp"], chosen["ki"], chosen["kd"])
    )
    assert hold["faults"] == [] and hold["overruns"] == 0, hold
    assert hold["phases"][-1] == "THAW" and hold["n"] >= 250, hold  # the whole 30 s hold
    assert hold["mae"] < 1.0, hold  # mean |error| below 1 degC
    assert hold["worst"] < 3.0, hold


def test_cli_step_test_on_the_real_controller_fits_a_model(cli_json, tmp_path, mpy):
    """`cryo tune step` against the real controller: the TUNE phase holds the
    step demand, the host records the response from telemetry and fits the
    FOPDT model; the status reply carries ``trace_len``, never the trace."""
    png = tmp_path / "step.png"
    with DeviceRig("hold", "seed=2", controller="ctl") as rig:
        rc, lines, err = cli_json(
            [
                "tune",
                "step",
                "--port",
                rig.url,
                "--timeout",
                "10",
                "--demand",
                "0.3",
                "--duration",
                "60",
                "--plot",
                str(png),
                "--json",
            ],
        )
        assert rc == 0, err
        with Link(rig.url, timeout=10) as link:
            st = link.step_test("status")
            phase = link.status()["phase"]
    out = lines[-1]
    fit = out["fopdt"]
    # 10 Hz telemetry for 60 s of device time: most of its 600 frames (a host
    # busy with a second suite drops a few; the fit below needs far fewer)
    assert out["samples"] >= 400
    assert fit["gain"] > 0 and fit["tau"] > 1.0 and fit["rmse"] < 1.0, fit
    assert set(out["gains"]) == {"zn", "no_overshoot", "tyreus_luyben", "simc"}
    for g in out["gains"].values():  # every proposal inside the allowed ranges
        assert 0 <= g["kp"] <= 10 and 0 <= g["ki"] <= 5 and 0 <= g["kd"] <= 50, g
    assert set(out["predicted"]) == set(out["gains"]) and 0.0 < out["hold_duty"] <= 1.0
    assert out["predicted"]["simc"]["undershoot_c"] >= 0.0 and fit["r2"] > 0.9
    assert out["stuck_grace"]["covered"] and out["stuck_grace"]["device_s"] == 1.0
    assert st["state"] == "done" and st["demand"] == 0.3 and st["duration_s"] == 60
    assert "trace" not in st and 55 <= st["trace_len"] <= 61
    assert phase == "IDLE" and png.read_bytes()[:4] == b"\x89PNG"
