"""Verifying a pulled archive: every record's CRC and the sequence chain
(through the archive index, from where the last verification ended) and
the audit trail's hash chain."""

from __future__ import annotations

from pathlib import Path

from host_tools import fwimport  # noqa: F401  (firmware/ importable)

# isort: split


def verify_archive(dest: Path, idx=None, saved_mark=None) -> dict:
    """Every record's CRC and the sequence chain (through the archive index);
    the audit trail's hash chain from where the last verification ended.
    ``saved_mark``: ``archive_index.mark`` of the index as loaded (the index
    is written only when the verification moved it on)."""
    from host_tools.archive import index as archive_index

    idx = archive_index.update(dest) if idx is None else idx
    st = idx["state"]
    audit = verify_audit(Path(dest) / "audit", idx)
    if audit.get("ok", True):
        if archive_index.mark(idx) != saved_mark or not (Path(dest) / archive_index.INDEX).exists():
            archive_index.save(dest, idx)
        else:
            archive_index.remember(dest, idx)
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
