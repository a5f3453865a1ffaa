"""The proportional-valve variant of the virtual board
(boards/sim/board_proportional.json) in fast virtual time (``cryo sim
run --board``): the PWM duty reaches the plant as a fractional opening, a
stuck valve is still caught, and on the default plant the treatment's
whole hold (from the target reached to THAW) keeps the skin within 0.5 °C
RMS with at most 60 valve cycles per minute — where the solenoid board,
on the same plant and seed, cycles about five times a second."""

import csv
from concurrent.futures import ThreadPoolExecutor

import pytest
from sim_harness import ROOT

from cryo.protocol.protocol import REACH_CONFIRM_MS
from host_tools import sim

pytestmark = [pytest.mark.sim, pytest.mark.mpy]  # firmware runs under MicroPython

BOARD = str(ROOT / "boards" / "sim" / "board_proportional.json")
TARGET_C = -25.0
# Factory gains; a 30 s hold (the longest freeze the limits allow).
TREAT = {"protocol.target_c": TARGET_C, "protocol.freeze_s": 30.0, "protocol.cycles": 1}


def _both(jobs):
    with ThreadPoolExecutor(max_workers=2) as pool:  # two interpreters, two cores
        return list(pool.map(lambda kw: sim.run_fast(timeout=900, **kw), jobs))


def _hold(trace, t_reach_s):
    """RMS of the true skin surface against the target in FREEZE from the
    target reached, and how many samples."""
    sq = n = 0
    with open(trace) as f:
        for r in csv.DictReader(f):
            if r["phase"] == "FREEZE" and float(r["t_s"]) >= t_reach_s:
                e = float(r["surface_c"]) - TARGET_C
                sq += e * e
                n += 1
    return (sq / n) ** 0.5 if n else None, n


def test_hold_within_half_a_degree_at_most_60_cycles_per_minute(tmp_path):
    prop, sol = tmp_path / "prop.csv", tmp_path / "sol.csv"
    common = {"scenario": "treatment", "seed": 2, "duration_s": 360, "config": TREAT}
    p, s = _both([dict(common, board=BOARD, trace=prop), dict(common, trace=sol)])
    for run in (p, s):
        assert run["errors"] == [] and run["status"]["latched"] == [], run["status"]
        assert run["status"]["phase"] in ("THAW", "DONE")
        # the whole freeze was held: 30 s from the reading's entry into the
        # band, of which the runner sees the part after the confirmation
        assert run["hold"]["s"] == 30.0 - REACH_CONFIRM_MS / 1000
    ph, sh = p["hold"], s["hold"]
    p_cpm = ph["cycles"] * 60.0 / ph["s"]
    s_cpm = sh["cycles"] * 60.0 / sh["s"]
    p_rms, n = _hold(prop, ph["t_reach_s"])
    assert n >= 290  # 29.5 s of 100 ms samples
    assert p_rms <= 0.5, p_rms
    # the runner's own figure (every 10 ms sub-tick) agrees with the trace's
    assert abs(ph["rms_c"] - p_rms) < 0.05, (ph["rms_c"], p_rms)
    assert p_cpm <= 60.0, p_cpm
    # The solenoid on the same plant and seed: the cycle budget is what the
    # proportional valve changes (its window's pulses).
    assert s_cpm > 60.0, s_cpm


def test_duty_reaches_the_plant_as_an_opening():
    """Full PRECOOL flow, then a modulated FREEZE: the flow time the
    valves delivered is less than the time the valve was driven open."""
    (p,) = _both(
        [{"board": BOARD, "scenario": "treatment", "seed": 2, "duration_s": 330, "config": TREAT}]
    )
    assert p["hold"]["t_reach_s"] is not None
    assert p["valve_open_s"] - p["valve_flow_s"] > 5.0, (p["valve_open_s"], p["valve_flow_s"])


def test_stuck_closed_proportional_valve_is_caught():
    """``valve_stuck`` acts on the proportional valve as on the solenoid (a
    stuck-open one: tests/core/test_proportional_valve.py)."""
    (p,) = _both([{"board": BOARD, "scenario": "valve_stuck_closed", "seed": 4, "duration_s": 150}])
    st = p["status"]
    assert (set(st["latched"]) | set(st["faults"])) & {"no_cool", "depleted"}, st
    assert p["valve_flow_s"] == 0.0  # nothing reached the skin: the trip is the watch's
