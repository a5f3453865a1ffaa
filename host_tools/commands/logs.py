"""`cryo logs` handlers: list, pull, events, export and report.

The pull itself is ``host_tools.archive.pull``; the archive's readers are
``host_tools.archive`` (reader, verify, events, index); the command table
is ``host_tools.cli``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.commands.output import Progress, console, emit, listing
from host_tools.device.connect import resolve_port
from host_tools.errors import CryoError, InvalidInput

# isort: split
from cryo.paths import LOG_ROOT
from host_tools.archive.events import event_rows, safety_state
from host_tools.archive.pull import pull
from host_tools.archive.reader import (
    export_session,
    find_device_archive,
    session_rows,
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
    from host_tools.device.connect import Session
    from host_tools.report import write_report

    out_dir = Path(out_dir)
    src = str(flash_image_or_port)
    p = Path(src)
    if p.exists():
        from host_tools.virtual.port import VirtualPort

        board = VirtualPort(image=p) if p.is_file() else VirtualPort(flash_dir=p)
        with board as vp, Session(vp.port, stop_firmware=False) as s:
            # a flash image has no chip id: name its archive after the image
            res = pull(
                s, out_dir, log_root=log_root, serial=serial, fallback_serial="virtual-" + p.stem
            )
    else:
        from host_tools.device.files import pull_source

        with pull_source(resolve_port(src)) as s:
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
def _do_pull(args) -> dict:
    from host_tools.device.files import pull_source

    port = resolve_port(args.port)
    with pull_source(port, args.pin) as s, Progress(args, "pull", unit="bytes") as bar:
        # a locked board is read over its command link, authenticated

        def progress(n, total):
            if total is not None:
                bar.total(total)
            bar.advance(n)

        return pull(s, args.archive, progress=progress, database=args.database)


def cmd_logs(args) -> int:
    from host_tools.archive_db.location import locate

    where = locate(args.archive)  # a folder, or a database URL (raw records: $CRYO_ARCHIVE_DIR)
    archive = args.archive = where.folder
    args.database = where.url
    if args.logs_cmd == "pull":
        res = _do_pull(args)
        emit(args, res, lambda: _print_pull(res))
        if not res["verify"]["ok"]:
            raise InvalidInput("the pulled log failed verification (see above); archive kept")
        return 0
    if args.logs_cmd == "list":
        if args.offline:
            dest = find_device_archive(archive, args.serial)
        else:
            dest = Path(_do_pull(args)["archive"])
        rows = session_rows(dest)
        emit(args, rows, lambda: _print_sessions(rows, dest))
        return 0
    if args.logs_cmd == "events":
        return _cmd_events(args, archive)
    dest = find_device_archive(archive, args.serial)
    if args.logs_cmd == "export":
        out = export_session(dest, args.session, args.format, args.output)
        if str(out) != "-":
            emit(args, {"file": str(out)}, f"wrote {out}")
        return 0
    if args.logs_cmd == "report":
        return _cmd_report(args, dest)
    raise CryoError(f"unknown logs action {args.logs_cmd}")


def _print_pull(res):
    v = res["verify"]
    rate = res["bytes"] / res["seconds"] / 1024 if res["seconds"] else 0
    print(
        f"pulled {res['bytes']} new bytes from device {res['serial']} into "
        f"{res['archive']} ({rate:.0f} KiB/s); {v['records']} records, "
        f"CRC errors {len(v['crc_errors'])}, sequence gaps {len(v['sequence_gaps'])}, "
        f"audit {'ok' if v['audit'].get('ok') else 'BROKEN'}; "
        f"device events {res['events']['new']} new ({res['events']['records']} archived)"
    )
    i = res["index"]
    print(
        f"indexed {i['sessions']} new or changed sessions, {i['audit']} audit entries, "
        f"{i['device_events']} device events, {i['pulls']} pulls into {i['database']}"
    )
    for msg in res["events"]["problems"]:
        print(f"warning: {msg}", file=sys.stderr)
    for msg in v["audit"].get("problems", [])[:1]:
        print(f"audit trail: first problem: {msg}", file=sys.stderr)


def _print_sessions(rows, dest):

    from host_tools.archive.clinical import mss

    # the date never wrapped: whole in an 80-column pipe
    t = listing(f"treatment sessions — device {dest.name}")
    cols = ("session", "date (UTC)", "duration", "min °C", "cycles", "faults")
    for col in cols + ("valve cycles", "outcome"):
        justify = "right" if col != "outcome" else "left"
        t.add_column(col, justify=justify, no_wrap=col == "date (UTC)")
    for r in rows:
        t.add_row(
            str(r["session"]),
            r["date"],
            "" if r["duration_s"] is None else mss(r["duration_s"]),  # m:ss, as the report
            "" if r["min_temp_c"] is None else f"{r['min_temp_c']:.1f}",
            "" if r["cycles"] is None else str(r["cycles"]),
            str(r["faults"]),
            "" if r["valve_cycles"] is None else str(r["valve_cycles"]),
            r["outcome"],
        )
    console().print(t)


def _cmd_report(args, dest: Path) -> int:
    from host_tools.archive import index as archive_index
    from host_tools.archive.clinical import clinical_fields
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
    with Progress(args, "report", note="rendering PNG (300 dpi) and PDF"):
        png, pdf = write_report(dest, args.session, args.output or dest)
    files = {"png": str(png), "pdf": str(pdf), "json": str(png.with_suffix(".json"))}
    emit(args, files, f"wrote {png}\nwrote {pdf}")
    return 0


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
        emit(args, rows)
        return 0
    from rich.table import Table

    out = console()
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
    out.print(t)
    for msg in (merged or {}).get("problems", []):
        out.print(f"[bold red]warning:[/] {msg}")
    st = safety_state(dest)
    if st is not None:
        out.print(
            f"safety state (as last pulled): latched {', '.join(st['latched_names']) or 'none'}; "
            f"site dose {st['site_dose']}; flags {', '.join(st['flag_names']) or 'none'}; "
            f"boots {st['boots']}; last reset {st['last_reset_name']}; "
            f"solenoid cycles over its life {st['valve_cycles']}"
            + (" — LOST: " + st["problem"] if st.get("lost") else "")
        )
    return 0
