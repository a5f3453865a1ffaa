"""The first-order-plus-dead-time model of a step response, and tuning rules from it.

``fit_fopdt`` fits ``y(t) = y0 − K·u·(1 − exp(−(t−θ)/τ))`` to a recorded
step (numpy least squares over a θ/τ grid, linear in y0 and K);
``fopdt_rules`` derives the gains every rule proposes, with the firmware's
own formulas (``cryo.control.model.gains_from``), each clamped into the
configuration's ranges (``clamp_gains``); ``predict`` runs the firmware's
PID against the model through a time-proportioned valve and returns the
undershoot and hold ripple it expects.
"""

from __future__ import annotations

import math

from host_tools import fwimport  # noqa: F401  (firmware/ importable, micropython shim)
from host_tools.errors import InvalidInput

# isort: split
from cryo.control.model import clamp_gains, gains_from


def clamped_rules(gains):
    """``(gains, warnings)``: every rule's gains inside the allowed ranges."""
    out, warns = {}, []
    for name, g in gains.items():
        out[name], w = clamp_gains(g)
        if w:
            warns.append(f"{name}: {w}")
    return out, warns


def predict(model, gains, setpoint_c, hold_duty=0.0, i_zone_c=0.0, window_s=0.2, run_s=600.0):
    """Closed loop on the FOPDT ``model`` (gain, tau, dead_time, y0 = rest):
    the firmware's PID (``cryo.pid.PID``, 0.2 s period) through a
    time-proportioned valve (one pulse per ``window_s``), from rest.

    Returns ``{"undershoot_c", "ripple_rms_c", "t_reach_s"}``: the largest
    excursion below the setpoint and the RMS error from 20 s after reaching.
    A model, not the tissue: the skin answers a pulse faster than the
    fitted lag, so the ripple is a lower bound.
    """
    from cryo.pid import PID

    k, tau, theta, y = model["gain"], model["tau"], model["dead_time"], model["y0"]
    rest = y
    pid = PID(gains["kp"], gains["ki"], gains["kd"], d_filter_s=0.5, i_zone_c=i_zone_c)
    pid.set_preload(min(max(hold_duty, 0.0), 1.0))
    pid.reset()
    dt = 0.01
    n_delay = max(1, int(theta / dt + 0.5))
    line = [0.0] * n_delay
    per_ctrl, per_win = 20, max(1, int(window_s / dt + 0.5))
    demand, on_steps, under, reach, sq, ns = 0.0, 0, 0.0, None, 0.0, 0
    for i in range(int(run_s / dt)):
        if i % per_ctrl == 0:
            demand = pid.update(setpoint_c, y, per_ctrl * dt)
        if i % per_win == 0:
            on_steps = int(demand * per_win + 0.5)
        u = 1.0 if (i % per_win) < on_steps else 0.0
        seen = line[i % n_delay]
        line[i % n_delay] = u
        y += (rest - k * seen - y) * dt / tau
        err = y - setpoint_c
        under = max(under, -err)
        if reach is None and err <= 0.5:
            reach = i * dt
        if reach is not None and i * dt >= reach + 20.0:
            sq += err * err
            ns += 1
    return {
        "undershoot_c": under,
        "ripple_rms_c": math.sqrt(sq / ns) if ns else None,
        "t_reach_s": reach,
    }


def fopdt_rules(k, tau, theta):
    """Rules from an FOPDT model: Ku/Tu of the model's ultimate point.

    Phase crossover ωu solves ωu·θ + atan(ωu·τ) = π (bisection); then
    Ku = √(1+(ωu·τ)²)/K, Tu = 2π/ωu; SIMC uses K, τ, θ directly.
    """
    lo, hi = 1e-6, math.pi / max(theta, 1e-6)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid * theta + math.atan(mid * tau) < math.pi:
            lo = mid
        else:
            hi = mid
    wu = 0.5 * (lo + hi)
    ku = math.sqrt(1.0 + (wu * tau) ** 2) / k
    tu = 2.0 * math.pi / wu
    return ku, tu, gains_from(ku, tu, k, tau, theta)


def fit_fopdt(t, y, u, t_step=0.0):
    """Least-squares FOPDT fit of a (reverse-acting) step response.

    ``t`` [s], ``y`` [°C], step of size ``u`` (demand) at ``t_step``.
    Returns dict(gain K [°C per unit demand, positive = cooling], tau,
    dead_time, y0, rmse). Grid over θ and τ; y0 and K by linear LS.
    """
    import numpy as np

    t = np.asarray(t, float) - t_step
    y = np.asarray(y, float)
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    if len(t) < 10 or t.max() <= 0:
        raise InvalidInput("step test recorded too few samples to fit a model")
    if u <= 0:
        raise InvalidInput("step demand must be > 0")
    span = float(t.max())
    best = None
    thetas = np.unique(
        np.concatenate([np.linspace(0.0, 2.0, 41), np.linspace(0.0, 0.5 * span, 60)])
    )
    taus = np.geomspace(max(span / 500, 0.05), 5 * span, 80)
    for th in thetas:
        s = np.clip(t - th, 0.0, None)
        for tau in taus:
            x = -(1.0 - np.exp(-s / tau)) * u
            a = np.column_stack([np.ones_like(x), x])
            coef, *_ = np.linalg.lstsq(a, y, rcond=None)
            r = y - a @ coef
            sse = float(r @ r)
            if best is None or sse < best[0]:
                best = (sse, th, tau, coef)
    sse, th, tau, (y0, k) = best
    if k <= 0:
        raise InvalidInput(
            "the step did not cool the channel (fitted gain %.3g ≤ 0): check the channel "
            "and the demand" % k
        )
    sst = float(((y - y.mean()) ** 2).sum())
    return {
        "gain": float(k),
        "tau": float(tau),
        "dead_time": float(th),
        "y0": float(y0),
        "rmse": math.sqrt(sse / len(t)),
        # fit quality: the share of the response the model explains
        "r2": 1.0 - sse / sst if sst > 0 else 0.0,
    }


def model(fit, t, u):
    """The fitted model's response at times ``t``."""
    import numpy as np

    s = np.clip(np.asarray(t, float) - fit["dead_time"], 0.0, None)
    return fit["y0"] - fit["gain"] * u * (1.0 - np.exp(-s / fit["tau"]))
