"""NIST ITS-90 reference functions for type K and type T thermocouples.

Public API (external harnesses call it)::

    emf_mv(tc_type, t_c)          temperature (°C) -> EMF (mV), reference junction 0 °C
    temperature_c(tc_type, emf)   EMF (mV) -> temperature (°C)
    seebeck_uv_per_c(tc_type, t_c)  dE/dt in µV/°C

``tc_type`` is ``"K"`` or ``"T"``. Valid from -270 °C to the top of each
type's range (K 1372 °C, T 400 °C); anything else raises ValueError naming the
allowed range.

Forward functions (NIST Monograph 175 / srdata ``type_k.tab``, ``type_t.tab``)
are the definition of the scale. They are stored **re-centred**: the same
polynomial expanded about a centre point c, ``E = sum b_k (t - c)^k``, with the
b_k computed once offline in exact rational arithmetic from the published
c_i. The monomial form cancels catastrophically in 32-bit floats (the 14-term
T polynomial is off by 37 µV = 37 °C at -270 °C, and ~1 µV = 0.06 °C at
-200 °C); the re-centred form stays below 0.005 µV on every board.
tests/sensing/test_thermocouple.py re-derives every b_k from the verbatim NIST
coefficients and checks these literals.

Inverse: NIST's inverse polynomial for the sub-range the EMF falls in, then
one Newton step on the forward function. The step removes the inverse
polynomial's own error (NIST band up to -0.05/+0.06 °C), so
``temperature_c(emf_mv(t)) == t`` to a few millidegrees, in float32 too.
Below -200 °C NIST publishes no inverse: there a safeguarded Newton iteration
(bisection fallback inside [-270, -200] °C) solves the forward polynomial,
so an LN2 probe a few kelvin below -196 °C never raises.

All arithmetic is plain ``+ - * /`` (Horner evaluation) and ``math.exp``,
and every comparison keeps the variable on the left: passing float32 values
(numpy.float32 on CPython, a struct-rounding float32 class on MicroPython,
see tests/sensing) keeps every operation in float32, which is how
single-precision boards run it.
"""

import math

TYPES = ("K", "T")

# Valid temperature ranges (°C).
K_T_MIN = -270.0
K_T_MAX = 1372.0
T_T_MIN = -270.0
T_T_MAX = 400.0

# EMF at the ends of the ranges (mV, NIST tables, 3 decimals).
K_EMF_MIN = -6.458
K_EMF_MAX = 54.886
T_EMF_MIN = -6.258
T_EMF_MAX = 20.872

# Half a digit of the NIST tables: an EMF this far outside the range (the
# table value itself, rounded) is still accepted and clamps to the end.
_EMF_TOL = 0.0005

# --- forward functions, re-centred (coefficients highest degree first) ----
# K, -270..0 °C, NIST c0..c10 expanded about -135 °C.
_K_NEG_C = -135.0
_K_NEG = (
    -1.6322697486e-23,
    2.1463747280999998e-21,
    3.271976160642499e-19,
    -5.130235460172959e-17,
    2.3487987713026914e-15,
    -2.437566671053697e-13,
    -3.473433386308829e-11,
    -9.690520793871453e-08,
    7.170162757752441e-05,
    0.02583836857988624,
    -4.541590872009599,
)
# K, 0..1372 °C, NIST c0..c9 expanded about 686 °C (plus the exponential).
_K_POS_C = 686.0
_K_POS = (
    -1.2104721275e-26,
    2.2416598000149992e-23,
    7.886692667499545e-21,
    -2.5005308088264947e-17,
    1.4364851510169313e-15,
    9.741261890776972e-12,
    -5.385908237674898e-09,
    -3.735619304069365e-06,
    0.042005663339743766,
    28.54164115008896,
)
# K exponential term above 0 °C: a0 * exp(a1 * (t - a2)^2)
_K_A0 = 0.1185976
_K_A1 = -0.0001183432
_K_A2 = 126.9686
# T, -270..0 °C, NIST c0..c14 expanded about -135 °C.
_T_NEG_C = -135.0
_T_NEG = (
    7.9795153927e-31,
    -1.1362570302030008e-28,
    -4.4415643290186806e-26,
    6.5379364095709205e-24,
    8.820121362688146e-22,
    -1.3693001168953302e-19,
    -7.445741039033437e-18,
    1.2292817744888834e-15,
    3.727351267463109e-14,
    -5.908531139682881e-12,
    -1.1227349529497935e-10,
    -2.0121096095439824e-08,
    6.173910599318119e-05,
    0.02418864025674803,
    -4.299596325305558,
)
# T, 0..400 °C, NIST c0..c8 expanded about 200 °C.
_T_POS_C = 200.0
_T_POS = (
    -2.7512901673e-20,
    1.4584926132000024e-18,
    2.0405807602400007e-15,
    -1.053359043040003e-13,
    -2.8087125976000022e-11,
    -2.2366767700159935e-08,
    2.8316457062784018e-05,
    0.0531497897539648,
    9.28810200394112,
)

# --- inverse functions, verbatim NIST d_i (highest degree first) ----------
# K: -5.891..0 mV (-200..0 °C), error band -0.02..+0.04 °C
_K_INV_NEG = (
    -5.1920577e-04,
    -1.0450598e-02,
    -8.6632643e-02,
    -3.7342377e-01,
    -8.9773540e-01,
    -1.0833638e00,
    -1.1662878e00,
    2.5173462e01,
    0.0,
)
# K: 0..20.644 mV (0..500 °C), error band -0.05..+0.04 °C
_K_INV_MID = (
    -1.052755e-08,
    1.057734e-06,
    -4.413030e-05,
    9.804036e-04,
    -1.228034e-02,
    8.315270e-02,
    -2.503131e-01,
    7.860106e-02,
    2.508355e01,
    0.0,
)
# K: 20.644..54.886 mV (500..1372 °C), error band -0.05..+0.06 °C
_K_INV_HIGH = (
    -3.110810e-08,
    8.802193e-06,
    -9.650715e-04,
    5.464731e-02,
    -1.646031e00,
    4.830222e01,
    -1.318058e02,
)
# T: -5.603..0 mV (-200..0 °C), error band -0.02..+0.04 °C
_T_INV_NEG = (
    1.2668171e-03,
    2.0241446e-02,
    1.3304473e-01,
    4.2527777e-01,
    7.9018692e-01,
    -2.1316967e-01,
    2.5949192e01,
    0.0,
)
# T: 0..20.872 mV (0..400 °C), error band -0.03..+0.03 °C
_T_INV_POS = (
    -7.293422e-07,
    6.048144e-05,
    -2.165394e-03,
    4.637791e-02,
    -7.602961e-01,
    2.592800e01,
    0.0,
)

# Lowest EMF each NIST inverse covers (E at -200 °C); below it: Newton.
_K_INV_LO = -5.891
_K_INV_MID_LO = 0.0
_K_INV_HIGH_LO = 20.644
_T_INV_LO = -5.603

# Newton below -200 °C: bracket and stopping rule.
_NEWTON_LO = -270.0
_NEWTON_HI = -199.0
_NEWTON_TOL = 1e-4
_NEWTON_MAX = 40


def _horner(coeffs, x):
    """sum(c * x^k) with coefficients highest degree first."""
    acc = coeffs[0]
    n = len(coeffs)
    i = 1
    while i < n:
        acc = acc * x + coeffs[i]
        i += 1
    return acc


def _horner_d(coeffs, x):
    """(p(x), p'(x)) in one pass."""
    p = coeffs[0]
    d = p - p  # zero of the same float kind as p
    n = len(coeffs)
    i = 1
    while i < n:
        d = d * x + p
        p = p * x + coeffs[i]
        i += 1
    return p, d


def _check_type(tc_type):
    if tc_type == "K":
        return True
    if tc_type == "T":
        return False
    raise ValueError("unknown thermocouple type %r: allowed 'K' or 'T'" % (tc_type,))


def _fwd(is_k, t):
    """(E mV, dE/dt mV/°C) of the forward reference function; t in range."""
    if is_k:
        if t < 0:
            return _horner_d(_K_NEG, t - _K_NEG_C)
        e, d = _horner_d(_K_POS, t - _K_POS_C)
        u = t - _K_A2
        x = _K_A0 * math.exp(_K_A1 * u * u)
        return e + x, d + x * 2 * _K_A1 * u
    if t < 0:
        return _horner_d(_T_NEG, t - _T_NEG_C)
    return _horner_d(_T_POS, t - _T_POS_C)


def _e(is_k, t):
    """E mV only (half the work of :func:`_fwd`)."""
    if is_k:
        if t < 0:
            return _horner(_K_NEG, t - _K_NEG_C)
        u = t - _K_A2
        return _horner(_K_POS, t - _K_POS_C) + _K_A0 * math.exp(_K_A1 * u * u)
    if t < 0:
        return _horner(_T_NEG, t - _T_NEG_C)
    return _horner(_T_POS, t - _T_POS_C)


def _t_range(is_k):
    if is_k:
        return K_T_MIN, K_T_MAX
    return T_T_MIN, T_T_MAX


def _emf_range(is_k):
    if is_k:
        return K_EMF_MIN, K_EMF_MAX
    return T_EMF_MIN, T_EMF_MAX


def emf_mv(tc_type, t_c):
    """Thermoelectric EMF in mV of a type K/T thermocouple at ``t_c`` °C
    against a 0 °C reference junction (NIST ITS-90 reference function).

    Raises ValueError for an unknown type or a temperature outside
    -270 °C … 1372 °C (K) / 400 °C (T).
    """
    is_k = _check_type(tc_type)
    lo, hi = _t_range(is_k)
    if not (t_c >= lo and t_c <= hi):  # also rejects NaN
        raise ValueError(
            "temperature %r °C out of range for type %s: allowed %g to %g °C"
            % (t_c, tc_type, lo, hi)
        )
    return _e(is_k, t_c)


def seebeck_uv_per_c(tc_type, t_c):
    """Seebeck coefficient dE/dt in µV/°C at ``t_c`` (same range rules)."""
    is_k = _check_type(tc_type)
    lo, hi = _t_range(is_k)
    if not (t_c >= lo and t_c <= hi):
        raise ValueError(
            "temperature %r °C out of range for type %s: allowed %g to %g °C"
            % (t_c, tc_type, lo, hi)
        )
    return _fwd(is_k, t_c)[1] * 1000


def nist_inverse(tc_type, emf):
    """NIST's inverse polynomial alone (no Newton refinement), for the
    sub-range ``emf`` falls in; below -200 °C it is extrapolated (NIST gives
    no inverse there). Used as the starting point of :func:`temperature_c`
    and by the tests that check NIST's stated error bands."""
    if _check_type(tc_type):
        if emf < _K_INV_MID_LO:
            return _horner(_K_INV_NEG, emf)
        if emf < _K_INV_HIGH_LO:
            return _horner(_K_INV_MID, emf)
        return _horner(_K_INV_HIGH, emf)
    if emf < 0:
        return _horner(_T_INV_NEG, emf)
    return _horner(_T_INV_POS, emf)


def _newton_cryo(is_k, emf, t):
    """Solve E(t) = emf on [-270, -199] °C: Newton with bisection fallback.

    E(t) rises monotonically there (Seebeck 0.7…15 µV/°C), so the bracket
    always holds the root (or its end when emf is a hair below E(-270))."""
    lo = _NEWTON_LO
    hi = _NEWTON_HI
    if not (t > lo and t < hi):
        t = (lo + hi) / 2
    n = 0
    while n < _NEWTON_MAX:
        e, d = _fwd(is_k, t)
        f = e - emf
        if f > 0:
            hi = t
        else:
            lo = t
        if d > 0:
            tn = t - f / d
        else:
            tn = lo - 1  # force bisection
        if not (tn > lo and tn < hi):
            tn = (lo + hi) / 2
        if abs(tn - t) < _NEWTON_TOL:
            return tn
        t = tn
        n += 1
    return t


def temperature_c(tc_type, emf):
    """Temperature in °C for a thermoelectric EMF ``emf`` in mV (0 °C
    reference junction), type ``"K"`` or ``"T"``.

    -200 °C and above: NIST inverse polynomial + one Newton step on the
    forward function. Below -200 °C: safeguarded Newton on the forward
    function. Raises ValueError outside E(-270 °C) … E(top of range).
    """
    is_k = _check_type(tc_type)
    lo, hi = _emf_range(is_k)
    if not (emf >= lo - _EMF_TOL and emf <= hi + _EMF_TOL):
        tlo, thi = _t_range(is_k)
        raise ValueError(
            "EMF %r mV out of range for type %s: allowed %g to %g mV (%g to %g °C)"
            % (emf, tc_type, lo, hi, tlo, thi)
        )
    t = nist_inverse(tc_type, emf)
    if emf < (_K_INV_LO if is_k else _T_INV_LO):
        t = _newton_cryo(is_k, emf, t)
    else:
        thi = _t_range(is_k)[1]
        if t < -200.0:
            t = -200.0
        elif t > thi:
            t = thi
        e, d = _fwd(is_k, t)
        t = t + (emf - e) / d
    tlo, thi = _t_range(is_k)
    if t < tlo:
        return tlo
    if t > thi:
        return thi
    return t
