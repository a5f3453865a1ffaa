"""Relay autotune robust to noise and lag: hysteresis from the measured
noise, minimum half-cycle, bounded bias steps, stall correction and the
autotune's own dose budget, each abort with a reason and what to try."""

import random

import pytest
from closed_loop import TUNE_OVERRIDES, make_plant, run_autotune
from fopdt import Fopdt

from cryo.clock import ManualClock
from cryo.control.autotune import RelayAutotune


def _drive(plant, tune, dt_ms=50, limit_s=3000, on_step=None):
    clock = tune._clock
    y = plant.measured()
    k = 0
    trace = []
    while not tune.done and k * dt_ms < limit_s * 1000:
        u = tune.step(clock.ticks_ms(), y)
        trace.append((k * dt_ms, u, tune.bias))
        if on_step is not None:
            on_step(k * dt_ms, tune, plant)
        y = plant.step(u)
        clock.advance(dt_ms)
        k += 1
    return trace


@pytest.mark.parametrize(
    "ov",
    [{"probe_tau_s": 2.0, "probe_noise_c": 0.5}, {"probe_noise_c": 0.5}],
    ids=["lag2s_noise0.5", "noise0.5"],
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noisy_and_lagging_probes_converge(ov, seed):
    p = dict(TUNE_OVERRIDES)
    p.update(ov)
    r = run_autotune(make_plant("default", seed, p), -25.0)
    assert r["ok"], r["reason"]
    assert r["noise_c"] == pytest.approx(0.5, rel=0.3)
    assert r["hysteresis"] == pytest.approx(2.5 * r["noise_c"])
    assert r["valve_closed_after"]


def test_quiet_plant_keeps_the_configured_hysteresis():
    r = run_autotune(make_plant("default", 1, TUNE_OVERRIDES), -25.0)
    assert r["ok"] and r["hysteresis"] == 0.5 and r["noise_c"] < 0.2


def test_bias_moves_at_most_one_step_per_cycle_and_halves_are_not_short():
    rnd = random.Random(5)
    plant = Fopdt(gain=100.0, tau=20.0, dead_time=2.0, rest_c=30.0, noise=lambda: rnd.gauss(0, 0.4))
    tune = RelayAutotune(ManualClock(), -25.0, bias_step=0.05, min_half_ms=1500)
    trace = _drive(plant, tune)
    biases = [b for _, _, b in trace]
    assert max(abs(b - a) for a, b in zip(biases, biases[1:])) <= 0.05 + 1e-9
    switches = [t for (t, u, _), (_, u0, _) in zip(trace[1:], trace) if u != u0]
    halves = [b - a for a, b in zip(switches[1:], switches[2:])]  # after the noise phase
    assert halves and min(halves) >= 1500


def test_stall_at_the_warm_level_lowers_the_bias_until_the_relay_switches():
    # bias 0.9: the warm level is 0.8, which still holds 30 - 80 = -50 degC
    plant = Fopdt(gain=100.0, tau=20.0, dead_time=1.0, rest_c=30.0)
    tune = RelayAutotune(ManualClock(), -25.0, bias=0.9, stall_ms=60_000)
    _drive(plant, tune)
    assert tune.nudges >= 1
    assert tune.result["ok"], tune.result
    assert tune.result["bias"] < 0.7


def test_cooling_lost_mid_test_aborts_with_what_to_try():
    plant = Fopdt(gain=100.0, tau=20.0, dead_time=1.0, rest_c=30.0)

    def lose_line(t, tune, p):
        if tune.cycles >= 3:
            p.gain = 20.0  # blocked line: the cool level no longer reaches sp

    tune = RelayAutotune(ManualClock(), -25.0)
    trace = _drive(plant, tune, on_step=lose_line)
    r = tune.result
    assert not r["ok"] and "stalled" in r["reason"] and "check the delivery line" in r["reason"]
    assert trace[-1][1] == 0.0 and tune.demand == 0.0


def test_own_dose_budget_ends_in_a_clean_abort():
    plant = Fopdt(gain=100.0, tau=20.0, dead_time=2.0, rest_c=30.0)
    tune = RelayAutotune(ManualClock(), -25.0, dose_budget_cs=500.0, dose_threshold_c=-10.0)
    trace = _drive(plant, tune)
    r = tune.result
    assert not r["ok"] and r["reason"].startswith("cold-dose budget 500")
    assert "try" in r["reason"] and trace[-1][1] == 0.0
    assert 500.0 < tune.dose_cs < 520.0  # stopped at the first sample past the budget


def test_new_parameters_are_validated():
    c = ManualClock()
    for kw, name in (
        ({"noise_k": 9.0}, "noise_k"),
        ({"bias_step": 0.0}, "bias_step"),
        ({"min_half_ms": -1}, "min_half_ms"),
        ({"dose_budget_cs": -1.0}, "dose_budget_cs"),
    ):
        with pytest.raises(ValueError, match=name):
            RelayAutotune(c, -25.0, **kw)
