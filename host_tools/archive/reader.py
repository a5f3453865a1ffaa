"""Reading a pulled log archive (``<archive>/<device serial>/logs``).

The readers ``cryo logs`` (list, export, verify) and the report share: the
sessions in an archive, one session's records and the dates they carry.
Records are decoded with the firmware's own reader (``cryo.storage.log``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import functools
import io
import json
import sys
from pathlib import Path

from host_tools import (
    RTC_EPOCH,
    fwimport,  # noqa: F401  (firmware/ importable)
)
from host_tools.errors import InvalidInput


def list_sessions(dest: Path) -> list[dict]:
    from cryo.storage import segments as L

    return L.list_sessions(str(Path(dest) / "logs"))


def session_records(dest: Path, session: int) -> list[dict]:
    from cryo.storage import segments as L

    recs = L.read_records(str(Path(dest) / "logs"), session=session)
    if not recs:
        have = [s["session"] for s in list_sessions(dest)]
        raise InvalidInput(f"no session {session} in {dest} (sessions: {have or 'none'})")
    return recs


@functools.lru_cache(maxsize=4096)  # a listing formats every session's date
def rtc_date(rtc_s) -> str:
    """Board RTC seconds as a UTC date and time."""
    return (RTC_EPOCH + _dt.timedelta(seconds=int(rtc_s))).strftime("%Y-%m-%d %H:%M:%S")


def _names():
    from cryo.protocol import states

    return states.NAMES


def session_rows(dest: Path) -> list[dict]:
    """One row per session: date, duration, minimum temperature, cycles,
    faults, solenoid cycles (None when the firmware did not log them), and
    the outcome in the device's words (the report's, ``clinical.outcome_word``)."""
    from cryo.storage import records as R
    from host_tools.archive import index as archive_index
    from host_tools.archive.clinical import outcome_word

    rows = []
    for s in archive_index.sessions(archive_index.update(dest)):
        h = s["header"]
        sm = s["summary"] or {}
        min_cc = sm.get("min_cc")
        rows.append(
            {
                "session": s["session"],
                "date": rtc_date(h["rtc_s"]),
                "duration_s": round(sm["duration_ms"] / 1000, 1) if sm else None,
                "min_temp_c": None
                if min_cc is None or min_cc == R.NO_READING16
                else round(min_cc / R.TISSUE_SCALE, 2),
                "cycles": sm.get("cycles_done"),
                "faults": s["faults"],
                "valve_cycles": s.get("valve_cycles"),
                "outcome": outcome_word(sm["outcome"] if sm else None),
                "samples": s["samples"],
            }
        )
    return rows


def export_session(dest: Path, session: int, fmt: str, out: Path | None = None) -> Path:
    """Write one session as CSV (samples) or JSON (header, events, samples, summary)."""
    from cryo.storage import records as R

    recs = session_records(dest, session)
    names = _names()
    samples = [r for r in recs if r["type"] == "sample"]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["t_s", "tissue_c", "aux_c", "setpoint_c", "demand_pct", "valve", "phase"])
        for r in samples:
            ph = r["phase"]
            w.writerow(
                [
                    f"{r['t_ms'] / 1000:.1f}",
                    "" if r["tissue_c"] is None else f"{r['tissue_c']:.2f}",
                    "" if r["aux_c"] is None else f"{r['aux_c']:.1f}",
                    "" if r["setpoint_c"] is None else f"{r['setpoint_c']:.1f}",
                    r["demand_pct"],
                    r["valve"],
                    names[ph] if ph < len(names) else ph,
                ]
            )
        text = buf.getvalue()
    elif fmt == "json":
        doc = {"session": session, "header": None, "events": [], "samples": [], "summary": None}
        for r in recs:
            r = {k: (v.hex() if isinstance(v, (bytes, bytearray)) else v) for k, v in r.items()}
            if r["type"] == "session":
                doc["header"] = r
            elif r["type"] == "event":
                r["name"] = R.EVENT_NAMES.get(r["code"], str(r["code"]))
                doc["events"].append(r)
            elif r["type"] == "sample":
                doc["samples"].append(r)
            elif r["type"] == "summary":
                doc["summary"] = r
        text = json.dumps(doc, indent=1)
    else:
        raise InvalidInput(f"export format must be csv or json, not {fmt!r}")
    if out is not None and str(out) == "-":
        sys.stdout.write(text)  # `-o -`: to standard output, as usual for a file argument
        sys.stdout.flush()
        return Path("-")
    out = Path(out) if out else Path(dest) / f"session{session:05d}.{fmt}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out


def find_device_archive(archive: Path, serial: str | None) -> Path:
    archive = Path(archive)
    if serial:
        d = archive / serial
        if not d.is_dir():
            raise InvalidInput(f"no archive for device {serial} in {archive}")
        return d
    devs = [p for p in archive.iterdir() if (p / "logs").is_dir()] if archive.is_dir() else []
    if len(devs) == 1:
        return devs[0]
    if not devs:
        raise InvalidInput(f"no pulled logs in {archive}: run `cryo logs pull` first")
    raise InvalidInput(
        f"{len(devs)} devices in {archive} ({', '.join(p.name for p in devs)}): pass --serial"
    )
