"""`cryo monitor`: live view of the running controller over the command channel.

Asks the firmware for telemetry at ``--rate`` Hz (default 10, the tick rate)
and redraws a rich ``Live`` table 8 times a second: temperatures per channel
and cold junction, setpoint, valve demand and state, P/I/D terms, phase,
faults and alarms, plus link health (frames, rate in device time, gaps).
``--csv`` records every frame; ``--plot`` draws the recording afterwards
(matplotlib, Agg backend, PNG); ``--json`` prints one JSON line per frame
instead of the live view (scripts, tests); ``--duration`` stops after N s.
Telemetry is switched off again on exit, also after Ctrl-C.

The monitor never reports a stream that stopped as a good one: no frame for
several periods counts as a gap (``host_tools.telemetry.Recorder``) and ends
the run, as a lost link does: the summary (and the CSV/plot recorded so
far), then exit code 3 and one line saying when the frames stopped. A board
that reset or hung does not resume its telemetry by itself.
"""

from __future__ import annotations

import time

from host_tools.commands.output import console, dumps, emit
from host_tools.device.connect import resolve_port
from host_tools.errors import DeviceError, InvalidInput
from host_tools.telemetry import CSV_COLUMNS, Recorder, plot_rows, read_csv

REFRESH_HZ = 8


def _fmt(x, unit="", nd=2):
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{nd}f}{unit}"
    return f"{x}{unit}"


def render(tel: dict | None, rec: Recorder, link, port: str):
    """The live view (a rich renderable) for the latest frame."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    if tel is None:
        return Text(f"cryo monitor — {port}: waiting for telemetry…")
    head = Text()
    head.append(f"cryo monitor — {port}   ", style="bold")
    head.append(f"phase {tel.get('phase')}  ", style="bold cyan")
    head.append(f"mode {tel.get('mode')}  t={_fmt(tel.get('t_ms'))} ms")
    temps = Table(title="temperatures", show_edge=False)
    temps.add_column("channel")
    temps.add_column("°C", justify="right")
    for name, val in (tel.get("temps") or {}).items():
        temps.add_row(name, _fmt(val))
    temps.add_row("cold junction", _fmt(tel.get("cj_c")))
    temps.add_row("setpoint", _fmt(tel.get("setpoint_c")))
    ctl = Table(title="regulator", show_edge=False)
    ctl.add_column("")
    ctl.add_column("", justify="right")
    ctl.add_row("demand", _fmt(tel.get("demand"), nd=3))
    valve = tel.get("valve")
    ctl.add_row("valve", Text("OPEN", style="bold blue") if valve else Text("closed"))
    for k in ("p", "i", "d"):
        ctl.add_row(k.upper(), _fmt(tel.get(k), nd=4))
    ctl.add_row("overruns", _fmt(tel.get("overruns")))
    faults = tel.get("faults") or []
    alarms = tel.get("alarms") or []
    fa = Text()
    fa.append("faults: ", style="bold")
    fa.append(", ".join(faults) if faults else "none", style="bold red" if faults else "green")
    fa.append("   alarms: ", style="bold")
    fa.append(", ".join(alarms) if alarms else "none", style="bold red" if alarms else "green")
    latched = tel.get("latched") or []
    if latched:
        fa.append("   latched: ", style="bold")
        fa.append(", ".join(latched), style="bold red")
    if tel.get("alarm_priority") not in (None, "none"):
        fa.append(f"   priority: {tel['alarm_priority']}", style="bold red")
    if tel.get("reason"):
        fa.append(f"   reason: {tel['reason']}")
    dr = rec.device_rate_hz()
    health = Text(
        f"frames {len(rec.rows)}  rate {_fmt(dr, ' Hz', 1)} (device time)  "
        f"gaps {rec.gaps}  noise lines {link.noise_lines}  bad frames {link.bad_frames}",
        style="dim",
    )
    if rec.stalled():
        health.append(f"   {rec.stopped()}", style="bold red")
    grid = Table.grid(padding=(0, 4))
    grid.add_row(temps, ctl)
    return Group(head, grid, fa, health)


def main(args) -> int:
    from host_tools.device.link import Link

    if args.from_csv:
        if not args.plot:
            raise InvalidInput("--from-csv needs --plot PNG (what to draw the recording into)")
        rows = read_csv(args.from_csv)
        missing = [c for c in CSV_COLUMNS if rows and c not in rows[0]]
        if missing:
            raise InvalidInput(
                f"{args.from_csv}: not a cryo monitor CSV (missing {', '.join(missing)})"
            )
        plot_rows(rows, args.plot, title=f"cryo monitor — {args.from_csv}")
        res = {"rows": len(rows), "csv": args.from_csv, "plot": args.plot}
        emit(
            args,
            res,
            f"cryo monitor: plotted {len(rows)} rows from {args.from_csv} into {args.plot}",
        )
        return 0
    if not (0.2 <= args.rate <= 50):
        raise InvalidInput(f"--rate {args.rate} out of range: 0.2..50 Hz")
    if args.duration is not None and args.duration <= 0:
        raise InvalidInput("--duration must be > 0 seconds")
    port = resolve_port(args.port)
    with Link(port, timeout=args.timeout) as link:
        link.await_controller()  # after a reset: waits for the boot, never breaks in
        link.set_telemetry(args.rate)
        rec = Recorder(args.rate)
        end = None if args.duration is None else time.monotonic() + args.duration
        try:
            if args.json:
                _run_json(link, rec, end)
            else:
                _run_live(link, rec, end, port)
        except KeyboardInterrupt:
            pass
        finally:
            if not link.closed_reason:
                try:
                    link.set_telemetry(0)
                except Exception:  # noqa: BLE001 - the link may be gone; the summary says so
                    pass
        stopped = link.closed_reason or rec.stopped()
        summary = {
            "frames": len(rec.rows),
            "device_rate_hz": rec.device_rate_hz(),
            "host_rate_hz": rec.host_rate_hz(),
            "gaps": rec.gaps,
            "stalls": rec.stalls,
            "stopped": stopped,
            "noise_lines": link.noise_lines,
            "bad_frames": link.bad_frames,
        }
    if args.csv:
        rec.write_csv(args.csv)
        summary["csv"] = args.csv
    if args.plot:
        plot_rows(rec.rows, args.plot, title=f"cryo monitor — {port}")
        summary["plot"] = args.plot
    dr = summary["device_rate_hz"]
    text = (
        f"cryo monitor: {summary['frames']} frames, "
        f"{_fmt(dr, ' Hz', 2)} (device time), {rec.gaps} gaps"
        + (f", CSV {args.csv}" if args.csv else "")
        + (f", plot {args.plot}" if args.plot else "")
    )
    emit(args, {"summary": summary}, text)
    if stopped:
        raise DeviceError(f"link to {port} lost: {stopped}")
    return 0


def _flowing(link, rec, end) -> bool:
    """Go on: before the end, with the link up and frames arriving."""
    if rec.stalled() or link.closed_reason:
        return False
    return end is None or time.monotonic() < end


def _run_json(link, rec, end):
    while _flowing(link, rec, end):
        tel = link.next_telemetry(timeout=0.2)
        if tel is None:
            continue
        rec.add(tel)
        print(dumps({k: v for k, v in tel.items() if k != "_rx"}), flush=True)


def _run_live(link, rec, end, port):
    from rich.live import Live

    last = None
    view = Live(render(None, rec, link, port), refresh_per_second=REFRESH_HZ, console=console())
    with view as live:
        while _flowing(link, rec, end):
            for tel in link.drain_telemetry():
                rec.add(tel)
                last = tel
            live.update(render(last, rec, link, port))
            time.sleep(1.0 / REFRESH_HZ)
    print()
