"""The archive's index: what a pull has verified, kept so the next one need not redo it.

``<archive>/<serial>/index.json`` holds, for the treatment log, the size of
every segment file already verified, the reader's cursor (last sequence
number, open session, time) at the start of the newest segment, and one
row per session (header, summary, sample and fault counts). A pull hands
:func:`update` only the segment files it changed; the index re-reads from
the newest previously verified segment onward (segments are at most
``segment_bytes``), so verifying and listing cost O(new records), not
O(history). The host trusts what it verified before: records are
append-only and CRC-checked, and a segment that was complete is never read
again.

Damaged ranges are reported with the file, offset, size, the session they
lie in and the last intact sequence number before them; a gap in the
sequence numbers likewise (lost records, not a reset).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from host_tools import fwimport  # noqa: F401  (firmware/ importable)

INDEX = "index.json"
HEADER_FIELDS = ("rtc_s", "rtc_ms", "fw_version", "board_id", "target_cc", "cycles", "sample_hz")
VERSION = 2


def _empty():
    return {
        "version": VERSION,
        "segments": {},  # name -> bytes verified
        "newest": None,  # the newest segment read (it may still grow)
        "before_newest": None,  # reader state at the start of "newest"
        "state": _fresh_state(),
    }


def _fresh_state():
    return {
        "cursor": [-1, 0, 0],
        "records": 0,
        "damaged": [],
        "gaps": [],
        "sessions": {},
    }


def load(dest: Path) -> dict:
    p = Path(dest) / INDEX
    try:
        idx = json.loads(p.read_text())
        if idx.get("version") == VERSION:
            return idx
    except (OSError, ValueError):
        pass
    return _empty()


def save(dest: Path, idx: dict):
    p = Path(dest) / INDEX
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(idx))
    os.replace(tmp, p)  # an interrupted pull leaves the previous index whole


def _read_segment(state: dict, name: str, data: bytes, last_file: bool):
    from cryo.storage import records as R
    from cryo.storage import segments as L

    cur = state["cursor"]
    sessions = state["sessions"]
    for off, size, rec, sess in L.walk_segment(data, cur):
        if rec is None:
            if last_file and off + size == len(data):
                continue  # the torn tail of the newest segment is a record being written
            state["damaged"].append(
                {
                    "file": name,
                    "offset": off,
                    "bytes": size,
                    "session": sess or None,
                    "after_seq": cur[0] if cur[0] >= 0 else None,
                }
            )
            continue
        prev = state.get("last_seq")
        if prev is not None and rec["seq"] != prev + 1:
            state["gaps"].append(
                {"file": name, "after_seq": prev, "next_seq": rec["seq"], "session": sess or None}
            )
        state["last_seq"] = rec["seq"]
        state["records"] += 1
        t = rec["type"]
        if t == "session":
            sessions[str(rec["session"])] = {
                "session": rec["session"],
                "header": {k: rec[k] for k in HEADER_FIELDS if k in rec},
                "summary": None,
                "samples": 0,
                "faults": 0,
                "first_seq": rec["seq"],
                "last_seq": rec["seq"],
            }
            continue
        row = sessions.get(str(sess)) if sess else None
        if row is None:
            continue
        row["last_seq"] = rec["seq"]
        if t == "sample":
            row["samples"] += 1
        elif t == "event" and rec["code"] == R.EV_FAULT:
            row["faults"] += 1
        elif t == "summary":
            row["summary"] = {k: v for k, v in rec.items() if not isinstance(v, (bytes, bytearray))}


def _checkpoint(state: dict) -> dict:
    """The reader's state before a segment that may still grow, without the
    sessions it cannot touch: only the open one (and those begun later) can
    change when that segment is read again."""
    first = state["cursor"][1] or (max(map(int, state["sessions"]), default=0) + 1)
    ck = {k: v for k, v in state.items() if k != "sessions"}
    ck["first_session"] = first
    ck["sessions"] = {k: v for k, v in state["sessions"].items() if int(k) >= first}
    return copy.deepcopy(ck)


def _restore(state: dict, ck: dict) -> dict:
    ck = copy.deepcopy(ck)
    first = ck.pop("first_session")
    sessions = {k: v for k, v in state["sessions"].items() if int(k) < first}
    sessions.update(ck["sessions"])
    ck["sessions"] = sessions
    return ck


def update(dest: Path, changed=None, persist=True, idx=None) -> dict:
    """Bring the index of ``dest`` up to date with its segment files.

    ``changed``: names of segment files the pull wrote (None: compare every
    archived file's size with what the index verified). Returns the index,
    saved unless ``persist`` is false (the caller saves it once it checked
    the rest).
    """
    from cryo.storage import segments as L

    logs = Path(dest) / "logs"
    idx = load(dest) if idx is None else idx
    if not logs.is_dir():
        return idx
    names = L.segment_names(str(logs))
    seen = idx["segments"]
    if changed is None:
        # segments before the newest verified one were complete: trusted
        newest = idx["newest"]
        fresh = [n for n in names if newest is None or n >= newest]
        changed = [n for n in fresh if seen.get(n) != (logs / n).stat().st_size]
    changed = sorted(set(changed) & set(names))
    if not changed:
        return idx
    start = changed[0]
    newest = idx["newest"]
    if newest is not None and newest in names and start >= newest:
        start = newest
        state = _restore(idx["state"], idx["before_newest"])
    elif newest is None or start > newest:
        state = idx["state"]
    else:
        # an older, complete segment changed (restored archive): read everything again
        start = names[0]
        state = _fresh_state()
    todo = [n for n in names if n >= start]
    for i, name in enumerate(todo):
        data = (logs / name).read_bytes()
        if i == len(todo) - 1:
            idx["before_newest"] = _checkpoint(state)
            idx["newest"] = name
        _read_segment(state, name, data, i == len(todo) - 1)
        seen[name] = len(data)
    idx["state"] = state
    if persist:
        save(dest, idx)
    return idx


def sessions(idx: dict) -> list[dict]:
    """Session rows of the index, in session order."""
    return [idx["state"]["sessions"][k] for k in sorted(idx["state"]["sessions"], key=int)]
