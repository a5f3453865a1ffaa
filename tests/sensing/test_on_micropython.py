"""The sensing scenarios (sensing_cases.py) under MicroPython and CPython.

All cases run in one MicroPython process (module fixture); each case is then
its own pytest item on each interpreter, so a failure names the scenario and
the interpreter.
"""

from pathlib import Path

import pytest
import sensing_cases
from hypothesis import given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
CASES = sensing_cases.names()


@pytest.fixture(scope="module")
def mpy_results(mpy):
    return mpy.run(
        "import sensing_cases\nresult(sensing_cases.run_all())",
        extra_path=[HERE],
        timeout=300,
    )


@pytest.mark.parametrize("name", CASES)
def test_case_under_micropython(name, mpy, mpy_results):
    assert mpy_results[name] == "ok"


@pytest.mark.parametrize("name", CASES)
def test_case_under_cpython(name):
    getattr(sensing_cases, name)()


@settings(max_examples=10, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["reading55", "reading56"]),
            st.sampled_from(["K", "T"]),
            # Values a float32 board can hold (MicroPython's float32 parser
            # turns some double-only strings, e.g. 1.8887406739214823e-149,
            # into nan: measured on the 32-bit build).
            st.floats(-270.0, 400.0, width=32, allow_subnormal=False),
            st.floats(-20.0, 70.0, width=32, allow_subnormal=False),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_drivers_agree_between_interpreters(mpy, calls):
    """Hypothesis-drawn readings: emulated chip + driver + NIST correction give
    the same codes and temperatures on MicroPython as on CPython."""
    got = mpy.run(
        "import sensing_cases as c\nresult([getattr(c, f)(*a) for f, *a in %r])"
        % ([list(x) for x in calls],),
        extra_path=[HERE],
    )
    for (f, *args), m in zip(calls, got):
        c = getattr(sensing_cases, f)(*args)
        if mpy.facts()["float32"]:
            # The emulated chip rounds a temperature to its code in the
            # interpreter's floats: exactly between two codes (1.67578125 °C
            # = 214.5/128) float32 may land on the other one. The driver
            # must still agree on the faults and convert its code the same.
            assert m[0] == c[0] and abs(m[1] - c[1]) <= 1 and abs(m[2] - c[2]) <= 1, (f, args)
            if m[1:3] != c[1:3]:
                continue
        else:
            assert m[:3] == c[:3], (f, args)
        if c[3] is None:
            assert m[3] is None
        else:
            assert m[3] == pytest.approx(c[3], abs=mpy.float_tol(1e-9, abs(c[3]) + 1)), (f, args)


def test_max31856_range_edges_agree_between_interpreters(mpy):
    """At the edges of the chip's tables (−200 °C for K and T, +400 °C for
    T, +1372 °C for K) the emulated MAX31856 reports the same code and the
    same range fault on MicroPython as on CPython: the fault is judged on
    its 1/128 °C code, so a float32 inverse a hair past the edge (found by
    the property test above on the 32-bit build) is not a fault."""
    calls = [
        ["reading56", t, h, 0.0]
        for t in ("K", "T")
        for h in (-200.0, -200.01, -199.99, 400.0, 400.01, 1372.0)
    ]
    got = mpy.run(
        "import sensing_cases as c\nresult([getattr(c, f)(*a) for f, *a in %r])" % (calls,),
        extra_path=[HERE],
    )
    for (f, *args), m in zip(calls, got):
        c = getattr(sensing_cases, f)(*args)
        assert m[:3] == c[:3], (args, m, c)
    # In range exactly at the cold edge, a range fault just beyond it (the
    # emulated wire itself ends at +400 °C for T, so T never passes its
    # hot edge).
    assert [m[0] for m in got] == [0, 64, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0]
