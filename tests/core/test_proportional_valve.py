"""A board with a proportional cryogen valve (``"valve": {"kind":
"proportional", ...}``): the definition's checks, the controller driving it
through a treatment on the virtual board, and every closing path, under
CPython and the real MicroPython port (also the 32-bit build)."""

import core_scenarios as SC
import prop_scenario as P
import pytest

from cryo.board.definition import BoardError, validate

_RUN = """
import sys
sys.path.append(%r)
import prop_scenario as P
result(%s)
"""


def _mpy(mpy, call):
    return mpy.run(_RUN % (SC.CORE, call))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("kind", "servo", r"valve\.kind 'servo' unknown; allowed: solenoid, proportional"),
        ("freq", None, r"valve\.freq must be .* integer 20\.\.20000 Hz .* got None"),
        ("freq", 5, r"valve\.freq must be .* got 5"),
        ("freq", 500.5, r"valve\.freq must be .* got 500\.5"),
        ("min_demand", 0.7, r"valve\.min_demand must be a number 0 <= x < 0\.5 .* got 0\.7"),
        ("min_demand", -0.1, r"valve\.min_demand must be a number 0 <= x < 0\.5"),
        ("min_demand", True, r"valve\.min_demand must be a number"),
        ("active_high", False, r"proportional valve must be active_high"),
    ],
)
def test_bad_proportional_valve_fields_are_named(field, value, message):
    defn = P.board_definition()
    validate(defn)  # the shipped definition itself is valid
    if value is None:
        del defn["valve"][field]
    else:
        defn["valve"][field] = value
    with pytest.raises(BoardError, match=message):
        validate(defn)


def test_solenoid_fields_stay_the_solenoids():
    import vboard

    defn = vboard.load_board()
    validate(defn)
    defn["valve"]["freq"] = 500  # a solenoid has no PWM: a mistake, named
    with pytest.raises(BoardError, match=r"valve\.freq is for a proportional valve only"):
        validate(defn)


def _check_treatment(r):
    assert r["regulating"] is True
    assert r["valve_type"] == "ProportionalValve"
    assert r["state"] == "DONE" and r["latched"] == []
    # The duty modulates: many duties, fractional openings reach the plant.
    assert r["duties"] >= 20 and r["partial"] >= 10
    # The valve stays open while it modulates: a handful of openings, not
    # one per window, and wear counts what the board saw.
    assert 1 <= r["cycles"] <= 20
    assert r["world_cycles"] == r["cycles"] and r["status_cycles"] == r["cycles"]
    assert r["closed"] is True and r["duty_end"] == 0


def test_controller_drives_a_proportional_valve_through_a_treatment():
    _check_treatment(P.treatment())


def test_treatment_on_micropython(mpy):
    _check_treatment(_mpy(mpy, "P.treatment()"))


def _check_closed(r, how):
    assert r["regulating"] is True
    assert r["duty_before"] > 0 and r["open_before"] is True
    assert r["duty_after"] == 0 and r["open_after"] is False and r["is_open"] is False
    if how == "estop":
        assert "estop" in r["tripped"]
    elif how == "stall":
        assert "overrun" in r["tripped"]
    else:
        assert r["expired"] == 1


@pytest.mark.parametrize("how", ["estop", "stall", "deadman"])
def test_valve_closes_on_trip_safety_timer_and_dead_man(how):
    _check_closed(P.closes(how), how)


def test_closing_paths_on_micropython(mpy):
    r = _mpy(mpy, "[P.closes(h) for h in ('estop', 'stall', 'deadman')]")
    for how, one in zip(("estop", "stall", "deadman"), r):
        _check_closed(one, how)


@pytest.mark.parametrize("cond", ["stuck_open", "no_cool", "overcool"])
def test_stuck_valve_faults_trip_on_the_proportional_board(cond):
    """``valve_stuck`` acts on the proportional valve as on the solenoid:
    stuck open or closed, the interlock's watches trip and close both."""
    r = SC.run_case(cond, "FREEZE", board=P.board_definition())
    assert r.get("error") is None, r
    assert r["recorded"] and r["closed_same_tick"] and r["closed_after"], r
