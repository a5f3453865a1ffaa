"""32-bit float emulation that runs under MicroPython (and CPython).

The unix port computes in doubles; boards like the RP2040 or STM32F4 builds
use single precision. ``F32`` holds a value rounded to float32 and rounds
again after every arithmetic operation (struct round trip), so running
cryo.thermocouple on ``F32`` inputs reproduces a single-precision board
operation by operation. Coefficient literals are rounded when they meet an
F32, as a float32 build rounds them when parsing. MicroPython has no
reflected comparisons, which is why the module under test keeps the variable
on the left of every comparison.
"""

import math
import struct


def r32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def _v(x):
    return x.v if isinstance(x, F32) else r32(x)


class F32:
    def __init__(self, v):
        self.v = r32(v)

    def __add__(a, b):
        return F32(a.v + _v(b))

    def __radd__(a, b):
        return F32(_v(b) + a.v)

    def __sub__(a, b):
        return F32(a.v - _v(b))

    def __rsub__(a, b):
        return F32(_v(b) - a.v)

    def __mul__(a, b):
        return F32(a.v * _v(b))

    def __rmul__(a, b):
        return F32(_v(b) * a.v)

    def __truediv__(a, b):
        return F32(a.v / _v(b))

    def __rtruediv__(a, b):
        return F32(_v(b) / a.v)

    def __neg__(a):
        return F32(-a.v)

    def __abs__(a):
        return F32(abs(a.v))

    def __lt__(a, b):
        return a.v < _v(b)

    def __le__(a, b):
        return a.v <= _v(b)

    def __gt__(a, b):
        return a.v > _v(b)

    def __ge__(a, b):
        return a.v >= _v(b)


class _Math32:
    @staticmethod
    def exp(x):
        return F32(math.exp(_v(x)))


def value(x):
    return x.v if isinstance(x, F32) else x


def run32(fn, *args):
    """Call ``fn`` with float32 math in cryo.thermocouple; return a float."""
    from cryo import thermocouple

    saved = thermocouple.math
    thermocouple.math = _Math32
    try:
        return value(fn(*args))
    finally:
        thermocouple.math = saved


def float32_errors(tc_type, t_lo, t_hi, step):
    """Worst |E32 - E64| (mV) and worst |T32(E32) - t| (°C) on a grid."""
    from cryo import thermocouple as tc

    we = 0.0
    wt = 0.0
    t = t_lo
    while t <= t_hi:
        t32 = r32(t)
        e32 = run32(tc.emf_mv, tc_type, F32(t32))
        e64 = tc.emf_mv(tc_type, t32)
        we = max(we, abs(e32 - e64))
        back = run32(tc.temperature_c, tc_type, F32(e32))
        wt = max(wt, abs(back - t32))
        t += step
    return we, wt
