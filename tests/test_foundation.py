"""The test rig itself: the fixture, allocation proofs and the wrapping clock."""

import mpyrun
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryo.clock import TICKS_PERIOD, ManualClock


def test_runs_under_real_micropython(mpy):
    impl = mpy.run("import sys\nresult([sys.implementation.name, sys.implementation._mpy])")
    assert impl[0] == "micropython"


def test_traceback_reaches_pytest(mpy):
    with pytest.raises(mpyrun.MicroPythonError, match="ZeroDivisionError"):
        mpy.run("x = 1 // 0")


def test_heap_lock_detects_float_allocation(mpy):
    res = mpy.run(
        """
def ints(a=3):
    return (a * 7 + 1) & 0xFF
def floats(a=3.0):
    return a * 1.5
ok = assert_no_alloc(ints)
try:
    assert_no_alloc(floats)
    flt = "no alloc"
except AssertionError:
    flt = "allocated"
result([ok, flt, bytes_per_call(floats, 50) > 0, bytes_per_call(ints, 50)])
"""
    )
    assert res == [True, "allocated", True, 0]


def test_manual_clock_allocates_nothing(mpy):
    res = mpy.run(
        """
from cryo.clock import ManualClock
c = ManualClock((1 << 30) - 5)
def step():
    c.advance(1)
    return c.diff(c.ticks_ms(), c.add(c.ticks_ms(), -3))
result([assert_no_alloc(step, 20), step()])
"""
    )
    assert res == [True, 3]


def test_clock_wraps_like_a_32_bit_board():
    c = ManualClock(TICKS_PERIOD - 10)
    t0 = c.ticks_ms()
    c.advance(25)
    assert c.ticks_ms() == 15  # wrapped
    assert c.diff(c.ticks_ms(), t0) == 25
    assert c.diff(t0, c.ticks_ms()) == -25
    assert c.diff(c.add(t0, 25), t0) == 25


@given(st.integers(0, TICKS_PERIOD - 1), st.integers(-(1 << 29) + 1, (1 << 29) - 1))
def test_clock_diff_inverts_add(t, d):
    c = ManualClock()
    assert c.diff(c.add(t, d), t) == d


def test_differential_clock_cpython_vs_micropython(mpy):
    # Same wrap arithmetic on both interpreters, near the 2**30 wrap.
    inputs = [[TICKS_PERIOD - 3, 7], [5, -9], [0, (1 << 29) - 1], [123456, 0]]
    cpy, mp = mpy.differential("clock_probe", "add_diff", inputs)
    assert cpy == mp
