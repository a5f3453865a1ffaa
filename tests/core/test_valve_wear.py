"""The solenoid's wear is counted over its life (cryo.core.wear): every
session ends with its valve cycles and the lifetime count, the count
survives a power cut, and a board definition's ``valve.service_cycles``
raises the service warning. Under CPython and the real MicroPython port."""

import pytest
import wear_scenario as W

from cryo.board.definition import BoardError, validate


def _check(r, limit_hit):
    n1, n2 = r["valve_cycles_1"], r["valve_cycles_2"]
    assert r["status0"] == 0
    assert n1 > 5, "the treatment must have cycled the valve past the limit"
    assert r["status1"] == n1
    # Saved when the treatment ended (FLAG_TREATING cleared), read after the cut.
    assert r["after_reboot"] == n1
    assert r["status2"] == n1 + n2  # the count since the reboot adds to it
    (s1, c1, life1), (s2, c2, life2) = r["events"]
    assert s2 == s1 + 1
    assert (c1, life1) == (n1, n1)
    assert (c2, life2) == (n2, n1 + n2)
    assert r["due_after_reboot"] is limit_hit
    assert bool(r["notes"]) is limit_hit
    if limit_hit:
        assert r["notes"][0] == "valve service due: %d cycles (limit %d)" % (n1, 5)


@pytest.mark.parametrize("limit", [5, 10**9 - 1])
def test_cycles_are_logged_per_session_and_kept_across_a_power_cut(limit):
    r = W.treatment_then_power_cut(limit)
    _check(r, limit == 5)
    assert r["due1"] is (limit == 5)


def test_valve_wear_on_micropython(mpy):
    r = mpy.run(
        """
import sys
sys.path.append(%r)
import wear_scenario as W
result(W.treatment_then_power_cut(5))
"""
        % W.__file__.rsplit("/", 1)[0]
    )
    _check(r, True)


@pytest.mark.parametrize("bad", [0, -5, 1 << 30, 2.5, True, "1e6"])
def test_service_limit_outside_the_range_is_named(bad):
    import vboard

    defn = vboard.load_board()
    defn["valve"]["service_cycles"] = bad
    with pytest.raises(
        BoardError, match=r"valve\.service_cycles must be an integer 1\.\.2\*\*30-1"
    ):
        validate(defn)
