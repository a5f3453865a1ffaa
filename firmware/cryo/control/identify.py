"""What a converged relay test says about the plant: Ku, Tu, dead time,
a FOPDT model and the gains each rule proposes.

Åström & Hägglund's relay feedback test (*Advanced PID Control*, ISA 2006,
§2.7), from the last window of cycles the experiment kept
(cryo.control.relay_cycles):

- ``Ku = 4d / (π·√(a² − ε²))`` with the mean half peak-to-peak amplitude
  ``a``, the median relay half-swing ``d`` and the hysteresis ``ε``
  (hysteresis-corrected; Klipper PR #7310).
- ``Tu`` = median of the peak-to-peak periods (maxima and minima); the
  apparent dead time θ the median delay from a relay switch to the
  extremum it caused.
- **FOPDT and rules** (cryo.control.model): the static gain K is the
  secant from the rest temperature to the setpoint held by the converged
  bias; Ku/Tu then give τ and θ; rules ZN, "no overshoot", Tyreus–Luyben
  and SIMC (τc = θ, the default: Skogestad 2003), each clamped into the
  configuration's ranges with a warning.

Control path (floats), run once when the experiment converges.
"""

import math

from cryo.control.model import RULES, _cv, _median, clamp_gains, fopdt_from, gains_from


def identify(window, hysteresis_c, bias, start_c, setpoint_c, rule):
    """The result dict of a converged test, or a str: why it cannot be used.

    ``window``: ``RelayCycles.window()``; ``bias``: the converged bias (the
    hold duty); ``start_c``: the rest temperature; ``rule``: the rule whose
    gains are the result's kp, ki, kd."""
    amps, ds, pers, dels = window
    a = sum(amps) / len(amps)  # the mean: amplitudes are quantised (relay_cycles)
    d = _median(ds, len(ds))
    eps = hysteresis_c
    if a <= eps * 1.05:
        return "amplitude %.2f °C not above the hysteresis %.2f °C" % (a, eps)
    ku = 4.0 * d / (math.pi * math.sqrt(a * a - eps * eps))
    tu = _median(pers, len(pers))
    theta = _median(dels, len(dels))
    if tu <= 0.0:
        return "non-positive oscillation period"
    if theta <= 0.0:
        theta = 0.01 * tu
    k_static = None
    if bias > 0.0 and start_c is not None:
        k_static = (start_c - setpoint_c) / bias
    fop = fopdt_from(ku, tu, theta, k_static)
    gains = gains_from(ku, tu, fop["gain"], fop["tau"], fop["dead_time"])
    warnings = []
    for name in RULES:  # every proposal inside the configuration's ranges
        gains[name], w = clamp_gains(gains[name])
        if w:
            warnings.append("%s: %s" % (name, w))
    chosen = gains[rule]
    return {
        "ok": True,
        "setpoint_c": setpoint_c,
        "Ku": ku,
        "Tu": tu,
        "amplitude": a,
        "d": d,
        "hysteresis": eps,
        # Fit quality: scatter of the window's amplitudes and periods (std/mean)
        "scatter": max(_cv(amps), _cv(pers)),
        "warnings": warnings,
        "fopdt": fop,
        "apparent_dead_time": theta,
        "start_c": start_c,
        "gains": gains,
        "rule": rule,
        "kp": chosen["kp"],
        "ki": chosen["ki"],
        "kd": chosen["kd"],
    }
