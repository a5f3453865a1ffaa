"""The archive database on SQLite: indexed at pull, re-indexed from the raw records, migrated.

The logs are written by the firmware's own TreatmentLog under MicroPython
(tests/archive/treatments.py says what each session is) and pulled from
virtual boards through real mpremote.
"""

import pytest
import sqlalchemy as sa
import treatments

from host_tools.archive_db import indexer, location, query, store
from host_tools.archive_db import tables as T


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    """Virtual boards: a has sessions 1..6 (days 0..15), b has 1..3 (days 40..46),
    c has 1..3 logged with its clock never set (firmware 0.3.0; its third a fault)."""
    d = tmp_path_factory.mktemp("boards")
    treatments.write(d / "a" / "flash.img", 6)
    treatments.write(d / "b" / "flash.img", 3, start_day=40, fw="0.2.0")
    treatments.write(d / "c" / "flash.img", 3, fw="0.3.0", clock=False)
    return d


def _open(folder):
    return store.open_engine(location.locate(folder).url)


def test_pull_indexes_every_session_event_fault_audit_entry_and_pull(mpy, tmp_path, boards):
    arch = tmp_path / "archive"
    r = treatments.pull(boards / "a" / "flash.img", arch, "virtual-a")
    assert r["index"]["sessions"] == 6 and r["index"]["pulls"] == 1
    assert (arch / location.SQLITE_NAME).exists()  # beside the raw records, no set-up
    engine = _open(arch)
    with engine.connect() as conn:
        rows = query.sessions(conn)
    assert [(x["session"], x["outcome"], x["target_reached"], x["valve_cycles"]) for x in rows] == [
        (e["session"], e["outcome"], e["target_reached"], e["valve_cycles"])
        for e in map(treatments.expected, range(6))
    ]
    assert [x["conditions"] for x in rows] == [
        e["fault"] or "" for e in map(treatments.expected, range(6))
    ]
    dump = indexer.dump(engine)
    assert len(dump["audit"]) == 2 and len(dump["device_event"]) == 3  # a boot, two faults
    with engine.connect() as conn:
        (dev,) = query.devices(conn)
    assert (dev["latched"], dev["boots"], dev["last_reset"]) == ("dose,no_cool", 6, "unknown")
    # the firmware image's hash and the configuration's, each where it belongs
    assert dev["fw_version"] == "0.1.0" and dev["fw_hash"] == treatments.fw_hash("0.1.0")
    with engine.connect() as conn:
        hashes = conn.execute(sa.select(T.session.c.fw_hash, T.session.c.config_hash)).all()
    assert set(hashes) == {(treatments.fw_hash("0.1.0"), treatments.CONFIG_HASH)}
    # the solenoid's lifetime count: the safety state's, and each session's valve-cycle event
    assert dev["lifetime_valve_cycles"] == treatments.expected(5)["lifetime_valve_cycles"] == 19
    with engine.connect() as conn:
        lifetimes = conn.execute(
            sa.select(T.session.c.lifetime_valve_cycles).order_by(T.session.c.session)
        ).scalars()
        assert list(lifetimes) == [
            treatments.expected(i)["lifetime_valve_cycles"] for i in range(6)
        ]
    assert len(dump["event"]) == sum(treatments.expected(i)["events"] for i in range(6))
    # the session row points at its records in the raw log
    with engine.connect() as conn:
        first = conn.execute(sa.select(T.session).where(T.session.c.session == 1)).mappings().one()
    seg = (arch / "virtual-a" / "logs" / first["first_segment"]).read_bytes()
    from cryo.storage import records as R

    rec, _ = R.decode_frame(seg, first["first_offset"])
    assert rec["type"] == "session" and rec["session"] == 1 and rec["seq"] == first["first_seq"]
    engine.dispose()


def test_incremental_pulls_then_reindex_reproduce_the_database(mpy, tmp_path, boards):
    img = tmp_path / "a.img"
    img.write_bytes((boards / "a" / "flash.img").read_bytes())
    arch = tmp_path / "archive"
    treatments.pull(img, arch, "virtual-a")
    treatments.pull(boards / "b" / "flash.img", arch, "virtual-b")
    treatments.write(img, 2)  # two more sessions on board a
    again = treatments.pull(img, arch, "virtual-a")
    assert again["index"]["sessions"] == 2  # only the new ones were read and written
    engine = _open(arch)
    before = indexer.dump(engine)
    assert len(before["session"]) == 11 and len(before["pull"]) == 3
    assert len(before["audit"]) == 4 + 2  # board a wrote its two entries twice
    # re-index into a fresh database, and in place: the same rows
    fresh = store.open_engine("sqlite:///" + str(tmp_path / "fresh.sqlite3"))
    indexer.reindex(fresh, [arch])
    assert indexer.dump(fresh) == before
    indexer.reindex(engine, [arch])
    assert indexer.dump(engine) == before
    engine.dispose()
    fresh.dispose()


def _url(kind, tmp_path, request):
    """A fresh, empty database of ``kind``."""
    if kind == "sqlite":
        return "sqlite:///" + str(tmp_path / f"{kind}.sqlite3")
    return location.database_url(request.getfixturevalue("pg_url"))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_interrupted_index_leaves_whole_sessions_and_the_next_one_finishes(
    mpy, tmp_path, boards, kind, request
):
    arch = tmp_path / "archive"
    treatments.pull(boards / "a" / "flash.img", arch, "virtual-a")
    complete = indexer.dump(_open(arch))
    engine = store.open_engine(_url(kind, tmp_path, request))

    def cut(number):
        if number == 3:
            raise KeyboardInterrupt  # the technician's Ctrl-C after session 3 committed

    with pytest.raises(KeyboardInterrupt):
        indexer.index_device(engine, arch / "virtual-a", on_session=cut)
    part = indexer.dump(engine)
    assert [r[1] for r in part["session"]] == [1, 2, 3]
    assert {r[2] for r in part["event"]} == {1, 2, 3}  # every event of those, none of later ones
    assert part["event"] == [r for r in complete["event"] if r[2] <= 3]
    assert part["fault"] == [r for r in complete["fault"] if r[2] <= 3]
    done = indexer.index_device(engine, arch / "virtual-a")
    assert done["sessions"] == 3
    assert indexer.dump(engine) == complete
    engine.dispose()


def _as_the_first_revision_wrote_it(table, row):
    """A row as the tool of revision 0001 wrote it: an unset clock's start was 2000-01-01."""
    import datetime as dt

    epoch = dt.datetime(2000, 1, 1)
    if table is T.session and row["started_at"] is None:
        return dict(row, started_at=epoch)
    if table is T.fault and row["at"] is None:
        return dict(row, at=epoch + dt.timedelta(milliseconds=row["t_ms"]))
    if table is T.device and row["sessions"] and row["first_session_at"] is None:
        return dict(row, first_session_at=epoch, last_session_at=epoch)
    return row


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_archive_indexed_at_the_first_revision_upgrades_to_what_a_reindex_gives(
    mpy, tmp_path, boards, kind, request
):
    arch = tmp_path / "archive"
    for board in ("a", "c"):
        treatments.pull(boards / board / "flash.img", arch, f"virtual-{board}")
    fresh = store.open_engine("sqlite:///" + str(tmp_path / "fresh.sqlite3"))
    indexer.reindex(fresh, [arch])
    want = indexer.dump(fresh)
    # the same pulls as the tool at revision 0001 indexed them: its columns, its dates
    url = _url(kind, tmp_path, request)
    engine = store.engine_for(url)
    store.upgrade(engine, "0001")
    with fresh.connect() as src, engine.begin() as conn:
        tables = sa.inspect(conn).get_table_names()
        for table in reversed(T.DATA_TABLES):  # parents first
            if table.name not in tables:
                continue
            had = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
            rows = [
                {
                    k: v
                    for k, v in _as_the_first_revision_wrote_it(table, dict(r)).items()
                    if k in had
                }
                for r in src.execute(sa.select(table)).mappings()
            ]
            old = sa.table(
                table.name, *(sa.column(c.name, c.type) for c in table.c if c.name in had)
            )
            if rows:
                conn.execute(sa.insert(old), rows)
    engine.dispose()
    fresh.dispose()
    engine = store.open_engine(url)
    assert store.revision(engine) == store.head_revision() == "0005"
    s = T.session.c
    with engine.connect() as conn:
        # an unset clock is no date any more, at once; the rest waits for the records
        assert conn.execute(
            sa.select(s.serial).where(s.started_at.is_(None)).distinct()
        ).scalars().all() == ["virtual-c"]
        assert query.count_sessions(conn, clock_not_set=True) == 3
        assert conn.execute(sa.select(sa.func.count()).select_from(T.audit)).scalar() == 4
        reread = conn.execute(sa.select(sa.func.count()).where(s.last_seq == T.REREAD_SEQ))
        assert reread.scalar() == 6 + 3  # indexed before the lifetime valve count existed
    assert indexer.dump(engine) != want
    for board in ("a", "c"):  # the next pull of each device
        indexer.index_device(engine, arch / f"virtual-{board}")
    assert indexer.dump(engine) == want
    engine.dispose()


def test_a_database_url_the_tool_cannot_use_is_named():
    with pytest.raises(Exception, match="mysql.*not supported.*postgresql://"):
        location.locate("mysql://x@h/db")


def _schema_drift(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), T.metadata)


def test_the_migrations_build_exactly_the_tables_the_code_uses(tmp_path, pg_url):
    lite = store.open_engine("sqlite:///" + str(tmp_path / "m.sqlite3"))
    pg = store.open_engine(location.database_url(pg_url))
    assert _schema_drift(lite) == [] and _schema_drift(pg) == []
    lite.dispose()
    pg.dispose()


def test_a_pull_whose_database_is_unreachable_keeps_its_records_and_the_next_indexes_them(
    mpy, tmp_path, boards
):
    from host_tools.errors import InvalidInput

    arch = tmp_path / "archive"
    down = location.database_url(f"postgresql://cryo@/none?host={tmp_path / 'no-server'}")
    with pytest.raises(InvalidInput, match="cannot open the archive database"):
        treatments.pull(boards / "a" / "flash.img", arch, "virtual-a", database=down)
    assert len((arch / "virtual-a" / "pulls.jsonl").read_text().splitlines()) == 1
    again = treatments.pull(boards / "a" / "flash.img", arch, "virtual-a")
    assert again["bytes"] == 0  # nothing new on the device: the records were kept
    assert again["index"]["sessions"] == 6 and again["index"]["pulls"] == 2


def test_a_board_whose_clock_was_never_set_has_sessions_without_a_date(mpy, tmp_path, boards):
    import datetime as dt

    arch = tmp_path / "archive"
    treatments.pull(boards / "a" / "flash.img", arch, "virtual-a")
    treatments.pull(boards / "c" / "flash.img", arch, "virtual-c")
    engine = _open(arch)
    with engine.connect() as conn:
        unset = query.sessions(conn, device="virtual-c")
        assert [(r["session"], r["started_at"]) for r in unset] == [(1, None), (2, None), (3, None)]
        assert conn.execute(
            sa.select(T.fault.c.at).where(T.fault.c.serial == "virtual-c")
        ).scalars().all() == [None]  # its fault's time is as unknown as its start
        # in no date range (not at 2000-01-01), listed after the dated ones, asked for by name
        since_2000 = query.sessions(conn, since=dt.datetime(2000, 1, 1))
        assert {r["serial"] for r in since_2000} == {"virtual-a"}
        assert query.sessions(conn, until=dt.datetime(2026, 1, 1)) == []
        assert [r["serial"] for r in query.sessions(conn)] == ["virtual-a"] * 6 + ["virtual-c"] * 3
        assert [r["serial"] for r in query.sessions(conn, newest_first=True)][-3:] == [
            "virtual-c"
        ] * 3
        assert [r["session"] for r in query.sessions(conn, clock_not_set=True)] == [1, 2, 3]
        fleet = query.fleet(conn)
        (dev_c,) = query.devices(conn, firmware="0.3.0")
    assert fleet["clock_not_set"] == 3
    assert sum(fleet["faults"]) == 2  # board a's two: board c's fault is in no week
    assert fleet["weeks"] == ["2026-W36", "2026-W37", "2026-W38"]
    assert dev_c["first_session_at"] is None and dev_c["sessions"] == 3
    engine.dispose()


def test_an_audit_trail_that_restarted_its_numbering_is_indexed_as_a_new_chain(
    mpy, tmp_path, boards
):
    from host_tools.errors import InvalidInput

    img = tmp_path / "a.img"
    img.write_bytes((boards / "a" / "flash.img").read_bytes())
    arch = tmp_path / "archive"
    treatments.pull(img, arch, "virtual-a")
    treatments.write(img, 1, restart_audit=True)  # the trail wiped: one new entry, number 1
    with pytest.raises(InvalidInput, match="the device log was reset"):
        treatments.pull(img, arch, "virtual-a")
    aside = tmp_path / "aside"  # what the message asks: the old folder moved aside
    aside.mkdir()
    (arch / "virtual-a").rename(aside / "virtual-a")
    again = treatments.pull(img, arch, "virtual-a")
    assert again["index"]["audit"] == 1 and again["index"]["sessions"] == 1  # the new one
    engine = _open(arch)
    rows = indexer.dump(engine)
    cols = [c.name for c in T.audit.columns]
    entries = sorted((r[cols.index("n")], r[cols.index("kind")]) for r in rows["audit"])
    assert entries == [(1, "ack"), (1, "config"), (2, "ack")]
    # re-indexed from both folders, oldest first: the same rows
    fresh = store.open_engine("sqlite:///" + str(tmp_path / "fresh.sqlite3"))
    indexer.reindex(fresh, [aside, arch])
    assert indexer.dump(fresh) == rows
    engine.dispose()
    fresh.dispose()
