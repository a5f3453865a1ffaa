"""Run cryo.thermocouple in 32-bit floats on CPython (numpy.float32).

numpy >= 2 promotes ``float32 op python-float`` to float32 (NEP 50), so
feeding float32 inputs keeps every Horner step in single precision; the
literal coefficients are rounded to float32 at each use, exactly as a
single-precision MicroPython parses them. ``math.exp`` is replaced by a
float32-rounded version for the duration.
"""

import contextlib
import math
import types

import numpy as np

from cryo import thermocouple

f32 = np.float32


@contextlib.contextmanager
def float32_math():
    saved = thermocouple.math
    thermocouple.math = types.SimpleNamespace(exp=lambda x: f32(math.exp(f32(x))))
    try:
        yield
    finally:
        thermocouple.math = saved


def emf32(tc_type, t):
    with float32_math():
        e = thermocouple.emf_mv(tc_type, f32(t))
    assert isinstance(e, np.float32), type(e)
    return e


def temp32(tc_type, e):
    with float32_math():
        t = thermocouple.temperature_c(tc_type, f32(e))
    # min/max clamps may hand back the python-float bound itself
    assert isinstance(t, (np.float32, float)), type(t)
    return t
