"""`cryo monitor`: live view of the running controller over the command channel.

Asks the firmware for telemetry at ``--rate`` Hz (default 10, the tick rate)
and redraws a rich ``Live`` table 8 times a second: temperatures per channel
and cold junction, setpoint, valve demand and state, P/I/D terms, phase,
faults and alarms, plus link health (frames, rate in device time, gaps).
``--csv`` records every frame; ``--plot`` draws the recording afterwards
(matplotlib, Agg backend, PNG); ``--json`` prints one JSON line per frame
instead of the live view (scripts, tests); ``--duration`` stops after N s.
Telemetry is switched off again on exit, also after Ctrl-C.
"""

from __future__ import annotations

import csv
import json
import time

from host_tools.device.connect import resolve_port
from host_tools.errors import InvalidInput

CSV_COLUMNS = (
    "host_s",
    "t_ms",
    "seq",
    "phase",
    "mode",
    "setpoint_c",
    "tissue",
    "tissue2",
    "aux",
    "cj_c",
    "demand",
    "valve",
    "p",
    "i",
    "d",
    "faults",
    "alarms",
)
REFRESH_HZ = 8


def row_of(tel: dict, host_s: float) -> dict:
    temps = tel.get("temps") or {}
    return {
        "host_s": round(host_s, 3),
        "t_ms": tel.get("t_ms"),
        "seq": tel.get("tel"),
        "phase": tel.get("phase"),
        "mode": tel.get("mode"),
        "setpoint_c": tel.get("setpoint_c"),
        "tissue": temps.get("tissue"),
        "tissue2": temps.get("tissue2"),
        "aux": temps.get("aux"),
        "cj_c": tel.get("cj_c"),
        "demand": tel.get("demand"),
        "valve": int(bool(tel.get("valve"))),
        "p": tel.get("p"),
        "i": tel.get("i"),
        "d": tel.get("d"),
        "faults": " ".join(tel.get("faults") or []),
        "alarms": " ".join(tel.get("alarms") or []),
    }


class Recorder:
    """Collects telemetry rows; device-time rate and sequence gaps."""

    def __init__(self):
        self.rows: list[dict] = []
        self.gaps = 0
        self._last_seq = None
        self._t0 = time.monotonic()

    def add(self, tel: dict):
        seq = tel.get("tel")
        if self._last_seq is not None and isinstance(seq, int) and seq != self._last_seq + 1:
            self.gaps += 1
        self._last_seq = seq
        self.rows.append(row_of(tel, tel.get("_rx", time.monotonic()) - self._t0))

    def device_rate_hz(self) -> float | None:
        """Frames per second of device time (t_ms), wrap-safe (2**30)."""
        ts = [r["t_ms"] for r in self.rows if isinstance(r["t_ms"], int)]
        if len(ts) < 2:
            return None
        span = 0
        for a, b in zip(ts, ts[1:]):
            span += ((b - a + (1 << 29)) & ((1 << 30) - 1)) - (1 << 29)
        return (len(ts) - 1) * 1000.0 / span if span > 0 else None

    def host_rate_hz(self) -> float | None:
        if len(self.rows) < 2:
            return None
        span = self.rows[-1]["host_s"] - self.rows[0]["host_s"]
        return (len(self.rows) - 1) / span if span > 0 else None

    def write_csv(self, path):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            w.writeheader()
            w.writerows(self.rows)


def read_csv(path) -> list[dict]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from None
    except (UnicodeDecodeError, csv.Error):
        raise InvalidInput(f"{path}: not a CSV text file") from None


def _num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def plot_rows(rows: list[dict], path, title="cryo monitor"):
    """Temperatures + setpoint (top), demand/valve (middle), P/I/D (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise InvalidInput("nothing to plot: no telemetry was recorded")
    t = [_num(r["host_s"]) - _num(rows[0]["host_s"]) for r in rows]
    fig, ax = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    for key, label in (("tissue", "tissue"), ("tissue2", "tissue 2"), ("aux", "aux")):
        ys = [_num(r[key]) for r in rows]
        if any(y == y for y in ys):
            ax[0].plot(t, ys, label=label)
    ax[0].plot(t, [_num(r["setpoint_c"]) for r in rows], "k--", label="setpoint")
    ax[0].plot(t, [_num(r["cj_c"]) for r in rows], ":", label="cold junction")
    ax[0].set_ylabel("°C")
    ax[0].legend(loc="best", fontsize="small")
    ax[1].plot(t, [_num(r["demand"]) for r in rows], label="demand")
    ax[1].step(t, [_num(r["valve"]) for r in rows], where="post", label="valve open")
    ax[1].set_ylabel("0..1")
    ax[1].legend(loc="best", fontsize="small")
    for key in ("p", "i", "d"):
        ax[2].plot(t, [_num(r[key]) for r in rows], label=key.upper())
    ax[2].set_ylabel("PID terms")
    ax[2].set_xlabel("s")
    ax[2].legend(loc="best", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


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
        print(f"cryo monitor: plotted {len(rows)} rows from {args.from_csv} into {args.plot}")
        return 0
    if not (0.2 <= args.rate <= 50):
        raise InvalidInput(f"--rate {args.rate} out of range: 0.2..50 Hz")
    if args.duration is not None and args.duration <= 0:
        raise InvalidInput("--duration must be > 0 seconds")
    port = resolve_port(args.port)
    rec = Recorder()
    with Link(port, timeout=args.timeout) as link:
        link.await_controller()  # after a reset: waits for the boot, never breaks in
        link.set_telemetry(args.rate)
        end = None if args.duration is None else time.monotonic() + args.duration
        try:
            if args.json:
                _run_json(link, rec, end)
            else:
                _run_live(link, rec, end, port)
        except KeyboardInterrupt:
            pass
        finally:
            try:
                link.set_telemetry(0)
            except Exception:  # noqa: BLE001 - the link may be gone; the summary says so
                pass
        summary = {
            "frames": len(rec.rows),
            "device_rate_hz": rec.device_rate_hz(),
            "host_rate_hz": rec.host_rate_hz(),
            "gaps": rec.gaps,
            "noise_lines": link.noise_lines,
            "bad_frames": link.bad_frames,
        }
    if args.csv:
        rec.write_csv(args.csv)
        summary["csv"] = args.csv
    if args.plot:
        plot_rows(rec.rows, args.plot, title=f"cryo monitor — {port}")
        summary["plot"] = args.plot
    if args.json:
        print(json.dumps({"summary": summary}))
    else:
        dr = summary["device_rate_hz"]
        print(
            f"cryo monitor: {summary['frames']} frames, "
            f"{_fmt(dr, ' Hz', 2)} (device time), {rec.gaps} gaps"
            + (f", CSV {args.csv}" if args.csv else "")
            + (f", plot {args.plot}" if args.plot else "")
        )
    return 0


def _run_json(link, rec, end):
    while end is None or time.monotonic() < end:
        tel = link.next_telemetry(timeout=0.2)
        if tel is None:
            continue
        rec.add(tel)
        out = {k: v for k, v in tel.items() if k != "_rx"}
        print(json.dumps(out), flush=True)


def _run_live(link, rec, end, port):
    from rich.live import Live

    last = None
    with Live(render(None, rec, link, port), refresh_per_second=REFRESH_HZ) as live:
        while end is None or time.monotonic() < end:
            for tel in link.drain_telemetry():
                rec.add(tel)
                last = tel
            live.update(render(last, rec, link, port))
            time.sleep(1.0 / REFRESH_HZ)
    print()
