"""Treatment session report for the clinic: one page, PNG and PDF.

Top: tissue temperature against setpoint, with the treatment phases shaded
and faults marked; middle: valve demand and valve-open time; bottom: the
summary table (device, firmware, date, duration, minimum temperature, time
at target, cycles, faults, outcome). matplotlib with the Agg backend (no
display needed; same output on a service laptop and in CI).
"""

from __future__ import annotations

from pathlib import Path

from host_tools import fwimport  # noqa: F401

PHASE_COLOURS = {
    "PRECOOL": "#cfe8ff",
    "FREEZE": "#9cc9f5",
    "THAW": "#ffe3c2",
    "DONE": "#e6e6e6",
    "ABORTED": "#f7c6c6",
    "FAULT": "#f19999",
}


def _spans(samples, names):
    """Contiguous (start_s, end_s, phase name) runs of the sample phases."""
    out = []
    start = None
    cur = None
    for r in samples:
        ph = names[r["phase"]] if r["phase"] < len(names) else str(r["phase"])
        t = r["t_ms"] / 1000
        if ph != cur:
            if cur is not None:
                out.append((start, t, cur))
            cur, start = ph, t
    if cur is not None:
        out.append((start, samples[-1]["t_ms"] / 1000, cur))
    return out


def summary_rows(header: dict, summary: dict | None, faults: list[dict], serial: str) -> list:
    from cryo.storage import records as R
    from host_tools.archive import rtc_date

    def c(v):
        return "—" if v is None or v == R.NO_READING16 else f"{v / R.TISSUE_SCALE:.1f} °C"

    rows = [
        ("Device", serial),
        ("Session", str(header["session"])),
        ("Start (UTC)", rtc_date(header["rtc_s"])),
        ("Firmware", str(header.get("fw_version", ""))),
        ("Target / thaw", f"{c(header.get('target_cc'))} / {c(header.get('thaw_cc'))}"),
        ("Planned cycles", str(header.get("cycles"))),
    ]
    if summary:
        rows += [
            ("Duration", f"{summary['duration_ms'] / 1000:.1f} s"),
            ("Minimum temperature", c(summary["min_cc"])),
            ("Time at/below target", f"{summary['below_target_ms'] / 1000:.1f} s"),
            ("Valve open", f"{summary['valve_open_ms'] / 1000:.1f} s"),
            ("Cycles done", str(summary["cycles_done"])),
            ("Outcome", R.OUTCOME_NAMES[summary["outcome"]]),
        ]
    else:
        rows.append(("Outcome", "no summary (session still open or cut)"))
    rows.append(("Faults", str(len(faults)) if faults else "none"))
    return rows


def write_report(dest, session: int, out_dir=None) -> tuple[Path, Path]:
    """Write ``report-session<N>.png`` and ``.pdf`` for one archived session."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cryo.protocol import states
    from cryo.storage import records as R
    from host_tools.archive import session_records

    dest = Path(dest)
    recs = session_records(dest, session)
    header = next((r for r in recs if r["type"] == "session"), None)
    summary = next((r for r in recs if r["type"] == "summary"), None)
    samples = [r for r in recs if r["type"] == "sample"]
    events = [r for r in recs if r["type"] == "event"]
    faults = [e for e in events if e["code"] == R.EV_FAULT]
    if header is None or not samples:
        from host_tools.errors import InvalidInput

        raise InvalidInput(f"session {session} has no header or no samples to plot")
    t = [r["t_ms"] / 1000 for r in samples]
    temp = [r["tissue_c"] if r["tissue_c"] is not None else float("nan") for r in samples]
    sp = [r["setpoint_c"] if r["setpoint_c"] is not None else float("nan") for r in samples]
    demand = [r["demand_pct"] for r in samples]
    valve = [r["valve"] * 100 for r in samples]

    fig = plt.figure(figsize=(8.27, 11.69))  # A4 portrait
    gs = fig.add_gridspec(3, 1, height_ratios=[3, 1.3, 2.2], hspace=0.35)
    ax = fig.add_subplot(gs[0])
    span_total = max(t[-1] - t[0], 1e-9)
    for a, b, name in _spans(samples, states.NAMES):
        if name in PHASE_COLOURS:
            ax.axvspan(a, b, color=PHASE_COLOURS[name], alpha=0.6, lw=0)
            if (b - a) / span_total < 0.06:
                continue  # too narrow for a readable label
            ax.text(
                (a + b) / 2,
                1.01,
                name,
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.plot(t, temp, color="#1f4e9c", lw=1.2, label="tissue")
    ax.plot(t, sp, color="#c0392b", lw=1, ls="--", label="setpoint")
    for i, f in enumerate(faults):
        ax.axvline(f["t_ms"] / 1000, color="red", lw=1.5, label="fault" if i == 0 else None)
        ax.text(
            f["t_ms"] / 1000,
            0.02,
            f" fault {f['arg']}",
            color="red",
            transform=ax.get_xaxis_transform(),
            fontsize=7,
            rotation=90,
            va="bottom",
        )
    ax.set_ylabel("temperature (°C)")
    ax.set_title(f"Cryotherapy session {session} — device {dest.name}", pad=18)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)

    ax2 = fig.add_subplot(gs[1], sharex=ax)
    ax2.fill_between(t, valve, step="post", color="#9cc9f5", alpha=0.6, label="valve open")
    ax2.plot(t, demand, color="#2c3e50", lw=1, drawstyle="steps-post", label="demand")
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("valve (%)")
    ax2.set_xlabel("time since start (s)")
    ax2.grid(alpha=0.3)
    ax2.legend(loc="upper right", fontsize=8)

    ax3 = fig.add_subplot(gs[2])
    ax3.axis("off")
    rows = summary_rows(header, summary, faults, dest.name)
    table = ax3.table(
        cellText=[list(r) for r in rows],
        colLabels=["Summary", ""],
        loc="upper center",
        cellLoc="left",
        colWidths=[0.4, 0.5],
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.3)

    out = Path(out_dir) if out_dir else dest
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"report-session{session:05d}.png"
    pdf = out / f"report-session{session:05d}.pdf"
    fig.savefig(png, dpi=110)
    fig.savefig(pdf)
    plt.close(fig)
    return png, pdf
