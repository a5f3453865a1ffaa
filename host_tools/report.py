"""Treatment session report for the clinic: one page, PNG and PDF.

Top: tissue temperature against the setpoint (drawn where it applies:
pre-cool and freeze) and the thaw threshold, phases shaded, faults marked by
name; then valve demand and valve-open time; the per-cycle table (freeze,
time at or below target, minimum, target reached, thaw); the summary
(patient/lesion reference, device serial and firmware hash, device-clock
start, outcome in the device's words, "target not reached" when so, faults
with their meaning, operator and reviewer sign-off). Durations are m:ss.
The same data goes to ``report-sessionN.json`` (``host_tools.archive.clinical``).
matplotlib with the Agg backend; PNG at 300 dpi.
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


def summary_rows(data: dict) -> list:
    """(label, value) rows of the summary table, from :func:`clinical.report_data`."""

    def c(v):
        return "—" if v is None else f"{v:.1f} °C"

    cl = data["clinical"]
    rows = [
        ("Patient / lesion ref.", f"{cl['patient_ref'] or '—'} / {cl['lesion_ref'] or '—'}"),
        ("Device serial", data["device_serial"]),
        ("Firmware", _firmware(data)),
        ("Session / start", f"{data['session']} / {data['start']}"),
        ("Target / thaw threshold", f"{c(data['target_c'])} / {c(data['thaw_threshold_c'])}"),
        ("Planned", f"{data['planned_cycles']} cycles of {data['planned_freeze']} freeze"),
        ("Duration", data["duration"]),
        ("Outcome (device)", data["outcome"]),
        ("Target", data["target_note"] or f"reached (minimum {c(data['min_temp_c'])})"),
        ("Cycles done", str(data["cycles_done"])),
    ]
    if data["faults"]:
        for f in data["faults"]:
            rows.append((f"Fault at {f['time']}", f"{f['name']}: {f['meaning']}"))
    else:
        rows.append(("Faults", "none"))
    rows.append(("Operator", cl["operator"] or "________________"))
    rows.append(("Reviewed by (sign-off)", cl["reviewer"] or "________________"))
    return rows


def cycle_rows(data: dict) -> list:
    return [
        [
            str(c["cycle"]),
            c["freeze"],
            c["at_or_below_target"],
            "—" if c["min_temp_c"] is None else f"{c['min_temp_c']:.1f}",
            "yes" if c["target_reached"] else "NO",
            c["thaw"],
        ]
        for c in data["cycles"]
    ]


def write_report(dest, session: int, out_dir=None) -> tuple[Path, Path]:
    """Write ``report-session<N>.png`` (300 dpi), ``.pdf`` and ``.json`` for one session."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    from cryo.protocol import states
    from host_tools.archive.clinical import mss, report_data
    from host_tools.archive.reader import session_records

    dest = Path(dest)
    data = report_data(dest, session)
    samples = [r for r in session_records(dest, session) if r["type"] == "sample"]
    t = [r["t_ms"] / 1000 for r in samples]
    temp = [r["tissue_c"] if r["tissue_c"] is not None else float("nan") for r in samples]
    # the setpoint applies while cooling is regulated (pre-cool, freeze) only
    regulated = (states.PRECOOL, states.FREEZE)
    sp = [
        r["setpoint_c"] if r["setpoint_c"] is not None and r["phase"] in regulated else float("nan")
        for r in samples
    ]
    demand = [r["demand_pct"] for r in samples]
    valve = [r["valve"] * 100 for r in samples]

    fig = plt.figure(figsize=(8.27, 11.69))  # A4 portrait
    gs = fig.add_gridspec(4, 1, height_ratios=[3, 1.1, 0.9, 2.6], hspace=0.4)
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
    ax.plot(t, sp, color="#c0392b", lw=1, ls="--", label="setpoint (freeze)")
    if data["thaw_threshold_c"] is not None:
        ax.axhline(data["thaw_threshold_c"], color="#e67e22", lw=1, ls=":", label="thaw threshold")
    for i, f in enumerate(data["faults"]):
        ax.axvline(f["time_s"], color="red", lw=1.5, label="fault" if i == 0 else None)
        ax.text(
            f["time_s"],
            0.02,
            f" {f['name']}",
            color="red",
            transform=ax.get_xaxis_transform(),
            fontsize=7,
            rotation=90,
            va="bottom",
        )
    minutes = FuncFormatter(lambda x, _pos: mss(x) if x >= 0 else "")
    ax.xaxis.set_major_formatter(minutes)
    ax.set_ylabel("temperature (°C)")
    ax.set_title(
        f"Cryotherapy session {session} — device {data['device_serial']} — {data['outcome']}",
        pad=18,
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=7)

    ax2 = fig.add_subplot(gs[1], sharex=ax)
    ax2.fill_between(t, valve, step="post", color="#9cc9f5", alpha=0.6, label="valve open")
    ax2.plot(t, demand, color="#2c3e50", lw=1, drawstyle="steps-post", label="demand")
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("valve (%)")
    ax2.set_xlabel("time since start (m:ss)")
    ax2.xaxis.set_major_formatter(minutes)
    ax2.grid(alpha=0.3)
    ax2.legend(loc="upper right", fontsize=7)

    ax4 = fig.add_subplot(gs[2])
    ax4.axis("off")
    cyc = cycle_rows(data) or [["—", "—", "—", "—", "NO", "—"]]
    ct = ax4.table(
        cellText=cyc,
        colLabels=["Cycle", "Freeze", "At/below target", "Min °C", "Target reached", "Thaw"],
        loc="upper center",
        cellLoc="center",
    )
    ct.auto_set_font_size(False)
    ct.set_fontsize(8)

    ax3 = fig.add_subplot(gs[3])
    ax3.axis("off")
    table = ax3.table(
        cellText=[list(r) for r in summary_rows(data)],
        colLabels=["Item", "Value"],
        loc="upper center",
        cellLoc="left",
        colWidths=[0.3, 0.68],
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    table.scale(1, 1.25)

    out = Path(out_dir) if out_dir else dest
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"report-session{session:05d}.png"
    pdf = out / f"report-session{session:05d}.pdf"
    fig.savefig(png, dpi=300)
    fig.savefig(pdf)
    plt.close(fig)
    (out / f"report-session{session:05d}.json").write_text(json.dumps(data, indent=1))
    return png, pdf


def _firmware(data):
    h = data["firmware_hash"]
    if not h:
        return f"{data['firmware_version']} (no release manifest: not installed by `cryo flash`)"
    return f"{data['firmware_version']} ({h[:16]}…)"
