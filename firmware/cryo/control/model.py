"""FOPDT model and tuning rules shared by the relay autotune (on the
device) and the host's step-test fit (host_tools/fopdt.py).

* ``fopdt_from``: a first-order-plus-dead-time model consistent with a
  relay test's ultimate gain and period (Åström & Hägglund, *Advanced PID
  Control*, ISA 2006, §2.7).
* ``gains_from``: the gains each rule proposes (Ziegler–Nichols classic,
  "no overshoot", Tyreus–Luyben PI, SIMC PI with τc = θ: Skogestad 2003,
  "Simple analytic rules for model reduction and PID controller tuning",
  J. Process Control 13).
* ``clamp_gains``: a proposal inside the configuration's allowed ranges,
  with a warning naming every gain the rule wanted larger.
* ``hold_duty``: the demand that holds a setpoint on the model.
* ``stuck_grace``: the stuck-open watch's grace the model's dead time needs.

Control path (floats), no allocation beyond the small result dicts.
"""

import math

RULES = ("zn", "no_overshoot", "tyreus_luyben", "simc")
# Ranges of pid.kp / pid.ki / pid.kd in cryo.storage.schema (checked equal by
# tests/control/test_model.py; importing the schema here would cost the heap).
GAIN_LIMITS = {"kp": 10.0, "ki": 5.0, "kd": 50.0}


def _cv(vals):
    """Coefficient of variation, std / mean (1e9 if the mean is <= 0)."""
    n = len(vals)
    m = sum(vals) / n
    if m <= 0.0:
        return 1e9
    v = 0.0
    for x in vals:
        v += (x - m) * (x - m)
    return math.sqrt(v / n) / m


def _median(buf, n):
    """Median of the last ``n`` values written to a ring buffer (n <= len)."""
    vals = sorted(buf[:n])
    m = len(vals)
    if m & 1:
        return vals[m // 2]
    return 0.5 * (vals[m // 2 - 1] + vals[m // 2])


def gains_from(ku, tu, k, tau, theta):
    """Gains per rule as ``{rule: {"kp", "ki", "kd"}}`` (reverse action).

    ``ku`` ultimate gain [demand/°C], ``tu`` ultimate period [s]; FOPDT
    ``k`` [°C/demand], ``tau`` and ``theta`` [s].
    """
    out = {}
    kp = 0.6 * ku
    out["zn"] = {"kp": kp, "ki": kp / (0.5 * tu), "kd": kp * tu / 8.0}
    kp = 0.2 * ku
    out["no_overshoot"] = {"kp": kp, "ki": kp / (0.5 * tu), "kd": kp * tu / 3.0}
    kp = ku / 3.2
    out["tyreus_luyben"] = {"kp": kp, "ki": kp / (2.2 * tu), "kd": 0.0}
    tc = theta  # SIMC tight-but-robust choice τc = θ
    kp = tau / (k * (tc + theta))
    ti = min(tau, 4.0 * (tc + theta))
    out["simc"] = {"kp": kp, "ki": kp / ti, "kd": 0.0}
    return out


def fopdt_from(ku, tu, theta, k_static=None):
    """FOPDT (gain, tau, dead time) consistent with the relay's Ku and Tu.

    Preferred (``k_static`` known, > 1/Ku): the static gain K from the two
    operating points (rest with the valve closed, and the relay's mean
    demand at the setpoint); then the gain condition gives
    ``τ = √((K·Ku)² − 1)/ωu`` and the phase condition ``θ = (π − atan(ωu·τ))/ωu``.
    Fallback: the apparent dead time ``theta`` (switch-to-peak) with the
    phase condition for τ and the gain condition for K. Higher-order lags
    (probe, line chill-down) make the switch-to-peak θ too short, which is
    why the static-gain route comes first.
    """
    wu = 2.0 * math.pi / tu
    if k_static is not None and k_static * ku > 1.0:
        tau = math.sqrt((k_static * ku) ** 2 - 1.0) / wu
        th = (math.pi - math.atan(wu * tau)) / wu
        return {"gain": k_static, "tau": tau, "dead_time": th, "method": "static gain"}
    x = math.pi - wu * theta
    if x <= 0.05:  # dead-time dominated: τ → 0
        tau = 0.05 / wu
    elif x >= 0.5 * math.pi - 0.01:  # more lag than an FOPDT with this θ explains
        tau = 20.0 * tu
    else:
        tau = math.tan(x) / wu
    k = math.sqrt(1.0 + (wu * tau) ** 2) / ku
    return {"gain": k, "tau": tau, "dead_time": theta, "method": "switch-to-peak"}


def clamp_gains(g, limits=None):
    """``(gains, warning_or_None)``: ``g`` ({"kp", "ki", "kd"}) limited to
    ``[0, limits[name]]``; the warning names what the rule wanted."""
    lim = limits or GAIN_LIMITS
    out = {}
    over = []
    for name in ("kp", "ki", "kd"):
        v = g[name]
        hi = lim[name]
        if not (v == v) or v < 0.0:  # NaN or negative: the model is unusable
            over.append("%s %r is not a usable gain (set to 0)" % (name, v))
            v = 0.0
        elif v > hi:
            over.append("%s %.4g above the allowed %.4g (clamped)" % (name, v, hi))
            v = hi
        out[name] = v
    return out, ("; ".join(over) if over else None)


def hold_duty(gain, rest_c, setpoint_c):
    """Demand that holds ``setpoint_c`` on a model of static ``gain``
    (°C per unit demand) from ``rest_c`` (valve closed), within 0..1."""
    if not (gain > 0.0):
        return 0.0
    u = (rest_c - setpoint_c) / gain
    return 0.0 if u < 0.0 else (1.0 if u > 1.0 else u)


# Range of limits.stuck_grace_s in cryo.storage.schema (checked equal by
# tests/host/test_tune_model.py).
GRACE_RANGE = (0.2, 3.0)
_GRACE_MARGIN_S = 0.25  # the probe's sample period and the tissue low-pass


def stuck_grace(dead_time):
    """``(grace_s, covered)``: the stuck-open watch's grace for a line of
    model dead time ``dead_time`` [s]. After the solenoid closes, cryogen
    already in the line keeps cooling the tissue for about the dead time;
    a shorter grace would read that as an uncommanded flow. ``covered`` is
    False when the grace this line needs exceeds the allowed range (the
    line or the probe must be shortened: the watch cannot wait longer)."""
    g = math.ceil((dead_time + _GRACE_MARGIN_S) * 10.0) / 10.0
    lo, hi = GRACE_RANGE
    if g < lo:
        g = lo
    return (hi, False) if g > hi else (g, True)
