"""Index a device folder of raw records into the archive database.

One transaction per session (its row, events and faults replace whatever
an earlier, partial pull left), then one each for the audit entries, the
device events and the pulls: an interrupted pull leaves every session in
the database either as it was or as it now is, never half-written, and
the next index finishes the job. Each transaction first locks the
device's row, so two technicians indexing the same device into one
PostgreSQL archive take turns instead of racing on its rows.

Only sessions whose last record changed since the database saw them are
read again (compared by sequence number through the archive index,
``host_tools.archive.index``; an upgrade marks those it could not complete
with ``tables.REREAD_SEQ``): indexing costs O(new records).
"""

from __future__ import annotations

import getpass
import socket
from pathlib import Path

import sqlalchemy as sa

from host_tools.archive_db import records as raw
from host_tools.archive_db import tables as T


def _insert_ignore(conn, table, row):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(table).values(**row).on_conflict_do_nothing())


def _lock_device(conn, serial: str):
    _insert_ignore(conn, T.device, {"serial": serial})
    conn.execute(sa.select(T.device.c.serial).where(T.device.c.serial == serial).with_for_update())


def _refresh_device(conn, serial: str):
    """The device row's summary of its sessions (newest header, totals)."""
    s = T.session.c
    newest = conn.execute(
        sa.select(s.board_id, s.fw_version, s.fw_hash)
        .where(s.serial == serial)
        .order_by(s.session.desc())
        .limit(1)
    ).first()
    totals = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(s.valve_cycles), 0),
            sa.func.coalesce(sa.func.sum(s.valve_open_ms), 0),
            sa.func.min(s.started_at),
            sa.func.max(s.started_at),
        ).where(s.serial == serial)
    ).one()
    values = dict(
        sessions=totals[0],
        valve_cycles=totals[1],
        valve_open_ms=totals[2],
        first_session_at=totals[3],
        last_session_at=totals[4],
    )
    if newest is not None:
        values.update(board_id=newest[0], fw_version=newest[1], fw_hash=newest[2])
    conn.execute(sa.update(T.device).where(T.device.c.serial == serial).values(**values))


def _known_sessions(engine, serial) -> dict[int, int]:
    s = T.session.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.session, s.last_seq).where(s.serial == serial))
        return {r[0]: r[1] for r in rows}


def _store_session(engine, serial: str, sess):
    row = raw.session_row(serial, sess)
    events, faults = raw.event_rows(serial, sess)
    key = (serial, row["session"])
    with engine.begin() as conn:
        _lock_device(conn, serial)
        for table in (T.fault, T.event, T.session):
            conn.execute(
                sa.delete(table).where(sa.and_(table.c.serial == key[0], table.c.session == key[1]))
            )
        conn.execute(sa.insert(T.session), [row])
        if events:
            conn.execute(sa.insert(T.event), events)
        if faults:
            conn.execute(sa.insert(T.fault), faults)
        _refresh_device(conn, serial)


def _store_tail(engine, serial: str, table, key: str, rows_after):
    """Rows of an append-only record (the device events) beyond the newest stored."""
    with engine.begin() as conn:
        _lock_device(conn, serial)
        col = table.c[key]
        last = conn.execute(sa.select(sa.func.max(col)).where(table.c.serial == serial)).scalar()
        rows = rows_after(last if last is not None else -1)
        if rows:
            conn.execute(sa.insert(table), rows)
        return len(rows)


def _store_audit(engine, serial: str, dest: Path) -> int:
    """The trail's entries the database does not hold, known by their hashes.

    A trail that restarted its numbering (a wiped flash) is a new chain: its
    entries are new rows beside the old ones. Placeholders an upgrade left
    (``T.PENDING_HASH``) give way to the entries of the trail read here.
    """
    rows = raw.audit_rows(serial, dest)
    if not rows:
        return 0
    a = T.audit.c
    with engine.begin() as conn:
        _lock_device(conn, serial)
        have = set(conn.execute(sa.select(a.hash).where(a.serial == serial)).scalars())
        if any(h.startswith(T.PENDING_HASH) for h in have):
            pending = sa.and_(a.serial == serial, a.hash.startswith(T.PENDING_HASH))
            conn.execute(sa.delete(T.audit).where(pending))
        new = [r for r in rows if r["hash"] not in have]
        if new:
            conn.execute(sa.insert(T.audit), new)
        return len(new)


def _store_state(engine, serial: str, dest: Path):
    from host_tools.archive import events as archive_events

    st = archive_events.safety_state(dest) if (dest / archive_events.DEVICE_DIR).is_dir() else None
    values = {"latched": None, "boots": None, "last_reset": None, "state_problem": None}
    if st is not None:
        values = {
            "latched": ",".join(st["latched_names"]),
            "boots": st["boots"],
            "last_reset": st["last_reset_name"],
            "state_problem": st.get("problem"),
        }
    s = T.session.c
    with engine.begin() as conn:
        _lock_device(conn, serial)
        lifetime = st.get("valve_cycles") if st is not None and not st.get("lost") else None
        if lifetime is None:  # no state (or an older one): the newest session's count
            lifetime = conn.execute(
                sa.select(s.lifetime_valve_cycles)
                .where(sa.and_(s.serial == serial, s.lifetime_valve_cycles.is_not(None)))
                .order_by(s.session.desc())
                .limit(1)
            ).scalar()
        values["lifetime_valve_cycles"] = lifetime
        conn.execute(sa.update(T.device).where(T.device.c.serial == serial).values(**values))


def _store_pulls(engine, serial: str, dest: Path) -> int:
    p = T.pull.c
    with engine.begin() as conn:
        _lock_device(conn, serial)
        have = {
            tuple(r) for r in conn.execute(sa.select(p.at, p.who, p.host).where(p.serial == serial))
        }
        rows = [
            r for r in raw.pull_rows(serial, dest) if (r["at"], r["who"], r["host"]) not in have
        ]
        if rows:
            conn.execute(sa.insert(T.pull), rows)
        return len(rows)


def index_device(engine, dest: Path, on_session=None) -> dict:
    """Bring the database up to date with one device folder ``<archive>/<serial>``.

    ``on_session(number)`` is called after each session's transaction
    committed. Returns counts of what was written.
    """
    from host_tools.archive import index as archive_index

    dest = Path(dest)
    serial = dest.name
    out = {"serial": serial, "sessions": 0, "audit": 0, "device_events": 0, "pulls": 0}
    if (dest / "logs").is_dir():
        idx = archive_index.update(dest, persist=False)  # the pull decides what it saves
        known = _known_sessions(engine, serial)
        todo = [s for s in archive_index.sessions(idx) if known.get(s["session"]) != s["last_seq"]]
        if todo:
            wanted = {s["session"] for s in todo}
            read = raw.read_sessions(dest, wanted, min(s["first_seq"] for s in todo))
            for number in sorted(read):
                _store_session(engine, serial, read[number])
                out["sessions"] += 1
                if on_session is not None:
                    on_session(number)
    out["audit"] = _store_audit(engine, serial, dest)
    out["device_events"] = _store_tail(
        engine, serial, T.device_event, "seq", lambda s: raw.device_event_rows(serial, dest, s)
    )
    _store_state(engine, serial, dest)
    out["pulls"] = _store_pulls(engine, serial, dest)
    return out


def device_folders(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if (p / "logs").is_dir() or (p / raw.PULL_LOG).exists()
    )


def reindex(engine, folders, progress=None) -> list[dict]:
    """Empty the database and index every device folder under ``folders`` again.

    ``progress``: called with 1 after each device (``total`` told first)."""
    with engine.begin() as conn:
        for table in T.DATA_TABLES:
            conn.execute(sa.delete(table))
    devices = [d for f in folders for d in device_folders(f)]
    if progress is not None:
        progress.total(len(devices))
    done = []
    for d in devices:
        done.append(index_device(engine, d))
        if progress is not None:
            progress(1)
    return done


def record_pull(dest: Path, result: dict, port=None, when=None):
    """Append who pulled ``result`` (a ``logs.pull`` result), when and from where."""
    import datetime as _dt

    import cryo

    raw.append_pull(
        dest,
        {
            "at": when or _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None),
            "who": getpass.getuser(),
            "host": socket.gethostname(),
            "port": None if port is None else str(port),
            "bytes": result["bytes"],
            "records": result["verify"]["records"],
            "ok": bool(result["verify"]["ok"]),
            "tool_version": cryo.VERSION,
        },
    )


def dump(engine) -> dict[str, list[tuple]]:
    """Every row of every table, in key order, as plain values (comparisons, tests)."""
    out = {}
    with engine.connect() as conn:
        for table in T.DATA_TABLES:
            order = list(table.primary_key.columns)
            rows = conn.execute(sa.select(table).order_by(*order)).all()
            out[table.name] = [tuple(_plain(v) for v in r) for r in rows]
    return out


def _plain(v):
    return int(v) if isinstance(v, bool) else v
