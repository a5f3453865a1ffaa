"""Relay autotune: identification against a known FOPDT, formulas, clean aborts."""

import math
from pathlib import Path

import pytest
from fopdt import Fopdt, relay_ku_tu

from cryo.clock import ManualClock
from cryo.control.autotune import RelayAutotune
from cryo.control.model import RULES, fopdt_from, gains_from

CTL_LIB = Path(__file__).resolve().parent / "ctl_lib"  # on sys.path via conftest.py


def run(mpy, code):
    return mpy.run(code, extra_path=[CTL_LIB])


def _tune_fopdt(plant, sp=-25.0, dt_ms=50, limit_s=3000, **kw):
    clock = ManualClock((1 << 30) - 100_000)  # the experiment crosses the wrap
    tune = RelayAutotune(clock, sp, **kw)
    y = plant.measured()
    k = 0
    demands = []
    while not tune.done and k * dt_ms < limit_s * 1000:
        u = tune.step(clock.ticks_ms(), y)
        demands.append(u)
        y = plant.step(u)
        clock.advance(dt_ms)
        k += 1
    return tune, demands


def test_identifies_known_fopdt_plant():
    """Noise-free FOPDT: Ku/Tu close to the exact phase-crossover values."""
    plant = Fopdt(gain=100.0, tau=20.0, dead_time=2.0, rest_c=30.0, dt_s=0.05)
    tune, demands = _tune_fopdt(plant, hysteresis_c=0.3)
    res = tune.result
    assert res["ok"], res
    ku, tu = relay_ku_tu(100.0, 20.0, 2.0)
    # describing-function accuracy for an FOPDT relay test: ~10-25 %
    assert res["Ku"] == pytest.approx(ku, rel=0.3)
    assert res["Tu"] == pytest.approx(tu, rel=0.2)
    fop = res["fopdt"]
    assert fop["gain"] == pytest.approx(100.0, rel=0.1)  # static gain is exact-ish
    assert fop["dead_time"] == pytest.approx(2.0, rel=0.35)
    assert fop["tau"] == pytest.approx(20.0, rel=0.35)
    assert res["apparent_dead_time"] == pytest.approx(2.0, abs=0.15)
    # power adaptation found the demand that holds the setpoint: (30+25)/100
    assert res["bias"] == pytest.approx(0.55, abs=0.05)
    assert min(demands) >= 0.0 and max(demands) <= 1.0
    assert tune.step(0, -25.0) == 0.0  # done: demand 0


def test_autotune_runs_under_micropython(mpy):
    r = run(
        mpy,
        """
from cryo.clock import ManualClock
from cryo.control.autotune import RelayAutotune
from fopdt import Fopdt
plant = Fopdt(gain=100.0, tau=20.0, dead_time=2.0, rest_c=30.0, dt_s=0.05)
clock = ManualClock((1 << 30) - 100000)
tune = RelayAutotune(clock, -25.0, hysteresis_c=0.3, rule="tyreus_luyben")
y = plant.measured()
while not tune.done:
    y = plant.step(tune.step(clock.ticks_ms(), y))
    clock.advance(50)
r = tune.result
result([r["ok"], r["rule"], r["Ku"], r["Tu"], r["kp"], r["ki"], r["kd"], sorted(r["gains"])])
""",
    )
    ok, rule, ku, tu, kp, ki, kd, rules = r
    assert ok and rule == "tyreus_luyben"
    assert kp == pytest.approx(ku / 3.2) and ki == pytest.approx(kp / (2.2 * tu)) and kd == 0.0
    assert rules == sorted(RULES)


def test_gain_rules_match_the_textbook_formulas():
    g = gains_from(2.0, 10.0, 50.0, 20.0, 2.0)
    assert g["zn"] == pytest.approx({"kp": 1.2, "ki": 1.2 / 5.0, "kd": 1.2 * 10.0 / 8.0})
    assert g["no_overshoot"] == pytest.approx({"kp": 0.4, "ki": 0.4 / 5.0, "kd": 0.4 * 10.0 / 3.0})
    assert g["tyreus_luyben"] == pytest.approx({"kp": 2.0 / 3.2, "ki": 2.0 / 3.2 / 22.0, "kd": 0.0})
    # SIMC, tau_c = theta: Kc = tau / (K (tau_c + theta)), Ti = min(tau, 4 (tau_c + theta))
    assert g["simc"] == pytest.approx({"kp": 20.0 / (50.0 * 4.0), "ki": 0.1 / 16.0, "kd": 0.0})


def test_fopdt_from_is_consistent_with_ku_tu():
    ku, tu = relay_ku_tu(80.0, 30.0, 3.0)
    fop = fopdt_from(ku, tu, 99.0, k_static=80.0)  # static-gain route
    assert fop["tau"] == pytest.approx(30.0, rel=1e-6)
    assert fop["dead_time"] == pytest.approx(3.0, rel=1e-6)
    fop = fopdt_from(ku, tu, 3.0)  # switch-to-peak route
    assert fop["tau"] == pytest.approx(30.0, rel=1e-6)
    assert fop["gain"] == pytest.approx(80.0, rel=1e-6)


def test_hysteresis_corrected_ku():
    """Ku uses the half-swing d and sqrt(a^2 - eps^2) (Klipper used 2d and a)."""
    plant = Fopdt(gain=100.0, tau=20.0, dead_time=2.0, rest_c=30.0, dt_s=0.05)
    tune, _ = _tune_fopdt(plant, hysteresis_c=1.0)
    r = tune.result
    assert r["ok"]
    expected = 4 * r["d"] / (math.pi * math.sqrt(r["amplitude"] ** 2 - 1.0))
    assert r["Ku"] == pytest.approx(expected)
    assert r["Ku"] > 4 * r["d"] / (math.pi * r["amplitude"])  # correction raises Ku


def test_abort_on_floor_closes_the_valve():
    plant = Fopdt(gain=300.0, tau=5.0, dead_time=3.0, rest_c=30.0)  # huge overshoot
    tune, demands = _tune_fopdt(plant, floor_c=-40.0)
    assert tune.done and not tune.result["ok"]
    assert tune.result["reason"].startswith("floor")
    assert demands[-1] == 0.0 and tune.demand == 0.0
    assert tune.step(123, -20.0) == 0.0  # stays aborted


def test_abort_on_timeout_and_non_convergence():
    slow = Fopdt(gain=100.0, tau=2000.0, dead_time=1.0, rest_c=30.0)  # never reaches sp
    tune, demands = _tune_fopdt(slow, timeout_ms=60_000)
    assert tune.result["reason"].startswith("timeout") and demands[-1] == 0.0

    import random

    rnd = random.Random(3)
    noisy = Fopdt(gain=100.0, tau=20.0, dead_time=2.0, rest_c=30.0, noise=lambda: rnd.gauss(0, 3))
    tune, demands = _tune_fopdt(noisy, hysteresis_c=0.2, max_cycles=8)
    assert not tune.result["ok"]
    # σ 3 °C needs a hysteresis wider than the test can use: said before any cooling
    assert "probe noise" in tune.result["reason"] and "check the probe" in tune.result["reason"]
    assert max(demands) == 0.0 and tune.noise_c == pytest.approx(3.0, rel=0.25)


def test_abort_on_bad_measurement_and_external_abort():
    clock = ManualClock()
    tune = RelayAutotune(clock, -25.0)
    assert tune.step(0, 20.0) == 0.0  # valve closed while the probe noise is measured
    t = 0
    while t < 5000:
        t += 100
        tune.step(t, 20.0)
    assert tune.step(5100, 20.0) == 1.0  # then the cooling half (bias 0.5 + d 0.5)
    assert tune.step(5200, float("nan")) == 0.0
    assert "measurement" in tune.result["reason"]
    tune = RelayAutotune(clock, -25.0)
    tune.step(0, 20.0)
    assert tune.abort("operator stop") == 0.0
    assert tune.result == {"ok": False, "reason": "operator stop", "cycles": 0}


def test_bad_parameters_are_rejected():
    clock = ManualClock()
    for kw, word in (
        ({"rule": "magic"}, "rule"),
        ({"hysteresis_c": 0.0}, "hysteresis_c"),
        ({"bias": 0.99}, "bias"),
        ({"floor_c": -20.0}, "floor_c"),
        ({"timeout_ms": 0}, "timeout_ms"),
        ({"max_cycles": 2}, "max_cycles"),
        ({"tolerance": 0.0}, "tolerance"),
    ):
        with pytest.raises(ValueError, match=word):
            RelayAutotune(clock, -25.0, **kw)
