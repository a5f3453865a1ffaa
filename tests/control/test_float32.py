"""Float32 accuracy of the PID (most boards: single-precision floats).

The unix port computes in double. Here a float subclass rounds every
arithmetic result to IEEE single precision, the sensor values enter as such
floats, so (almost) every operation in ``PID.update`` runs in float32 like
on an ESP32 or RP2040 build. The closed loop on the plant model must behave the
same as in double (CPython only: the rounding needs ``struct``).
"""

import struct

import pytest
from closed_loop import make_plant, run_loop

from cryo.pid import PID

_PACK = struct.Struct("f")


def f32(x):
    return F32(_PACK.unpack(_PACK.pack(float(x)))[0])


class F32(float):
    def __add__(self, o):
        return f32(float(self) + float(o))

    __radd__ = __add__

    def __sub__(self, o):
        return f32(float(self) - float(o))

    def __rsub__(self, o):
        return f32(float(o) - float(self))

    def __mul__(self, o):
        return f32(float(self) * float(o))

    __rmul__ = __mul__

    def __truediv__(self, o):
        return f32(float(self) / float(o))

    def __rtruediv__(self, o):
        return f32(float(o) / float(self))

    def __neg__(self):
        return f32(-float(self))


def test_f32_arithmetic_really_rounds():
    x = f32(1.0) + 1e-8
    assert isinstance(x, F32) and float(x) == 1.0  # lost in float32, kept in double
    assert float(f32(0.1)) != 0.1


def test_integrator_accumulates_small_steps_in_float32():
    """Hold near the setpoint: ~8e-5 integral steps on an i_term of ~0.5."""
    pid = PID(0.17, 0.039, 0.0)
    ref = PID(0.17, 0.039, 0.0)
    pid.i_term = f32(0.5)
    ref.i_term = 0.5
    m = -25.0 + 0.01
    for _ in range(3000):  # 10 min at 200 ms, error 0.01 °C
        pid.update(f32(-25.0), f32(m), f32(0.2))
        ref.update(-25.0, m, 0.2)
    assert isinstance(pid.i_term, F32)
    assert ref.i_term - 0.5 == pytest.approx(3000 * 0.039 * 0.01 * 0.2, rel=1e-6)
    # float32: the 3000 small steps are not lost; rounding each sum to the
    # float32 grid (~6e-8 near 0.7) drifts ~7e-5 in total = 0.01 % of
    # full demand, which the loop's own feedback absorbs (next test).
    assert pid.i_term - 0.5 == pytest.approx(ref.i_term - 0.5, rel=1e-3)
    assert abs(pid.i_term - ref.i_term) < 2e-4


def test_closed_loop_hold_is_the_same_in_float32():
    sp = -25.0

    def loop(wrap):
        pid = PID(0.17, 0.039, 0.0, d_filter_s=0.5)

        def upd(s, m, dt):
            return float(pid.update(wrap(s), wrap(m), wrap(dt)))

        return run_loop(make_plant("default", 2), upd, sp, 360)

    d64 = loop(float)
    d32 = loop(f32)
    assert d32["t_reach_s"] == pytest.approx(d64["t_reach_s"], abs=2.0)
    assert d32["hold_rms_c"] == pytest.approx(d64["hold_rms_c"], abs=0.05)
    assert d32["undershoot_c"] == pytest.approx(d64["undershoot_c"], abs=0.2)
    assert abs(d32["final_probe_c"] - sp) < 1.0
