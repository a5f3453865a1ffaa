"""`cryo archive`: query, re-index and inspect the treatment archive database.

    cryo archive query sessions [--device S] [--since D] [--until D] [--outcome O]
                                [--fault F|any] [--target-reached yes|no]
                                [--clock-not-set] [--wide]
    cryo archive query devices  [--firmware VERSION|HASH] [--min-valve-cycles N]
                                [--pulled-since D] [--pulled-before D] [--wide]
    cryo archive reindex [--from FOLDER ...]
    cryo archive status

Tables on a terminal (the columns that fit 80 characters; ``--wide`` all
of them), ``--json`` or ``--csv`` for programs (all columns). ``--archive``
(or ``$CRYO_ARCHIVE``) names a folder (its SQLite file) or a
``postgresql://`` URL. Dates and times are UTC unless they carry an
offset, which converts them to UTC: both databases compare the same
instant.
"""

from __future__ import annotations

import csv
import datetime as _dt
import sys
from pathlib import Path

from host_tools.commands import output
from host_tools.errors import InvalidInput

YES_NO = {"yes": True, "no": False}


def _date(text: str, what: str) -> _dt.datetime:
    """A naive UTC datetime: a date is its UTC midnight, an offset is converted."""
    try:
        t = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{what} {text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM "
            "(UTC), or with an offset, YYYY-MM-DDTHH:MM+HH:MM"
        ) from None
    if t.tzinfo is not None:
        t = t.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return t


def _one_of(value, allowed, what):
    if value is not None and value not in allowed:
        raise InvalidInput(f"{what} {value!r} is not one of: {', '.join(allowed)}")
    return value


def register(subparsers):
    from host_tools.archive_db.location import ENV_ARCHIVE

    p = subparsers.add_parser("archive", help="query and re-index the treatment archive database")
    p.add_argument(
        "--archive",
        help=f"archive folder or postgresql:// URL (default ${ENV_ARCHIVE} or ./cryo-archive)",
    )
    out = p.add_mutually_exclusive_group()
    output.add_json_argument(out)
    out.add_argument("--csv", action="store_true", help="CSV on standard output")
    sub = p.add_subparsers(dest="archive_cmd", metavar="ACTION", required=True)
    q = sub.add_parser("query", help="sessions or devices matching filters")
    qs = q.add_subparsers(dest="what", metavar="WHAT", required=True)
    s = qs.add_parser("sessions", help="treatment sessions, oldest first")
    s.add_argument("--device", metavar="SERIAL", help="one device")
    s.add_argument("--since", metavar="DATE", help="started on or after (UTC)")
    s.add_argument("--until", metavar="DATE", help="started before (UTC)")
    s.add_argument("--outcome", metavar="OUTCOME", help="completed, stopped, fault, ...")
    s.add_argument("--fault", metavar="CONDITION", help="an interlock condition, or 'any'")
    s.add_argument("--target-reached", metavar="yes|no", help="tissue reached the target")
    s.add_argument(
        "--clock-not-set",
        action="store_true",
        help="only sessions from a board whose clock was not set (in no date range)",
    )
    s.add_argument("--limit", type=int, help="at most N sessions")
    s.add_argument("--wide", action="store_true", help="every column in the table")
    d = qs.add_parser("devices", help="devices: firmware, valve wear, last pull")
    d.add_argument(
        "--firmware",
        metavar="VERSION|HASH",
        help="devices running this firmware version, or the build whose hash starts so "
        "(8 or more hex digits)",
    )
    d.add_argument("--min-valve-cycles", type=int, metavar="N", help="valve cycles >= N")
    d.add_argument("--pulled-since", metavar="DATE", help="last pulled on or after (UTC)")
    d.add_argument("--pulled-before", metavar="DATE", help="last pulled before, or never (UTC)")
    d.add_argument("--wide", action="store_true", help="every column in the table")
    ri = sub.add_parser("reindex", help="rebuild the database from the raw records")
    ri.add_argument(
        "--from",
        dest="folders",
        action="append",
        type=Path,
        metavar="FOLDER",
        help="archive folder(s) of raw records (default: the archive's own)",
    )
    sub.add_parser("status", help="schema revision and row counts")
    u = sub.add_parser("user", help="add a dashboard user or change their role and password")
    u.add_argument("name", help="user name")
    u.add_argument("--role", required=True, help="operator, engineer or service")
    u.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p.set_defaults(func=cmd_archive)


def session_filters(args) -> dict:
    from host_tools.archive_db import query

    return {
        "device": args.device,
        "since": _date(args.since, "--since") if args.since else None,
        "until": _date(args.until, "--until") if args.until else None,
        "outcome": _one_of(args.outcome, query.OUTCOMES, "--outcome"),
        "fault": _one_of(args.fault, query.FAULTS, "--fault"),
        "target_reached": YES_NO[_one_of(args.target_reached, tuple(YES_NO), "--target-reached")]
        if args.target_reached
        else None,
        "clock_not_set": bool(args.clock_not_set),
    }


def device_filters(args) -> dict:
    if args.min_valve_cycles is not None and args.min_valve_cycles < 0:
        raise InvalidInput(f"--min-valve-cycles {args.min_valve_cycles} must be 0 or more")
    return {
        "firmware": args.firmware,
        "min_valve_cycles": args.min_valve_cycles,
        "pulled_since": _date(args.pulled_since, "--pulled-since") if args.pulled_since else None,
        "pulled_before": _date(args.pulled_before, "--pulled-before")
        if args.pulled_before
        else None,
    }


def emit(rows: list[dict], columns, args, title: str):
    if args.json:
        output.emit(args, rows)
    elif args.csv:
        w = csv.DictWriter(sys.stdout, fieldnames=list(columns), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    else:
        from host_tools.archive_db.table_view import print_table

        print_table(rows, columns, title, wide=args.wide)


def cmd_archive(args) -> int:
    from host_tools.archive_db import indexer, location, query, store

    where = location.locate(args.archive)
    if args.archive_cmd == "query":
        # check the arguments before opening (and perhaps creating) a database
        if args.what == "sessions":
            filters = session_filters(args)
            if args.limit is not None and args.limit < 1:
                raise InvalidInput(f"--limit {args.limit} must be 1 or more")
        else:
            filters = device_filters(args)
        engine = store.open_engine(where.url)
        with engine.connect() as conn:
            if args.what == "sessions":
                rows = query.sessions(conn, limit=args.limit, **filters)
                emit(rows, query.SESSION_COLUMNS, args, "sessions")
            else:
                rows = query.devices(conn, **filters)
                emit(rows, query.DEVICE_COLUMNS, args, "devices")
        engine.dispose()
        return 0
    engine = store.open_engine(where.url)
    try:
        if args.archive_cmd == "reindex":
            folders = args.folders or [where.folder]
            for f in folders:
                if not f.is_dir():
                    raise InvalidInput(f"--from {f}: no such archive folder")
            with output.Progress(args, "reindex", unit="devices") as bar:
                done = indexer.reindex(engine, folders, progress=bar)
            n = sum(d["sessions"] for d in done)
            where_from = ", ".join(map(str, folders))
            output.emit(
                args, done, f"re-indexed {len(done)} devices, {n} sessions from {where_from}"
            )
            return 0
        if args.archive_cmd == "user":
            return _cmd_user(engine, args)
        counts = {k: len(v) for k, v in indexer.dump(engine).items()}
        status = {
            "database": store.redact(where.url),
            "revision": store.revision(engine),
            "rows": counts,
        }
        rows = ", ".join(f"{n} {k}" for k, n in counts.items())
        output.emit(args, status, f"{status['database']} at revision {status['revision']}: {rows}")
        return 0
    finally:
        engine.dispose()


def _cmd_user(engine, args) -> int:
    from host_tools.archive_db import users

    users.check_role(args.role)  # before asking for a password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif _interactive():
        import getpass

        password = getpass.getpass(f"password for {args.name}: ")
    else:
        raise InvalidInput("no terminal to ask the password on: pipe it in with --password-stdin")
    users.set_user(engine, args.name, args.role, password)
    output.emit(args, {"user": args.name, "role": args.role}, f"user {args.name}: role {args.role}")
    return 0


def _interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, OSError, ValueError):
        return False
