"""The device event log and safety state in a pulled archive: merging each
pull's copy into the archive's event history, and reading it back."""

from __future__ import annotations

import os
from pathlib import Path

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.archive.reader import rtc_date
from host_tools.errors import InvalidInput

# isort: split


# -- device event log and safety state ------------------------------------
# Pulled copies of the device files under <archive>/<serial>/device/, plus
# EVENTS_HISTORY: every event ever pulled, in seq order, in the device's
# own 24-byte record layout (records.DEV_EVENT_FMT, CRC-32 each). The
# device's file is a ring that overwrites its oldest record, so the history
# is what keeps events beyond the ring's capacity.
DEVICE_DIR = "device"
EVENTS_HISTORY = "events-history.bin"


def device_file_names(events_path=None, state_path=None) -> list[str]:
    """The device event log and safety state, relative to the flash root."""
    from cryo import paths

    return [
        (events_path or paths.DEVICE_EVENTS_PATH).lstrip("/"),
        (state_path or paths.SAFETY_STATE_PATH).lstrip("/"),
    ]


def _read_event_file(path: Path) -> tuple[list[dict], list[dict]]:
    from cryo.storage import device_records as D

    try:
        return D.scan_events(path.read_bytes())
    except ValueError as e:
        raise InvalidInput(f"{path}: {e}") from None


def merge_events(dest: Path, events_name: str | None = None) -> dict:
    """Add the pulled device events newer than the archive's history to it.

    Returns ``ok``, ``records`` (in the history), ``new``, ``last_seq``,
    ``damaged_slots`` (torn or corrupt slots in the pulled copy),
    ``missing`` (seq ranges never archived: overwritten on the device before
    a pull, or damaged) and ``problems`` (messages). A pulled copy that is
    not an event file, or a device log that restarted below the archived
    history, is a problem and nothing is merged.
    """
    from cryo.storage import device_records as D

    folder = Path(dest) / DEVICE_DIR
    pulled = folder / (events_name or device_file_names()[0])
    hist_path = folder / EVENTS_HISTORY
    history = _read_event_file(hist_path)[0] if hist_path.exists() else []
    last = history[-1]["seq"] if history else 0
    out = {
        "ok": True,
        "records": len(history),
        "new": 0,
        "last_seq": last,
        "damaged_slots": [],
        "missing": [],
        "problems": [],
    }
    if not pulled.exists():
        out["note"] = "no device event log on the device"
        return out
    try:
        recs, damaged = _read_event_file(pulled)
    except InvalidInput as e:
        out.update(ok=False, problems=[str(e)])
        return out
    out["damaged_slots"] = damaged
    archived = {r["seq"]: r for r in history}
    changed = [r["seq"] for r in recs if r["seq"] in archived and archived[r["seq"]] != r]
    if (recs and recs[-1]["seq"] < last) or changed:
        out["ok"] = False
        out["problems"].append(
            f"the device event log (newest seq {recs[-1]['seq'] if recs else 0}) does not "
            f"continue the archived history (up to seq {last}): the device log was reset or "
            f"rewritten; nothing merged (move {hist_path} aside to start a new history)"
        )
        return out
    new = [r for r in recs if r["seq"] > last]
    expect = last + 1
    for r in new:
        if r["seq"] != expect:
            out["missing"].append({"from_seq": expect, "to_seq": r["seq"] - 1})
        expect = r["seq"] + 1
    if new:
        data = bytearray(hist_path.read_bytes() if hist_path.exists() else b"")
        buf = bytearray(D.DEV_EVENT_SIZE)
        for r in new:
            D.encode_dev_event(
                buf, 0, r["seq"], r["rtc_s"], r["t_ms"], r["kind"], r["code"], r["arg"]
            )
            data += buf
        tmp = hist_path.with_suffix(".tmp")
        tmp.write_bytes(bytes(data))
        os.replace(tmp, hist_path)  # an interrupted pull leaves the old history whole
    for m in out["missing"]:
        out["problems"].append(
            f"device events {m['from_seq']}..{m['to_seq']} are not in the archive "
            "(overwritten on the device before they were pulled, or damaged there)"
        )
    for d in damaged:
        out["problems"].append(
            f"pulled event log: slot {d['slot']} (offset {d['offset']}) is {d['reason']}"
        )
    out.update(records=len(history) + len(new), new=len(new), last_seq=expect - 1)
    out["ok"] = not out["problems"]
    return out


def safety_state(dest: Path, state_name: str | None = None) -> dict | None:
    """The pulled safety state, read by the firmware's own SafetyState.

    None when the device has none; otherwise its fields plus ``latched_names``,
    ``flag_names``, ``last_reset_name``, and ``lost``/``problem`` when no
    slot was valid (or ``problem`` when one slot was damaged).
    """
    from cryo.interlock.conditions import NAMES as CONDITIONS
    from cryo.storage import device_records as D
    from cryo.storage.safety_state import SafetyState

    path = Path(dest) / DEVICE_DIR / (state_name or device_file_names()[1])
    st = SafetyState(str(path))
    out = st.load()
    if out is None:
        return None
    latched = out["latched"]
    out["latched_names"] = [
        CONDITIONS[b] if b < len(CONDITIONS) else f"condition {b}"
        for b in range(32)
        if latched >> b & 1
    ]
    out["flag_names"] = [n for bit, n in sorted(D.FLAG_NAMES.items()) if out["flags"] & bit]
    r = out["last_reset"]
    out["last_reset_name"] = D.RESET_NAMES[r] if r < len(D.RESET_NAMES) else f"cause {r}"
    if st.problem:
        out["problem"] = st.problem
    return out


def _event_detail(rec) -> tuple[str | None, str]:
    """(condition name or None, what the code/arg mean) for one event."""
    from cryo.interlock.conditions import NAMES as CONDITIONS
    from cryo.protocol import states
    from cryo.storage import device_records as D
    from cryo.storage import records as R
    from cryo.storage.schema import ROLE_NAMES

    kind, code, arg = rec["kind"], rec["code"], rec["arg"]

    def cond(c):
        return CONDITIONS[c] if 0 <= c < len(CONDITIONS) else f"condition {c}"

    if kind == D.DEV_BOOT:
        cause = D.RESET_NAMES[code] if code < len(D.RESET_NAMES) else f"cause {code}"
        return None, f"reset cause {cause}, boot {arg}"
    if kind == D.DEV_FAULT:
        return cond(code), f"phase {states.name(arg)}"
    if kind == D.DEV_ACK:
        return cond(code), f"role {ROLE_NAMES.get(arg, arg)}"
    if kind == D.DEV_RESTORED:
        mask = arg & 0xFFFFFFFF
        names = [cond(b) for b in range(32) if mask >> b & 1]
        return None, f"latched at boot: {', '.join(names) or 'none'} (mask 0x{mask:x})"
    if kind == D.DEV_INTERNAL:
        return None, f"internal error, exception id 0x{arg & 0xFFFFFFFF:08x}"
    if kind == D.DEV_STATE_LOST:
        return None, "safety state unreadable at boot"
    if kind == D.DEV_WDT_IN_TREATMENT:
        return None, f"watchdog reset during treatment (saved flags 0x{arg & 0xFFFF:x})"
    if kind == D.DEV_SITE:
        return None, "new site, dose cleared" if arg == D.SITE_NEW else f"site arg {arg}"
    if kind == D.DEV_REFUSED:
        why = D.REFUSED_NAMES.get(code, f"reason {code}")
        return None, f"start refused: {why}, tissue {arg / R.TISSUE_SCALE:.2f} °C"
    return None, f"unknown kind {kind}: code {code}, arg {arg}"


def event_rows(dest: Path, since_seq: int = 0) -> list[dict]:
    """The archived device events after ``since_seq``: one dict per event.

    Keys: seq, rtc_s, date (UTC, None when the device had no RTC time),
    t_ms, kind, kind_name, code, condition (name, for faults and acks),
    arg, detail.
    """
    hist = Path(dest) / DEVICE_DIR / EVENTS_HISTORY
    if not hist.exists():
        raise InvalidInput(
            f"no device events in {dest}: run `cryo logs pull` (firmware with the device "
            "event log) first"
        )
    rows = []
    for r in _read_event_file(hist)[0]:
        if r["seq"] <= since_seq:
            continue
        condition, detail = _event_detail(r)
        rows.append(
            {
                "seq": r["seq"],
                "rtc_s": r["rtc_s"],
                "date": rtc_date(r["rtc_s"]) if r["rtc_s"] else None,
                "t_ms": r["t_ms"],
                "kind": r["kind"],
                "kind_name": r["kind_name"],
                "code": r["code"],
                "condition": condition,
                "arg": r["arg"],
                "detail": detail,
            }
        )
    return rows
