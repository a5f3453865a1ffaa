"""Pulling a device's new log records into the archive: the archive's one writer.

Pull model. The firmware's treatment log (``cryo.storage.log``)
is a folder of append-only segment files; the audit trail is append-only
too. A pull copies, per file, only the bytes beyond what the local archive
already holds (``<archive>/<device serial>/logs/…``): incremental and
resumable — bytes land in the archive as they arrive. Its cost does not
grow with history: the device stats the segments from the newest one the
archive verified (it does not list the folder), and checks the archive's last 64 bytes of each growing
file (SHA-256), not its whole prefix.

Transfer (``host_tools.device.files``: the raw REPL, or a locked board's command
link): framed, CRC-checked and retried (``host_tools.device.transfer.fetch``),
read straight off the port in large blocks instead of ``mpremote fs cp``'s
one round trip per 256-byte chunk; see bench/bench_host.py for the ratio.

Verification: new records are decoded with the firmware's own reader
(``cryo.storage.segments.walk_segment``: every record's CRC-32, sequence numbers
across segments) through the archive index (``host_tools.archive.index``);
damaged ranges and sequence gaps are reported with their session, the audit
trail's hash chain is checked from the last verified entry. Only then is
the device told which sessions the host holds (``pulled`` marker), so it may
recycle their segments.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.errors import InvalidInput

# isort: split
from cryo.paths import AUDIT_PATH, LOG_ROOT
from cryo.storage.segments import PULLED
from host_tools.archive.events import DEVICE_DIR, device_file_names, merge_events, safety_state
from host_tools.archive.verify import verify_archive
from host_tools.device.files import ReplFiles

TAIL = 64  # bytes before the archived end compared with the device (bit rot, reset)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_range(path: Path, a: int, b: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(a)
        return f.read(b - a)


def _plan(src, log_root, audit_path, device_names, dest: Path, since) -> tuple[list, list]:
    """What to fetch: ``[(remote, local, offset, size)]`` and warnings.

    Growing files (segments, the audit trail) continue from the archived
    size once the device's bytes just before it match the archive; small
    state files are fetched whole when their CRC differs.
    """
    listing = src.ls(log_root, since)
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
    g_chk, s_chk = src.chk(grow, small)
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


def _fetch(src, plan, progress, stats) -> dict:
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

            end = src.fetch(r, have, sink, progress)
        copied[r] = end - have
    return copied


def pull(
    source,
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

    ``source``: an open ``Session`` (raw REPL) or a
    ``host_tools.device.files`` source (``LinkFiles``: a locked board's
    command link).
    Returns a summary dict (device serial, archive folder, files and bytes
    copied, throughput, verification result). ``serial`` overrides the
    archive folder name for a device that has no id of its own. The device
    event log and the safety state (``events_path``/``state_path``, default
    ``paths.DEVICE_EVENTS_PATH``/``SAFETY_STATE_PATH``) are copied whole
    when they changed, and new events join the archive's event history
    (:func:`merge_events`, result ``events``). The pull is then logged and
    indexed into the archive database (``database``: its URL, default the
    SQLite file beside ``archive``; result ``index``).
    """
    from host_tools.archive import index as archive_index

    if archive is None:
        from host_tools.archive_db.location import locate

        archive = locate().folder  # $CRYO_ARCHIVE may name a database: its raw records go elsewhere
    archive = Path(archive)
    src = source if hasattr(source, "fetch") else ReplFiles(source)
    serial = serial or src.serial() or fallback_serial
    dest = archive / serial
    t0 = time.perf_counter()
    stats = {"bytes": 0}
    device_names = device_file_names(events_path, state_path)
    # segments before the newest one verified are complete: not even listed
    idx = archive_index.load(dest)
    loaded = archive_index.mark(idx)
    since = idx["newest"]
    plan, warnings = _plan(src, log_root, audit_path, device_names, dest, since)
    if progress is not None:
        progress(0, sum(size - have for _, _, have, size in plan))
        cb = lambda n: progress(n, None)  # noqa: E731
    else:
        cb = None
    copied = _fetch(src, plan, cb, stats)
    dt = time.perf_counter() - t0

    def rel(prefix):
        return {
            str(Path(r).relative_to(prefix) if prefix else r): n
            for r, n in copied.items()
            if (r.startswith(prefix + "/") if prefix else not r.startswith(log_root + "/"))
        }

    files = rel(log_root)
    idx = archive_index.update(dest, persist=False, idx=idx)  # segments whose size changed
    check = verify_archive(dest, idx, loaded)
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
        "retries": src.retries,
        "warnings": warnings,
        "verify": check,
    }
    if mark and check["ok"] and check["complete_sessions"]:
        from cryo.storage import records as R

        upto = max(check["complete_sessions"])
        marker = dest / "logs" / PULLED
        held = R.decode_pulled(marker.read_bytes()) if marker.exists() else None
        if held is None or held < upto:
            data = R.encode_pulled(upto)
            src.mark_pulled(log_root, data, upto)
            marker.write_bytes(data)
        result["marked_pulled_upto"] = upto
    from host_tools.archive_db.hook import after_pull

    result["index"] = after_pull(archive, dest, result, src.port, database)
    (dest / "pull.json").write_text(json.dumps(result, indent=2, default=str))
    return result
