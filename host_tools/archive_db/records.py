"""Raw archive records -> database rows: one device folder, read once per change.

Reads with the firmware's own decoders (``cryo.storage``): the treatment log
segments from the one holding the first session that changed (found from
each segment's header record, not by reading history), the audit trail's
JSON lines, the device event history and the pull log. Pure functions of
the files: the same folder always gives the same rows.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from host_tools import (
    RTC_EPOCH,
    fwimport,  # noqa: F401  (firmware/ importable)
)

# isort: split
from cryo.storage import records as R

PULL_LOG = "pulls.jsonl"  # one JSON line per pull: who, when, from where


def rtc_datetime(rtc_s, rtc_ms=0) -> _dt.datetime | None:
    """Board RTC time as a naive UTC datetime (None: the board had no time)."""
    if not rtc_s:
        return None
    t = RTC_EPOCH + _dt.timedelta(seconds=int(rtc_s), milliseconds=int(rtc_ms or 0))
    return t.replace(tzinfo=None)


def _segment_first_seq(path: Path) -> int | None:
    with open(path, "rb") as f:
        head = f.read(R.frame_size(R.TYPE_SEGMENT))
    rec, _ = R.decode_frame(head)
    return rec["seq"] if rec is not None else None


def _start_segment(logs: Path, names: list[str], first_seq: int) -> int:
    """Index of the last segment that begins at or before ``first_seq``."""
    start = 0
    for i, name in enumerate(names):
        seq = _segment_first_seq(logs / name)
        if seq is None:
            continue  # damaged header: keep the earlier start (read more, never less)
        if seq > first_seq:
            break
        start = i
    return start


class _Session:
    """What one session's records add up to (samples are counted, not kept)."""

    def __init__(self, header, segment, offset):
        self.header = header
        self.summary = None
        self.events = []
        self.samples = 0
        self.valve_cycles = 0  # counted in the samples
        self._valve = 0
        self.valve_event = None  # the firmware's own count (EV_VALVE_CYCLES), when it logs one
        self.first_seq = self.last_seq = header["seq"]
        self.first_segment, self.first_offset = segment, offset
        self.last_segment = segment

    def add(self, rec, segment):
        self.last_seq = rec["seq"]
        self.last_segment = segment
        t = rec["type"]
        if t == "sample":
            self.samples += 1
            if rec["valve"] and not self._valve:
                self.valve_cycles += 1
            self._valve = rec["valve"]
        elif t == "event":
            self.events.append(rec)
            if rec["code"] == R.EV_VALVE_CYCLES:
                self.valve_event = rec
        elif t == "summary":
            self.summary = rec


def read_sessions(dest: Path, wanted: set[int], first_seq: int) -> dict[int, _Session]:
    """The sessions in ``wanted``, read from the segment holding ``first_seq`` on."""
    from cryo.storage import segments as L

    logs = Path(dest) / "logs"
    names = L.segment_names(str(logs))
    out: dict[int, _Session] = {}
    cursor = [-1, 0, 0]
    for name in names[_start_segment(logs, names, first_seq) :]:
        data = (logs / name).read_bytes()
        for off, _size, rec, sess in L.walk_segment(data, cursor):
            if rec is None:
                continue  # damaged ranges: reported by the pull's verification
            if rec["type"] == "session" and rec["session"] in wanted:
                out[rec["session"]] = _Session(rec, name, off)
            elif sess in out and rec["type"] != "segment":
                out[sess].add(rec, name)
    return out


def session_row(serial: str, s: _Session) -> dict:
    h, sm = s.header, s.summary
    faults = sum(1 for e in s.events if e["code"] == R.EV_FAULT)
    return {
        "serial": serial,
        "session": h["session"],
        "started_at": rtc_datetime(h["rtc_s"], h["rtc_ms"]),  # None: clock not set
        "fw_version": h["fw_version"],
        "fw_hash": h["fw_hash"],
        "config_hash": h["config_hash"],
        "board_id": h["board_id"],
        "target_cc": h["target_cc"],
        "cycles_planned": h["cycles"],
        "sample_hz": h["sample_hz"],
        "outcome": R.OUTCOME_NAMES[sm["outcome"]] if sm else "open",
        "duration_ms": sm["duration_ms"] if sm else None,
        "min_cc": None if not sm or sm["min_cc"] == R.NO_READING16 else sm["min_cc"],
        "below_target_ms": sm["below_target_ms"] if sm else None,
        "valve_open_ms": sm["valve_open_ms"] if sm else None,
        "cycles_done": sm["cycles_done"] if sm else None,
        "target_reached": bool(sm and sm["below_target_ms"] > 0),
        "samples": s.samples,
        "events": len(s.events),
        "faults": faults,
        # the firmware's count where it logged one, else the valve-open transitions sampled
        "valve_cycles": s.valve_event["arg"] if s.valve_event else s.valve_cycles,
        "lifetime_valve_cycles": s.valve_event["arg2"] if s.valve_event else None,
        "first_seq": s.first_seq,
        "last_seq": s.last_seq,
        "first_segment": s.first_segment,
        "first_offset": s.first_offset,
        "last_segment": s.last_segment,
    }


def event_rows(serial: str, s: _Session) -> tuple[list[dict], list[dict]]:
    """(event rows, fault rows) of one session."""
    from cryo.interlock.conditions import NAMES as CONDITIONS

    start = rtc_datetime(s.header["rtc_s"], s.header["rtc_ms"])
    session = s.header["session"]
    events, faults = [], []
    for e in s.events:
        events.append(
            {
                "serial": serial,
                "seq": e["seq"],
                "session": session,
                "t_ms": e["t_ms"],
                "code": e["code"],
                "name": R.EVENT_NAMES.get(e["code"], "event%d" % e["code"]),
                "arg": e["arg"],
                "arg2": e["arg2"],
            }
        )
        if e["code"] == R.EV_FAULT:
            c = e["arg"]
            faults.append(
                {
                    "serial": serial,
                    "seq": e["seq"],
                    "session": session,
                    "at": None if start is None else start + _dt.timedelta(milliseconds=e["t_ms"]),
                    "t_ms": e["t_ms"],
                    "code": c,
                    "condition": CONDITIONS[c] if 0 <= c < len(CONDITIONS) else "condition%d" % c,
                    "priority": e["arg2"],
                }
            )
    return events, faults


def audit_rows(serial: str, dest: Path) -> list[dict]:
    """The trail's entries, each with its line's hash (whole lines only: a torn tail waits)."""
    from cryo.storage.audit import line_hash

    trail = Path(dest) / "audit" / "audit.log"
    if not trail.exists():
        return []
    rows = []
    data = trail.read_bytes()
    for line in data[: data.rfind(b"\n") + 1].splitlines():
        if not line:
            continue
        # a provisioned device's entry carries its MAC as a ninth element (cryo.storage.audit)
        n, time_s, kind, role, subject, old, new, prev = json.loads(line)[:8]
        rows.append(
            {
                "serial": serial,
                "hash": line_hash(line),
                "n": n,
                "at": rtc_datetime(time_s),
                "kind": str(kind),
                "role": None if role is None else str(role),
                "subject": None if subject is None else str(subject),
                "old": json.dumps(old),
                "new": json.dumps(new),
                "prev": prev,
            }
        )
    return rows


def device_event_rows(serial: str, dest: Path, after_seq: int) -> list[dict]:
    from host_tools.archive import events as archive_events

    if not (Path(dest) / archive_events.DEVICE_DIR / archive_events.EVENTS_HISTORY).exists():
        return []
    return [
        {
            "serial": serial,
            "seq": r["seq"],
            "at": rtc_datetime(r["rtc_s"]),
            "t_ms": r["t_ms"],
            "kind": r["kind_name"],
            "code": r["code"],
            "condition": r["condition"],
            "arg": r["arg"],
            "detail": r["detail"],
        }
        for r in archive_events.event_rows(dest, after_seq)
    ]


def pull_rows(serial: str, dest: Path) -> list[dict]:
    p = Path(dest) / PULL_LOG
    if not p.exists():
        return []
    rows = []
    for line in p.read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        rows.append(dict(r, serial=serial, at=_dt.datetime.fromisoformat(r["at"])))
    return rows


def append_pull(dest: Path, row: dict):
    """Append one pull to the device's pull log (the raw record of who pulled when)."""
    row = dict(row, at=row["at"].isoformat())
    with open(Path(dest) / PULL_LOG, "a") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")
