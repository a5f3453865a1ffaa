"""`cryo tune`'s telemetry series and plots: the step response with its
fitted model, and the before/after comparison of a gain change."""

from __future__ import annotations

import math

from host_tools.errors import InvalidInput
from host_tools.fopdt import model


def step_frames(tels, u):
    """The frames while the step was applied (demand == u), in order."""
    out = []
    for tel in tels:
        d = tel.get("demand")
        if isinstance(d, (int, float)) and abs(d - u) < 1e-3:
            out.append(tel)
        elif out:
            break
    if len(out) < 10:
        raise InvalidInput(
            "step test: only %d telemetry frames at demand %g (device refused or stopped the step?)"
            % (len(out), u)
        )
    return out


def series(tels, channel):
    """(t [s] since the first frame, y [°C]) from telemetry, wrap-safe."""
    t, y = [], []
    t0 = None
    acc = 0
    prev = None
    for tel in tels:
        tm = tel.get("t_ms")
        v = (tel.get("temps") or {}).get(channel)
        if not isinstance(tm, int):
            continue
        if prev is not None:
            acc += ((tm - prev + (1 << 29)) & ((1 << 30) - 1)) - (1 << 29)
        prev = tm
        if t0 is None:
            t0 = 0
        t.append(acc / 1000.0)
        y.append(float("nan") if v is None else float(v))
    if not t:
        raise InvalidInput(f"no telemetry with channel {channel!r} was recorded")
    return t, y


def plot_step(t, y, fit, u, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    ax.plot(t, y, ".", ms=3, label="measured")
    ax.plot(
        t,
        model(fit, t, u),
        "-",
        label="FOPDT K=%.3g τ=%.3g s θ=%.3g s" % (fit["gain"], fit["tau"], fit["dead_time"]),
    )
    ax.set_xlabel("s")
    ax.set_ylabel("°C")
    ax.set_title(f"step test, demand {u}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(tels):
    errs, dem = [], []
    for tel in tels:
        v = (tel.get("temps") or {}).get("tissue")
        sp = tel.get("setpoint_c")
        if isinstance(v, (int, float)) and isinstance(sp, (int, float)):
            errs.append(abs(v - sp))
        if isinstance(tel.get("demand"), (int, float)):
            dem.append(tel["demand"])
    mae = sum(errs) / len(errs) if errs else float("nan")
    if dem:
        m = sum(dem) / len(dem)
        sd = math.sqrt(sum((d - m) ** 2 for d in dem) / len(dem))
    else:
        sd = float("nan")
    return {"mae": mae, "demand_sd": sd, "frames": len(tels)}


def plot_comparison(before, after, g_before, g_after, path):
    """Before/after: tissue temperature vs setpoint and demand, one time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not before or not after:
        raise InvalidInput("nothing to compare: no telemetry recorded before/after the change")
    t_b, y_b = series(before, "tissue")
    t_a, y_a = series(before + after, "tissue")
    n_b = len(t_b)
    fig, ax = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    ax[0].plot(t_a[:n_b], y_a[:n_b], label="before %s" % _g(g_before))
    ax[0].plot(t_a[n_b - 1 :], y_a[n_b - 1 :], label="after %s" % _g(g_after))
    ax[0].plot(t_a, [tel.get("setpoint_c") for tel in before + after], "k--", label="setpoint")
    ax[0].axvline(t_a[n_b - 1], color="grey", lw=0.8)
    ax[0].set_ylabel("tissue °C")
    ax[0].legend(fontsize="small")
    ax[1].plot(t_a, [tel.get("demand") for tel in before + after], label="demand")
    ax[1].axvline(t_a[n_b - 1], color="grey", lw=0.8)
    ax[1].set_ylabel("demand")
    ax[1].set_xlabel("s (device time)")
    fig.suptitle("gain change: before / after")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _g(g):
    return "kp=%.3g ki=%.3g kd=%.3g" % (g.get("pid.kp"), g.get("pid.ki"), g.get("pid.kd"))
