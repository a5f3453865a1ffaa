"""`cryo tune`: tune the regulator on the running device.

* ``cryo tune auto``: runs the on-device relay autotune
  (``cryo.control.autotune.RelayAutotune``, stepped from the control tick so every interlock stays
  in force), waits for it, shows Ku, Tu, the FOPDT estimate and the gains
  each rule proposes; ``--apply RULE`` sets them live.
* ``cryo tune step``: an open-loop demand step on the device while the host
  records telemetry, then fits a first-order-plus-dead-time model
  ``y(t) = y0 − K·u·(1 − exp(−(t−θ)/τ))`` on the host (numpy least squares
  over a θ/τ grid, linear in y0 and K) and derives the same rules (the rule
  formulas are ``cryo.control.model.gains_from``, imported from the
  firmware package).
* ``cryo tune apply --kp --ki --kd``: sets the gains live. The controller
  applies them with ``PID.set_gains`` (bumpless: the P/D change moves into
  the integral) and audits each change with the role. ``--save`` persists
  the configuration; ``--observe S --plot PNG`` records S seconds before and
  after the change and writes a before/after comparison plot.
"""

from __future__ import annotations

import math
import time

from host_tools import (
    fwimport,  # noqa: F401  (firmware/ importable, micropython shim)
    tuneplot,
)
from host_tools.commands.output import Progress, emit
from host_tools.device.connect import resolve_port
from host_tools.errors import DeviceError, InvalidInput
from host_tools.fopdt import clamped_rules, fit_fopdt, fopdt_rules, predict
from host_tools.telemetry import Recorder

# isort: split
from cryo.control.autotune import RULES as RULE_NAMES
from cryo.control.model import hold_duty, stuck_grace

# Integral zone proposed with the holding-duty preload (docs/control.md:
# measured on the plant variants, 1 degC keeps the approach free of windup
# -- a wider zone integrates the last, slow degrees of a long line's
# approach and the hold arrives too cold -- while it stays above the
# noise band of a sigma 0.5 degC probe, so noise does not switch the
# integrator on and off).
ZONE_C = 1.0


def _gains_table(gains: dict, chosen=None, pred=None) -> str:
    head = f"  {'rule':<15} {'kp':>10} {'ki':>10} {'kd':>10}"
    if pred:
        head += f" {'undershoot':>11} {'ripple RMS':>11}  (predicted on the model)"
    lines = [head]
    for name, g in gains.items():
        mark = " *" if name == chosen else ""
        row = f"  {name:<15} {g['kp']:>10.4g} {g['ki']:>10.4g} {g['kd']:>10.4g}"
        if pred:
            p = pred[name]
            rip = p["ripple_rms_c"]
            row += f" {p['undershoot_c']:>8.2f} °C " + (
                f"{rip:>8.2f} °C" if rip is not None else f"{'not reached':>11}"
            )
        lines.append(row + mark)
    return "\n".join(lines)


def _proposal(fop, y0, setpoint_c, gains, hold):
    """Predicted undershoot/ripple per rule with the approach settings the
    tool proposes (holding-duty preload, integral zone), as a dict."""
    m = {"gain": fop["gain"], "tau": fop["tau"], "dead_time": fop["dead_time"], "y0": y0}
    return {
        name: predict(m, g, setpoint_c, hold_duty=hold, i_zone_c=ZONE_C)
        for name, g in gains.items()
    }


def apply_approach(link, hold, role="engineer"):
    """Set the integral preload (holding duty) and zone the model gave."""
    return {
        "pid.hold_duty": link.set("pid.hold_duty", float(hold), role=role),
        "pid.i_zone_c": link.set("pid.i_zone_c", ZONE_C, role=role),
    }


def grace_check(link, dead_time):
    """The stuck-open watch's grace against the dead time the model found:
    ``(figures, text lines)``. The grace is a service setting, so the
    engineer's tool only says what it should be."""
    need, covered = stuck_grace(dead_time)
    have = float(link.get("limits.stuck_grace_s"))
    fig = {"dead_time_s": dead_time, "needed_s": need, "device_s": have, "covered": covered}
    text = [
        f"stuck-open watch: grace {have:g} s on the device; a {dead_time:.2g} s dead time "
        f"needs {need:g} s"
    ]
    if not covered:
        text.append(
            f"warning: this line's dead time is longer than the stuck-open watch can wait "
            f"({need:g} s at most): a closing solenoid would look stuck open; shorten the "
            "delivery line or use a faster probe"
        )
    elif have < need:
        text.append(
            f"warning: ask service to set limits.stuck_grace_s to {need:g} s (service role): "
            "with the present grace the cryogen left in the line reads as a stuck solenoid"
        )
    return fig, text


def _pick(gains: dict, rule: str, chosen: str | None):
    name = chosen if rule == "chosen" else rule
    if name not in gains:
        raise InvalidInput(f"--apply {rule}: unknown rule; allowed: {', '.join(gains)}, chosen")
    return name, gains[name]


def run_state(st: dict) -> str:
    """'running' / 'done' / 'aborted' / 'idle' from a status reply.

    The documented ``{"state": ...}`` (cryo.controller.Controller sends
    it); the older
    ``{"running": bool, "result": {...}}`` form is still understood, for
    devices running earlier firmware.
    """
    if "state" in st:
        return st["state"]
    if st.get("running"):
        return "running"
    res = st.get("result")
    if isinstance(res, dict):
        return "done" if res.get("ok") else "aborted"
    if st.get("trace") or st.get("demand"):
        return "done"
    return "idle"


# ---------------------------------------------------------------- apply


def apply_gains(link, kp, ki, kd, role="engineer", save=False):
    """Set pid.kp/ki/kd live (each change bumpless and audited on the device);
    ``save`` stores them, which the device refuses during a treatment."""
    from host_tools.device.link import LinkError, msg

    for name, v in (("pid.kp", kp), ("pid.ki", ki), ("pid.kd", kd)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise InvalidInput(f"{name} must be a finite number >= 0, got {v!r}")
    applied = {}
    for name, v in (("pid.kp", kp), ("pid.ki", ki), ("pid.kd", kd)):
        applied[name] = link.set(name, float(v), role=role)
    if save:
        try:
            link.save(role=role)
        except LinkError as e:
            if e.code != msg.E_STATE:
                raise
            raise DeviceError(f"gains applied live {applied}, not saved: {e}") from None
    return applied


def _current_gains(link):
    return {n: link.get(n) for n in ("pid.kp", "pid.ki", "pid.kd")}


# ---------------------------------------------------------------- commands


def _credentials(args):
    """The PIN for the role (``--pin`` or ``$CRYO_PIN``, else asked once)
    that a provisioned device's challenge needs (host_tools.auth)."""
    from host_tools.auth import Credentials

    return Credentials({args.role: args.pin} if args.pin else None)


def _check_rule(rule):
    if rule is not None and rule not in RULE_NAMES + ("chosen",):
        raise InvalidInput(
            f"--apply {rule}: unknown rule; allowed: {', '.join(RULE_NAMES)}, chosen"
        )


def run_auto(args) -> int:
    from host_tools.device.link import Link

    _check_rule(args.apply)
    params = {}
    if args.setpoint is not None:
        params["setpoint_c"] = args.setpoint
    if args.hysteresis is not None:
        params["hysteresis_c"] = args.hysteresis
    if args.bias is not None:
        params["amplitude"] = args.bias
    port = resolve_port(args.port)
    with Link(port, timeout=args.timeout, credentials=_credentials(args)) as link:
        link.hello()
        st = link.autotune("start", role=args.role, **params)
        if not args.json:
            print(f"autotune started on {port}: {run_state(st)}", flush=True)
        end = time.monotonic() + args.max_time
        # minutes on a real plant: the relay cycles counted as they come
        try:
            with Progress(args, "autotune") as bar:
                while run_state(st) == "running":
                    if time.monotonic() > end:
                        link.autotune("stop", role=args.role)
                        raise DeviceError(
                            f"autotune did not finish within {args.max_time:g} s; stopped"
                        )
                    time.sleep(0.2)
                    st = link.autotune("status")
                    bar.update(completed=st.get("cycles") or 0, note="relay cycles")
        except KeyboardInterrupt:
            link.autotune("stop", role=args.role)
            raise
        res = st.get("result") or {}
        if run_state(st) != "done" or not res.get("ok"):
            raise DeviceError(f"autotune {run_state(st)}: {res.get('reason') or st.get('reason')}")
        out = {"autotune": res}
        text = [
            f"autotune done after {res.get('cycles')} cycles: Ku={res['Ku']:.4g}  Tu={res['Tu']:.4g} s  "
            f"amplitude {res.get('amplitude', float('nan')):.3g} °C",
        ]
        fop = res.get("fopdt") or {}
        hold = res.get("hold_duty", res.get("bias", 0.0))
        pred = None
        if fop:
            text.append(
                f"model FOPDT ({fop.get('method')}): K={fop['gain']:.4g} °C/demand  "
                f"τ={fop['tau']:.4g} s  θ={fop['dead_time']:.4g} s  "
                f"(fit scatter {res.get('scatter', float('nan')):.2f}, probe noise σ "
                f"{res.get('noise_c') or 0.0:.2f} °C, hysteresis {res.get('hysteresis', 0):.2f} °C)"
            )
            pred = _proposal(fop, res.get("start_c", 30.0), res["setpoint_c"], res["gains"], hold)
            out["predicted"] = pred
            out["stuck_grace"], lines = grace_check(link, fop["dead_time"])
            text += lines
        text.append(f"rule in use: {res.get('rule')} (*)")
        text.append(_gains_table(res["gains"], res.get("rule"), pred))
        for w in res.get("warnings") or ():
            text.append(f"warning: {w}")
        text.append(f"approach: integral preload (holding duty) {hold:.3f}, zone {ZONE_C:g} °C")
        if args.apply:
            name, g = _pick(res["gains"], args.apply, res.get("rule"))
            out["applied"] = apply_gains(link, g["kp"], g["ki"], g["kd"], args.role, args.save)
            out["approach_applied"] = apply_approach(link, hold, args.role)
            if args.save:
                link.save(role=args.role)
            out["rule"] = name
            text.append(f"applied {name} gains live" + (" and saved" if args.save else ""))
        emit(args, out, "\n".join(text))
    return 0


def run_step(args) -> int:
    from host_tools.device.link import Link

    if not (0 < args.demand <= 1):
        raise InvalidInput(f"--demand {args.demand} out of range: 0 < demand <= 1")
    if args.duration <= 0:
        raise InvalidInput("--duration must be > 0 s")
    _check_rule(args.apply)
    port = resolve_port(args.port)
    rec = Recorder()
    tels = []
    with Link(port, timeout=args.timeout, credentials=_credentials(args)) as link:
        link.hello()
        link.set_telemetry(args.rate)
        link.drain_telemetry()
        try:
            _step_test(link, args, tels, rec)
        except KeyboardInterrupt:
            link.step_test("stop", role=args.role)
            raise
        finally:
            link.set_telemetry(0)
        gains_now = _current_gains(link) if args.apply else None
        t, y = tuneplot.series(tuneplot.step_frames(tels, args.demand), args.channel)
        fit = fit_fopdt(t, y, args.demand, 0.0)
        # Dead time below one telemetry sample is not resolved: floor it there
        # (a zero θ would make SIMC's kp = τ/(K·2θ) unbounded).
        theta = max(fit["dead_time"], 1.0 / args.rate)
        ku, tu, raw = fopdt_rules(fit["gain"], fit["tau"], theta)
        gains, warns = clamped_rules(raw)
        sp = args.setpoint if args.setpoint is not None else float(link.get("target_c"))
        hold = hold_duty(fit["gain"], fit["y0"], sp)
        model_fit = dict(fit, dead_time=theta)
        pred = _proposal(model_fit, fit["y0"], sp, gains, hold)
        out = {"fopdt": fit, "Ku": ku, "Tu": tu, "gains": gains, "samples": len(t)}
        out.update({"warnings": warns, "predicted": pred, "hold_duty": hold, "setpoint_c": sp})
        text = [
            f"step test: demand {args.demand} for {args.duration:g} s, {len(t)} samples",
            f"model FOPDT fit: K={fit['gain']:.4g} °C/demand  τ={fit['tau']:.4g} s  "
            f"θ={fit['dead_time']:.4g} s  (fit quality R² {fit['r2']:.3f}, rmse {fit['rmse']:.3g} °C)",
            f"model ultimate point: Ku={ku:.4g}  Tu={tu:.4g} s; predictions at {sp:g} °C",
            "rule in use: simc (*)",
            _gains_table(gains, "simc", pred),
        ]
        text += [f"warning: {w}" for w in warns]
        if fit["r2"] < 0.9:
            text.append(
                f"warning: the model explains only {fit['r2']:.0%} of the response: start the "
                "step from rest (tissue settled, valve closed) or lengthen it"
            )
        text.append(f"approach: integral preload (holding duty) {hold:.3f}, zone {ZONE_C:g} °C")
        out["stuck_grace"], lines = grace_check(link, theta)
        text += lines
        if args.apply:
            name, g = _pick(gains, args.apply, "simc")
            out["before"] = gains_now
            out["applied"] = apply_gains(link, g["kp"], g["ki"], g["kd"], args.role, args.save)
            out["approach_applied"] = apply_approach(link, hold, args.role)
            if args.save:
                link.save(role=args.role)
            text.append(f"applied {name} gains live" + (" and saved" if args.save else ""))
    if args.csv:
        rec.write_csv(args.csv)
    if args.plot:
        tuneplot.plot_step(t, y, fit, args.demand, args.plot)
        out["plot"] = args.plot
    emit(args, out, "\n".join(text))
    return 0


def _step_test(link, args, tels, rec):
    """Start the step test and record its telemetry until the device ends it."""
    link.step_test("start", role=args.role, demand=args.demand, duration_s=args.duration)
    t0 = time.monotonic()
    next_check = t0 + 0.5
    give_up = t0 + 2 * args.duration + 30
    with Progress(args, "step test", total=args.duration, unit="s") as bar:
        while True:
            if time.monotonic() > give_up:
                link.step_test("stop", role=args.role)
                raise DeviceError(
                    f"step test still running after {2 * args.duration + 30:g} s; stopped"
                )
            tel = link.next_telemetry(timeout=0.5)
            if tel is not None:
                tels.append(tel)
                rec.add(tel)
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.5
                bar.update(completed=round(min(args.duration, time.monotonic() - t0)))
                if run_state(link.step_test("status")) != "running":
                    tels.extend(link.drain_telemetry())
                    return


def run_apply(args) -> int:
    from host_tools.device.link import Link

    if args.plot and args.observe <= 0:
        raise InvalidInput("--plot needs --observe SECONDS (the comparison window)")
    port = resolve_port(args.port)
    with Link(port, timeout=args.timeout, credentials=_credentials(args)) as link:
        link.hello()
        before_gains = _current_gains(link)
        before, after = [], []
        observing = args.observe > 0
        with Progress(args, "observe", total=2 * args.observe, unit="s", show=observing) as bar:
            if observing:
                link.set_telemetry(10)
                link.drain_telemetry()
                before = _record(link, args.observe, bar)
            applied = apply_gains(link, args.kp, args.ki, args.kd, args.role, args.save)
            if observing:
                after = _record(link, args.observe, bar)
                link.set_telemetry(0)
    out = {"before": before_gains, "applied": applied, "saved": bool(args.save)}
    if before and after:
        out["summary"] = {"before": tuneplot.summary(before), "after": tuneplot.summary(after)}
    if args.plot:
        tuneplot.plot_comparison(before, after, before_gains, applied, args.plot)
        out["plot"] = args.plot
    text = f"gains applied live: {applied}" + (" (saved)" if args.save else "")
    if "summary" in out:
        b, a = out["summary"]["before"], out["summary"]["after"]
        text += (
            f"\n  before: mean |error| {b['mae']:.3g} °C, demand σ {b['demand_sd']:.3g}"
            f"\n  after:  mean |error| {a['mae']:.3g} °C, demand σ {a['demand_sd']:.3g}"
        )
    emit(args, out, text)
    return 0


def _record(link, seconds, bar):
    t0 = time.monotonic()
    start = bar.completed
    out = []
    while time.monotonic() < t0 + seconds:
        tel = link.next_telemetry(timeout=0.2)
        if tel is not None:
            out.append(tel)
        bar.update(completed=start + round(min(seconds, time.monotonic() - t0)))
    return out
