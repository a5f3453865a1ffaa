"""`cryo logs`: list, pull, export and report treatment logs.

Pull model. The firmware's treatment log (``cryo.storage.log``)
is a folder of append-only segment files; the audit trail is append-only
too. A pull copies, per file, only the bytes beyond what the local archive
already holds (``<archive>/<device serial>/logs/…``): incremental and
resumable — bytes land in the archive as they arrive. Its cost does not
grow with history: the device lists only segments from the newest one the
archive verified, and checks the archive's last 64 bytes of each growing
file (SHA-256), not its whole prefix.

Transfer: framed, CRC-checked and retried (``host_tools.transfer.fetch``),
read straight off the port in large blocks instead of ``mpremote fs cp``'s
one round trip per 256-byte chunk; see bench/bench_host.py for the ratio.

Verification: new records are decoded with the firmware's own reader
(``cryo.storage.segments.walk_segment``: every record's CRC-32, sequence numbers
across segments) through the archive index (``host_tools.archive_index``);
damaged ranges and sequence gaps are reported with their session, the audit
trail's hash chain is checked from the last verified entry. Only then is
the device told which sessions the host holds (``pulled`` marker), so it may
recycle their segments.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.archive import rtc_date as _date
from host_tools.archive import session_records
from host_tools.archive_db.location import ENV_ARCHIVE
from host_tools.connect import add_port_argument, resolve_port
from host_tools.errors import CryoError, InvalidInput

# isort: split
from cryo.paths import AUDIT_PATH, LOG_ROOT

# Pull helpers: one listing with sizes, then one check of what the archive
# already holds (the SHA-256 of the last bytes of each growing file, of the
# whole of each small state file) - O(1) round trips and device work per
# pull, whatever the history. Not a CRC: these files are sequences of
# records that each end in their own CRC-32, and CRC-32 over such a
# sequence is the same constant whatever the records hold (the CRC residue).
_PULL_HELPERS = """
def _cry_ls(d, since):
    return [(n, _cry_size(d + '/' + n)) for n in _cry_walk(d) if n >= since or n[:3] != 'seg']
def _cry_hashn(p, a, b):
    h = hashlib.sha256()
    buf = bytearray(256)
    try:
        with open(p, 'rb') as f:
            f.seek(a)
            while a < b:
                n = f.readinto(buf)
                if not n:
                    break
                n = min(n, b - a)
                h.update(memoryview(buf)[:n])
                a += n
    except OSError:
        return None
    return binascii.hexlify(h.digest()).decode()
def _cry_chk(grow, small):
    g = {}
    for p, have in grow:
        _cry_feed()
        n = _cry_size(p)
        g[p] = (n, _cry_hashn(p, max(0, have - 64), have) if 0 < have < n else None)
    s = {}
    for p in small:
        n = _cry_size(p)
        s[p] = (n, _cry_hashn(p, 0, n) if 0 <= n <= 16384 else None)
    return g, s
"""
TAIL = 64  # bytes before the archived end compared with the device (bit rot, reset)


def default_archive() -> Path:
    from host_tools.archive_db.location import locate

    return locate().folder  # $CRYO_ARCHIVE may name a database: its raw records go elsewhere


def _names():
    from cryo.protocol import states

    return states.NAMES


# -- pulling -------------------------------------------------------------
def device_identity(session, fallback="unknown-device") -> str:
    from host_tools.device import device_serial, probe

    serial = device_serial(probe(session))
    return serial or fallback


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_range(path: Path, a: int, b: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(a)
        return f.read(b - a)


def _plan(session, log_root, audit_path, device_names, dest: Path, since) -> tuple[list, list]:
    """What to fetch: ``[(remote, local, offset, size)]`` and warnings.

    Growing files (segments, the audit trail) continue from the archived
    size once the device's bytes just before it match the archive; small
    state files are fetched whole when their CRC differs.
    """
    listing = session.query(f"_cry_ls({log_root!r}, {since or ''!r})")
    files = []  # (remote, local, grows)
    for name, _size in sorted(listing):
        if name.endswith(".tmp"):
            continue
        files.append((f"{log_root}/{name}", dest / "logs" / name, name.endswith(".bin")))
    files.append((audit_path, dest / "audit" / Path(audit_path).name, True))
    files.append((audit_path + ".head", dest / "audit" / (Path(audit_path).name + ".head"), False))
    for n in device_names:
        files.append((n, dest / DEVICE_DIR / n, False))
    have = {r: (loc.stat().st_size if loc.exists() else 0) for r, loc, _ in files}
    grow = [(r, have[r]) for r, _, g in files if g]
    small = [r for r, _, g in files if not g]
    g_chk, s_chk = session.query(f"_cry_chk({grow!r}, {small!r})")
    plan, warnings = [], []
    for r, loc, grows in files:
        h = have[r]
        if grows:
            size, tail = g_chk[r]
            if size < 0:
                continue
            if size < h:
                raise InvalidInput(
                    f"the device's {r} ({size} bytes) is shorter than the archived copy "
                    f"{loc} ({h} bytes): the device log was reset; move the archive folder "
                    "aside and pull again"
                )
            local = _read_range(loc, max(0, h - TAIL), h) if 0 < h < size else None
            if local and tail != _sha(local):
                warnings.append(
                    f"{r}: bytes {max(0, h - TAIL)}..{h} on the device differ from the "
                    f"verified archive copy (damaged on the device after they were pulled); "
                    "the archive keeps the verified bytes"
                )
            if size > h:
                plan.append((r, loc, h, size))
        else:
            size, crc = s_chk[r]
            if size < 0:
                continue
            if not loc.exists() or size != h or crc != _sha(loc.read_bytes()):
                plan.append((r, loc, 0, size))
    return plan, warnings


def _fetch(session, plan, progress, stats) -> dict:
    from host_tools import transfer

    copied = {}
    for r, loc, have, _size in plan:
        loc.parent.mkdir(parents=True, exist_ok=True)
        with open(loc, "r+b" if loc.exists() else "wb") as f:
            f.seek(have)
            f.truncate()

            def sink(data, f=f):
                f.write(data)  # lands in the archive as it arrives: resumable
                f.flush()
                stats["bytes"] += len(data)

            end = transfer.fetch(session, r, have, sink, progress)
        copied[r] = end - have
    return copied


def pull(
    session,
    archive: Path | None = None,
    *,
    log_root=LOG_ROOT,
    audit_path=AUDIT_PATH,
    events_path=None,
    state_path=None,
    progress=None,
    mark=True,
    serial=None,
    fallback_serial="unknown-device",
    database=None,
) -> dict:
    """Pull new log and audit bytes from the device into the archive.

    Returns a summary dict (device serial, archive folder, files and bytes
    copied, throughput, verification result). ``serial`` overrides the
    archive folder name for a device that has no id of its own. The device
    event log and the safety state (``events_path``/``state_path``, default
    ``records.DEVICE_EVENTS_PATH``/``SAFETY_STATE_PATH``) are copied whole
    when they changed, and new events join the archive's event history
    (:func:`merge_events`, result ``events``). The pull is then logged and
    indexed into the archive database (``database``: its URL, default the
    SQLite file beside ``archive``; result ``index``).
    """
    from host_tools import archive_index

    archive = Path(archive or default_archive())
    session.exec(_PULL_HELPERS)
    serial = serial or device_identity(session, fallback_serial)
    dest = archive / serial
    t0 = time.perf_counter()
    stats = {"bytes": 0}
    device_names = _device_names(events_path, state_path)
    # segments before the newest one verified are complete: not even listed
    idx = archive_index.load(dest)
    since = idx["newest"]
    plan, warnings = _plan(session, log_root, audit_path, device_names, dest, since)
    if progress is not None:
        progress(0, sum(size - have for _, _, have, size in plan))
        cb = lambda n: progress(n, None)  # noqa: E731
    else:
        cb = None
    copied = _fetch(session, plan, cb, stats)
    dt = time.perf_counter() - t0

    def rel(prefix):
        return {
            str(Path(r).relative_to(prefix) if prefix else r): n
            for r, n in copied.items()
            if (r.startswith(prefix + "/") if prefix else not r.startswith(log_root + "/"))
        }

    files = rel(log_root)
    idx = archive_index.update(dest, persist=False, idx=idx)  # segments whose size changed
    check = verify_archive(dest, idx)
    result = {
        "serial": serial,
        "archive": str(dest),
        "files": files,
        "audit_files": {k: v for k, v in rel("").items() if k.startswith(audit_path)},
        "device_files": {k: v for k, v in rel("").items() if k in device_names},
        "events": merge_events(dest, device_names[0]),
        "safety_state": safety_state(dest, device_names[1]),
        "bytes": stats["bytes"],
        "seconds": round(dt, 3),
        "retries": session.retries,
        "warnings": warnings,
        "verify": check,
    }
    if mark and check["ok"] and check["complete_sessions"]:
        from cryo.storage import records as R

        upto = max(check["complete_sessions"])
        marker = dest / "logs" / "pulled"
        held = R.decode_pulled(marker.read_bytes()) if marker.exists() else None
        if held is None or held < upto:
            data = R.encode_pulled(upto)
            session.write_file(f"{log_root}/pulled.tmp", data)
            session.exec(f"os.rename('{log_root}/pulled.tmp', '{log_root}/pulled')")
            marker.write_bytes(data)
        result["marked_pulled_upto"] = upto
    from host_tools.archive_db.hook import after_pull

    result["index"] = after_pull(archive, dest, result, session.port, database)
    (dest / "pull.json").write_text(json.dumps(result, indent=2, default=str))
    return result


# -- reading the archive -------------------------------------------------
def verify_archive(dest: Path, idx=None) -> dict:
    """Every record's CRC and the sequence chain (through the archive index);
    the audit trail's hash chain from where the last verification ended."""
    from host_tools import archive_index

    idx = archive_index.update(dest) if idx is None else idx
    st = idx["state"]
    audit = verify_audit(Path(dest) / "audit", idx)
    if audit.get("ok", True):
        archive_index.save(dest, idx)
    sessions = archive_index.sessions(idx)
    return {
        "ok": not st["damaged"] and not st["gaps"] and audit.get("ok", True),
        "records": st["records"],
        "crc_errors": st["damaged"],
        "sequence_gaps": st["gaps"],
        "audit": audit,
        "complete_sessions": [s["session"] for s in sessions if s["summary"] is not None],
    }


def verify_audit(folder: Path, idx: dict | None = None) -> dict:
    """Hash-chain check of the archived audit trail, from the entry the
    index last verified (``idx["audit"]``: bytes, entry number, hash)."""
    trail = Path(folder) / "audit.log"
    if not trail.exists():
        return {"ok": True, "entries": 0, "note": "no audit trail on the device"}
    from cryo.storage.audit import line_hash, verify_bytes
    from host_tools.auth import audit_keying

    done = (idx or {}).get("audit") or {"bytes": 0, "n": 0, "hash": None}
    data = trail.read_bytes()
    if len(data) < done["bytes"]:
        done = {"bytes": 0, "n": 0, "hash": None, "device": done.get("device")}
    new = data[done["bytes"] :]
    start = (done["n"], done["hash"]) if done["n"] else None
    device = done.get("device")
    keying = audit_keying(device)  # MACs of a provisioned device's entries
    problems = verify_bytes(new, None, start, keying) if new else []
    lines = [ln for ln in new[: new.rfind(b"\n") + 1].split(b"\n") if ln]
    if lines and not problems:
        done = {"bytes": done["bytes"] + new.rfind(b"\n") + 1, "n": done["n"] + len(lines)}
        done["hash"] = line_hash(lines[-1])
        done["device"] = keying.device if keying is not None else device
    if idx is not None and not problems:
        idx["audit"] = done
    head = [done["n"], done["hash"]] if done["n"] else None
    keyed = "no master secret on this host" if keying is None else (keying.device or "unkeyed")
    return {
        "ok": not problems,
        "entries": done["n"],
        "problems": problems,
        "anchor": head,
        "keyed": keyed,
    }


# -- device event log and safety state ------------------------------------
# Pulled copies of the device files under <archive>/<serial>/device/, plus
# EVENTS_HISTORY: every event ever pulled, in seq order, in the device's
# own 24-byte record layout (records.DEV_EVENT_FMT, CRC-32 each). The
# device's file is a ring that overwrites its oldest record, so the history
# is what keeps events beyond the ring's capacity.
DEVICE_DIR = "device"
EVENTS_HISTORY = "events-history.bin"


def _device_names(events_path=None, state_path=None) -> list[str]:
    """The device event log and safety state, relative to the flash root."""
    from cryo.storage import records as R

    return [
        (events_path or R.DEVICE_EVENTS_PATH).lstrip("/"),
        (state_path or R.SAFETY_STATE_PATH).lstrip("/"),
    ]


def _read_event_file(path: Path) -> tuple[list[dict], list[dict]]:
    from cryo.storage import records as R

    try:
        return R.scan_events(path.read_bytes())
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
    from cryo.storage import records as R

    folder = Path(dest) / DEVICE_DIR
    pulled = folder / (events_name or _device_names()[0])
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
        buf = bytearray(R.DEV_EVENT_SIZE)
        for r in new:
            R.encode_dev_event(
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
    from cryo.storage import records as R
    from cryo.storage.safety_state import SafetyState

    path = Path(dest) / DEVICE_DIR / (state_name or _device_names()[1])
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
    out["flag_names"] = [n for bit, n in sorted(R.FLAG_NAMES.items()) if out["flags"] & bit]
    r = out["last_reset"]
    out["last_reset_name"] = R.RESET_NAMES[r] if r < len(R.RESET_NAMES) else f"cause {r}"
    if st.problem:
        out["problem"] = st.problem
    return out


def _event_detail(rec) -> tuple[str | None, str]:
    """(condition name or None, what the code/arg mean) for one event."""
    from cryo.interlock.conditions import NAMES as CONDITIONS
    from cryo.protocol import states
    from cryo.storage import records as R
    from cryo.storage.schema import ROLE_NAMES

    kind, code, arg = rec["kind"], rec["code"], rec["arg"]

    def cond(c):
        return CONDITIONS[c] if 0 <= c < len(CONDITIONS) else f"condition {c}"

    if kind == R.DEV_BOOT:
        cause = R.RESET_NAMES[code] if code < len(R.RESET_NAMES) else f"cause {code}"
        return None, f"reset cause {cause}, boot {arg}"
    if kind == R.DEV_FAULT:
        return cond(code), f"phase {states.name(arg)}"
    if kind == R.DEV_ACK:
        return cond(code), f"role {ROLE_NAMES.get(arg, arg)}"
    if kind == R.DEV_RESTORED:
        mask = arg & 0xFFFFFFFF
        names = [cond(b) for b in range(32) if mask >> b & 1]
        return None, f"latched at boot: {', '.join(names) or 'none'} (mask 0x{mask:x})"
    if kind == R.DEV_INTERNAL:
        return None, f"internal error, exception id 0x{arg & 0xFFFFFFFF:08x}"
    if kind == R.DEV_STATE_LOST:
        return None, "safety state unreadable at boot"
    if kind == R.DEV_WDT_IN_TREATMENT:
        return None, f"watchdog reset during treatment (saved flags 0x{arg & 0xFFFF:x})"
    if kind == R.DEV_SITE:
        return None, "new site, dose cleared" if arg == R.SITE_NEW else f"site arg {arg}"
    if kind == R.DEV_REFUSED:
        why = R.REFUSED_NAMES.get(code, f"reason {code}")
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
                "date": _date(r["rtc_s"]) if r["rtc_s"] else None,
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


def session_rows(dest: Path) -> list[dict]:
    """One row per session: date, duration, minimum temperature, cycles, faults."""
    from cryo.storage import records as R
    from host_tools import archive_index

    rows = []
    for s in archive_index.sessions(archive_index.update(dest)):
        h = s["header"]
        sm = s["summary"] or {}
        min_cc = sm.get("min_cc")
        rows.append(
            {
                "session": s["session"],
                "date": _date(h["rtc_s"]),
                "duration_s": round(sm["duration_ms"] / 1000, 1) if sm else None,
                "min_temp_c": None
                if min_cc is None or min_cc == R.NO_READING16
                else round(min_cc / R.TISSUE_SCALE, 2),
                "cycles": sm.get("cycles_done"),
                "faults": s["faults"],
                "outcome": R.OUTCOME_NAMES[sm["outcome"]] if sm else "open",
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


# -- demo / script entry -------------------------------------------------
def pull_and_report(
    flash_image_or_port, out_dir, session=None, *, log_root=LOG_ROOT, serial=None
) -> dict:
    """Pull the treatment log and write the report (what `make demo` ends with).

    ``flash_image_or_port``: a littlefs flash image written by ``cryo sim
    run`` (served by a virtual board for the pull), a flash directory, or a
    port/URL of a live board. Writes ``<out_dir>/<serial>/…`` (archive),
    ``report-sessionN.png/.pdf`` and the CSV/JSON export; returns their paths.
    """
    from host_tools.connect import Session
    from host_tools.report import write_report

    out_dir = Path(out_dir)
    src = str(flash_image_or_port)
    p = Path(src)
    if p.exists():
        from host_tools.vport import VirtualPort

        board = VirtualPort(image=p) if p.is_file() else VirtualPort(flash_dir=p)
        with board as vp, Session(vp.port, stop_firmware=False) as s:
            # a flash image has no chip id: name its archive after the image
            res = pull(
                s, out_dir, log_root=log_root, serial=serial, fallback_serial="virtual-" + p.stem
            )
    else:
        with Session(resolve_port(src)) as s:
            res = pull(s, out_dir, log_root=log_root, serial=serial)
    dest = Path(res["archive"])
    rows = session_rows(dest)
    if not rows:
        raise InvalidInput(f"no treatment sessions in the log of device {res['serial']}")
    sess = session if session is not None else rows[-1]["session"]
    png, pdf = write_report(dest, sess, out_dir)
    res.update(
        session=sess,
        png=str(png),
        pdf=str(pdf),
        csv=str(export_session(dest, sess, "csv", out_dir / f"session{sess:05d}.csv")),
        json=str(export_session(dest, sess, "json", out_dir / f"session{sess:05d}.json")),
    )
    return res


# -- CLI -----------------------------------------------------------------
def register(subparsers):
    p = subparsers.add_parser("logs", help="list, pull, export and report treatment logs")
    add_port_argument(p)
    p.add_argument(
        "--archive",
        help=f"archive folder or postgresql:// URL (default ${ENV_ARCHIVE} or ./cryo-archive)",
    )
    p.add_argument("--serial", help="device serial in the archive (offline commands)")
    p.add_argument(
        "--log-root", default=LOG_ROOT, help=f"log folder on the device (default {LOG_ROOT})"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub = p.add_subparsers(dest="logs_cmd", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="list sessions (pulls new records first unless --offline)")
    ls.add_argument("--offline", action="store_true", help="list the archive only")
    sub.add_parser("pull", help="copy new log records into the archive and verify them")
    ex = sub.add_parser("export", help="write a session as CSV or JSON")
    ex.add_argument("session", type=int, help="session number (see `cryo logs list`)")
    ex.add_argument("--format", choices=("csv", "json"), default="csv", help="file format")
    ex.add_argument("-o", "--output", type=Path, help="output file (- = standard output)")
    rp = sub.add_parser("report", help="write a session report for the clinic (PNG, PDF, JSON)")
    rp.add_argument("session", type=int, help="session number (see `cryo logs list`)")
    rp.add_argument("-o", "--output", type=Path, help="folder for the report files")
    for opt, what in (
        ("--patient", "patient reference (kept in the archive, never sent to the device)"),
        ("--lesion", "lesion reference"),
        ("--operator", "who treated"),
        ("--reviewer", "who reviewed and signs off the report"),
    ):
        rp.add_argument(opt, help=what)
    ev = sub.add_parser(
        "events",
        help="device events: faults, acks, boots, resets (pulls first unless --offline)",
    )
    ev.add_argument("--offline", action="store_true", help="show the archive only")
    ev.add_argument("--since", type=int, default=0, metavar="SEQ", help="only events after SEQ")
    p.set_defaults(func=cmd_logs)


def _do_pull(args) -> dict:
    from host_tools.connect import Session

    port = resolve_port(args.port)
    with Session(port) as s:
        if args.json or not sys.stdout.isatty():
            return pull(s, args.archive, log_root=args.log_root, database=args.database)
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        with Progress(
            TextColumn("pull"), BarColumn(), DownloadColumn(), TransferSpeedColumn()
        ) as pr:
            task = pr.add_task("pull", total=None)

            def progress(n, total):
                if total is not None:
                    pr.update(task, total=total)
                pr.update(task, advance=n)

            return pull(
                s, args.archive, log_root=args.log_root, progress=progress, database=args.database
            )


def cmd_logs(args) -> int:
    from host_tools.archive_db.location import locate

    where = locate(args.archive)  # a folder, or a database URL (raw records: $CRYO_ARCHIVE_DIR)
    archive = args.archive = where.folder
    args.database = where.url
    if args.logs_cmd == "pull":
        res = _do_pull(args)
        if args.json:
            print(json.dumps(res, indent=2, default=str))
        else:
            v = res["verify"]
            rate = res["bytes"] / res["seconds"] / 1024 if res["seconds"] else 0
            print(
                f"pulled {res['bytes']} new bytes from device {res['serial']} into "
                f"{res['archive']} ({rate:.0f} KiB/s); {v['records']} records, "
                f"CRC errors {len(v['crc_errors'])}, sequence gaps {len(v['sequence_gaps'])}, "
                f"audit {'ok' if v['audit'].get('ok') else 'BROKEN'}; "
                f"device events {res['events']['new']} new ({res['events']['records']} archived)"
            )
            for msg in res["events"]["problems"]:
                print(f"warning: {msg}", file=sys.stderr)
            for msg in v["audit"].get("problems", [])[:1]:
                print(f"audit trail: first problem: {msg}", file=sys.stderr)
        if not res["verify"]["ok"]:
            raise InvalidInput("the pulled log failed verification (see above); archive kept")
        return 0
    if args.logs_cmd == "list":
        if args.offline:
            dest = find_device_archive(archive, args.serial)
        else:
            dest = Path(_do_pull(args)["archive"])
        rows = session_rows(dest)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"treatment sessions — device {dest.name}")
        for col in ("session", "date (UTC)", "duration s", "min °C", "cycles", "faults", "outcome"):
            t.add_column(col, justify="right" if col != "outcome" else "left")
        for r in rows:
            t.add_row(
                str(r["session"]),
                r["date"],
                "" if r["duration_s"] is None else f"{r['duration_s']:.1f}",
                "" if r["min_temp_c"] is None else f"{r['min_temp_c']:.1f}",
                "" if r["cycles"] is None else str(r["cycles"]),
                str(r["faults"]),
                r["outcome"],
            )
        Console().print(t)
        return 0
    if args.logs_cmd == "events":
        return _cmd_events(args, archive)
    dest = find_device_archive(archive, args.serial)
    if args.logs_cmd == "export":
        out = export_session(dest, args.session, args.format, args.output)
        if str(out) != "-":
            print(json.dumps({"file": str(out)}) if args.json else f"wrote {out}")
        return 0
    if args.logs_cmd == "report":
        from host_tools import archive_index
        from host_tools.clinical import clinical_fields
        from host_tools.report import write_report

        have = [r["session"] for r in archive_index.sessions(archive_index.update(dest))]
        if args.session not in have:
            raise InvalidInput(f"no session {args.session} in {dest} (sessions: {have or 'none'})")
        clinical_fields(
            dest,
            args.session,
            patient_ref=args.patient,
            lesion_ref=args.lesion,
            operator=args.operator,
            reviewer=args.reviewer,
        )
        png, pdf = write_report(dest, args.session, args.output or dest)
        if args.json:
            print(
                json.dumps(
                    {"png": str(png), "pdf": str(pdf), "json": str(png.with_suffix(".json"))}
                )
            )
        else:
            print(f"wrote {png}\nwrote {pdf}")
        return 0
    raise CryoError(f"unknown logs action {args.logs_cmd}")


def _cmd_events(args, archive: Path) -> int:
    if args.offline:
        dest = find_device_archive(archive, args.serial)
        merged = None
    else:
        res = _do_pull(args)
        dest = Path(res["archive"])
        merged = res["events"]
    rows = event_rows(dest, args.since)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title=f"device events — device {dest.name}")
    for col in ("seq", "date (UTC)", "ticks s", "kind", "condition", "detail"):
        t.add_column(col, justify="right" if col in ("seq", "ticks s") else "left")
    for r in rows:
        t.add_row(
            str(r["seq"]),
            r["date"] or "no RTC",
            f"{r['t_ms'] / 1000:.1f}",
            r["kind_name"],
            r["condition"] or "",
            r["detail"],
        )
    console.print(t)
    for msg in (merged or {}).get("problems", []):
        console.print(f"[bold red]warning:[/] {msg}")
    st = safety_state(dest)
    if st is not None:
        console.print(
            f"safety state (as last pulled): latched {', '.join(st['latched_names']) or 'none'}; "
            f"site dose {st['site_dose']}; flags {', '.join(st['flag_names']) or 'none'}; "
            f"boots {st['boots']}; last reset {st['last_reset_name']}"
            + (" — LOST: " + st["problem"] if st.get("lost") else "")
        )
    return 0
