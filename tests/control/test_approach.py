"""Approach without windup: integral zone + integrator preload (cryo.pid).

Unit behaviour under real MicroPython; the closed-loop figure on a long
dead-time plant (the case where the plain PID arrives with a wound-up
integral) through the CPython harness, which runs the same modules.
"""

from pathlib import Path

import pytest
from closed_loop import make_plant, run_autotune, run_loop

from cryo.pid import PID
from host_tools.commands.tune import ZONE_C  # the zone `cryo tune --apply` proposes

CTL_LIB = Path(__file__).resolve().parent / "ctl_lib"


def test_zone_freezes_the_integral_on_an_approach_and_integrates_inside(mpy):
    r = mpy.run(
        """
from cryo.pid import PID
out = {}
for zone in (0.0, 2.0):
    pid = PID(0.05, 0.01, 0.0, i_zone_c=zone)
    y = 0.0
    while y > -20.0:          # approach at -0.5 degC/s, error 25..5 degC, unsaturated
        pid.update(-25.0, y, 0.2)
        y -= 0.1
    out[zone] = pid.i_term
pid = PID(0.05, 0.01, 0.0, i_zone_c=2.0)
for k in range(50):
    pid.update(-25.0, -24.0, 0.2)   # inside the zone: integrates as usual
out["inside"] = pid.i_term
result(out)
""",
        extra_path=[CTL_LIB],
    )
    assert r["0.0"] > 0.3  # the plain PID fills its integral on the way down
    assert r["2.0"] == 0.0  # the zone keeps it empty
    assert r["inside"] == pytest.approx(50 * 0.01 * 1.0 * 0.2, rel=1e-6)


def test_a_stall_outside_the_zone_is_still_integrated_away():
    # P alone holds 0.05*5 = 0.25, the plant would need more: no offset forever.
    pid = PID(0.05, 0.01, 0.0, i_zone_c=2.0)
    for _ in range(600):
        pid.update(-25.0, -20.0, 0.2)  # stuck 5 degC warm, trend 0
    assert pid.i_term > 0.5


def test_preload_is_the_integral_after_reset_and_is_validated():
    pid = PID(0.1, 0.01, 0.0, preload=0.45)
    assert pid.i_term == 0.45
    pid.update(-25.0, -25.0, 0.2)
    assert pid.output == pytest.approx(0.45)  # at the setpoint: the holding duty
    pid.set_preload(0.3)
    pid.reset()
    assert pid.i_term == 0.3
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="preload"):
            pid.set_preload(bad)
    with pytest.raises(ValueError, match="i_zone_c"):
        PID(0.1, 0.01, 0.0, i_zone_c=-1.0)


def test_set_approach_is_bumpless_for_beta_and_sets_everything():
    pid = PID(0.2, 0.02, 0.0)
    for _ in range(20):
        pid.update(-25.0, -23.0, 0.2)
    before = pid.output
    pid.set_approach(2.0, 0.4, 0.0, 0.5)
    assert (pid.i_zone_c, pid.preload, pid.beta, pid.sp_ramp_c_per_s) == (2.0, 0.4, 0.0, 0.5)
    assert pid.update(-25.0, -23.0, 0.2) == pytest.approx(before, abs=0.02)


def test_long_dead_time_approach_undershoot_within_2_degc():
    """Dead time 2.5 s: the plain PID with the autotuned SIMC gains arrives
    with a wound-up integral (undershoot > 2 degC); the proposed zone plus
    the autotune's holding duty as preload stays within 2 degC and holds
    near 0.5 degC RMS."""
    ov = {"dead_time_s": 2.5, "reservoir_kg": 2.0}
    tune = run_autotune(make_plant("default", 1, ov), -25.0)
    assert tune["ok"], tune
    plain = PID(tune["kp"], tune["ki"], tune["kd"], d_filter_s=0.5)
    m0 = run_loop(make_plant("default", 2, ov), plain.update, -25.0, 420)
    pid = PID(tune["kp"], tune["ki"], tune["kd"], d_filter_s=0.5, i_zone_c=ZONE_C)
    pid.set_preload(tune["bias"])
    pid.reset()
    m1 = run_loop(make_plant("default", 2, ov), pid.update, -25.0, 420)
    assert m0["undershoot_c"] > 2.0  # the failure this guards against is real
    assert m1["undershoot_c"] <= 2.0
    assert m1["hold_rms_c"] <= 0.55
    assert m1["t_reach_s"] < m0["t_reach_s"] + 30.0
