"""The questions service and quality staff ask of the archive, as SQL on its tables.

Sessions by device, date range, outcome, fault and whether the target was
reached; devices by firmware, valve cycles and last pull. Rows come back
as plain dicts (JSON- and CSV-ready: dates as ISO strings, temperatures in
degC). Filters are checked by the caller (``cli``); the allowed values are
defined here once. Dates are naive UTC. A session whose board clock was
not set has no start (None): no date range holds it, nor any week of the
fleet charts; ``clock_not_set`` asks for those sessions.
"""

from __future__ import annotations

import datetime as _dt

import sqlalchemy as sa

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.archive_db import tables as T

# isort: split
from cryo.interlock.conditions import NAMES as CONDITIONS
from cryo.storage.records import OUTCOME_NAMES, TISSUE_SCALE

OUTCOMES = tuple(OUTCOME_NAMES) + ("open",)  # "open": no summary yet
ANY_FAULT = "any"
FAULTS = (ANY_FAULT,) + tuple(CONDITIONS)

SESSION_COLUMNS = (
    "serial",
    "session",
    "started_at",
    "outcome",
    "target_reached",
    "duration_s",
    "min_temp_c",
    "target_c",
    "cycles_done",
    "valve_cycles",
    "faults",
    "conditions",
    "fw_version",
)
DEVICE_COLUMNS = (
    "serial",
    "board_id",
    "fw_version",
    "fw_hash",
    "sessions",
    "first_session_at",
    "last_session_at",
    "lifetime_valve_cycles",
    "valve_cycles",
    "valve_open_s",
    "latched",
    "boots",
    "last_reset",
    "last_pull_at",
    "last_pull_by",
)


def _iso(v):
    return v.isoformat(sep=" ") if isinstance(v, _dt.datetime) else v


def _temp(cc):
    return None if cc is None else round(cc / TISSUE_SCALE, 2)


FW_HASH_MIN = 8  # hex digits of a firmware hash that name a build in a filter


def short_hash(h: str | None) -> str | None:
    """A firmware hash as people compare it (its first 12 hex digits, like git)."""
    return None if h is None else h[:12]


def is_hash_prefix(text: str) -> bool:
    return len(text) >= FW_HASH_MIN and all(c in "0123456789abcdef" for c in text.lower())


def session_filter(
    device=None,
    since=None,
    until=None,
    outcome=None,
    fault=None,
    target_reached=None,
    clock_not_set=False,
):
    """The WHERE clause of a session query (``until`` is exclusive)."""
    s = T.session.c
    where = []
    if clock_not_set:
        where.append(s.started_at.is_(None))
    if device:
        where.append(s.serial == device)
    if since is not None:
        where.append(s.started_at >= since)
    if until is not None:
        where.append(s.started_at < until)
    if outcome:
        where.append(s.outcome == outcome)
    if target_reached is not None:
        where.append(s.target_reached == bool(target_reached))
    if fault == ANY_FAULT:
        where.append(s.faults > 0)
    elif fault:
        f = T.fault.alias("named").c  # its own name: the conditions query joins fault too
        where.append(
            sa.exists().where(
                sa.and_(f.serial == s.serial, f.session == s.session, f.condition == fault)
            )
        )
    return sa.and_(sa.true(), *where)


def count_sessions(conn, **filters) -> int:
    return conn.execute(
        sa.select(sa.func.count()).select_from(T.session).where(session_filter(**filters))
    ).scalar_one()


def sessions(conn, limit=None, newest_first=False, **filters) -> list[dict]:
    """Sessions matching ``filters`` (see :func:`session_filter`), oldest first (or newest)."""
    s = T.session.c
    where = session_filter(**filters)
    order = [s.started_at, s.serial, s.session]
    if newest_first:
        order = [c.desc() for c in order]
    # clock not set: after the dated ones either way (SQLite and PostgreSQL differ by default)
    order[0] = order[0].nulls_last()
    stmt = sa.select(T.session).where(where).order_by(*order)
    if limit:
        stmt = stmt.limit(limit)
    rows = conn.execute(stmt).mappings().all()
    conditions: dict[tuple, list[str]] = {}
    if any(r["faults"] for r in rows):
        f = T.fault.c
        found = conn.execute(
            sa.select(f.serial, f.session, f.condition)
            .join(T.session, sa.and_(s.serial == f.serial, s.session == f.session))
            .where(where)
            .order_by(f.serial, f.seq)
        )
        for serial, number, cond in found:
            conditions.setdefault((serial, number), []).append(cond)
    return [
        {
            "serial": r["serial"],
            "session": r["session"],
            "started_at": _iso(r["started_at"]),
            "outcome": r["outcome"],
            "target_reached": bool(r["target_reached"]),
            "duration_s": None if r["duration_ms"] is None else r["duration_ms"] / 1000,
            "min_temp_c": _temp(r["min_cc"]),
            "target_c": _temp(r["target_cc"]),
            "cycles_done": r["cycles_done"],
            "valve_cycles": r["valve_cycles"],
            "faults": r["faults"],
            "conditions": ",".join(conditions.get((r["serial"], r["session"]), [])),
            "fw_version": r["fw_version"],
        }
        for r in rows
    ]


def _wear(d):
    """A device's valve cycles: the lifetime count where the firmware keeps one."""
    return sa.func.coalesce(d.lifetime_valve_cycles, d.valve_cycles)


def devices(
    conn, firmware=None, min_valve_cycles=None, pulled_since=None, pulled_before=None
) -> list[dict]:
    """Devices with their newest firmware, valve wear and last pull."""
    d, p = T.device.c, T.pull.c
    last = sa.select(p.serial, sa.func.max(p.at).label("at")).group_by(p.serial).subquery()
    newest = (
        sa.select(p.serial, p.at, sa.func.min(p.who).label("who"))
        .join(last, sa.and_(last.c.serial == p.serial, last.c.at == p.at))
        .group_by(p.serial, p.at)
        .subquery("newest")
    )
    stmt = (
        sa.select(T.device, newest.c.at.label("last_pull_at"), newest.c.who.label("last_pull_by"))
        .outerjoin(newest, newest.c.serial == d.serial)
        .order_by(d.serial)
    )
    if firmware:
        named = [d.fw_version == firmware]
        if is_hash_prefix(firmware):  # or the build itself, by its hash's first digits
            named.append(d.fw_hash.startswith(firmware.lower()))
        stmt = stmt.where(sa.or_(*named))
    if min_valve_cycles is not None:
        stmt = stmt.where(_wear(d) >= min_valve_cycles)
    if pulled_since is not None:
        stmt = stmt.where(newest.c.at >= pulled_since)
    if pulled_before is not None:
        stmt = stmt.where(sa.or_(newest.c.at < pulled_before, newest.c.at.is_(None)))
    out = []
    for r in conn.execute(stmt).mappings():
        row = {k: _iso(r[k]) for k in DEVICE_COLUMNS if k in r}
        row["valve_open_s"] = r["valve_open_ms"] / 1000
        out.append({k: row[k] for k in DEVICE_COLUMNS})
    return out


def _week(day) -> str:
    if isinstance(day, str):  # SQLite's date() is text
        day = _dt.date.fromisoformat(day)
    y, w, _ = day.isocalendar()
    return "%d-W%02d" % (y, w)


def _day(conn, col):
    """The calendar day of a timestamp column, in the database's own SQL."""
    return sa.func.date(col) if conn.dialect.name == "sqlite" else sa.cast(col, sa.Date)


def fleet(conn) -> dict:
    """Fleet charts' data: faults and target-reached rate per ISO week, valve wear per device.

    Counted per day in SQL (one row per day, not per session), weeks formed
    here: the same on SQLite and PostgreSQL, whose week functions differ.
    Sessions whose clock was not set are in no week: ``clock_not_set``
    counts them.
    """
    f, s = T.fault.c, T.session.c
    faults: dict[str, int] = {}
    day = _day(conn, f.at)
    dated = sa.select(day, sa.func.count()).where(f.at.is_not(None)).group_by(day)
    for d, n in conn.execute(dated):
        faults[_week(d)] = faults.get(_week(d), 0) + n
    day = _day(conn, s.started_at)
    reached_col = sa.func.sum(sa.case((s.target_reached, 1), else_=0))
    closed = (
        sa.select(day, reached_col, sa.func.count())
        .where(sa.and_(s.outcome != "open", s.started_at.is_not(None)))
        .group_by(day)
    )
    reached: dict[str, list[int]] = {}
    for d, ok, n in conn.execute(closed):
        acc = reached.setdefault(_week(d), [0, 0])
        acc[0] += int(ok)
        acc[1] += n
    weeks = sorted(set(faults) | set(reached))
    d = T.device.c
    wear = conn.execute(sa.select(d.serial, _wear(d)).order_by(d.serial)).all()
    return {
        "weeks": weeks,
        "faults": [faults.get(w, 0) for w in weeks],
        "target_rate": [
            round(100 * reached[w][0] / reached[w][1], 1) if w in reached else None for w in weeks
        ],
        "clock_not_set": count_sessions(conn, clock_not_set=True),
        "devices": [r[0] for r in wear],
        "valve_cycles": [r[1] for r in wear],
    }
