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
    """Two virtual boards: a has sessions 1..6 (days 0..15), b has 1..3 (days 40..46)."""
    d = tmp_path_factory.mktemp("boards")
    treatments.write(d / "a" / "flash.img", 6)
    treatments.write(d / "b" / "flash.img", 3, start_day=40, fw="0.2.0")
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


def test_an_interrupted_index_leaves_whole_sessions_and_the_next_one_finishes(
    mpy, tmp_path, boards
):
    arch = tmp_path / "archive"
    treatments.pull(boards / "a" / "flash.img", arch, "virtual-a")
    complete = indexer.dump(_open(arch))
    engine = store.open_engine("sqlite:///" + str(tmp_path / "cut.sqlite3"))

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


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_archive_at_the_first_revision_is_upgraded_in_place_keeping_its_rows(
    tmp_path, kind, request
):
    if kind == "sqlite":
        url = "sqlite:///" + str(tmp_path / "old.sqlite3")
    else:
        url = location.database_url(request.getfixturevalue("pg_url"))
    engine = store.engine_for(url)
    store.upgrade(engine, "0001")
    assert store.revision(engine) == "0001"
    with engine.begin() as conn:
        conn.execute(sa.insert(T.device).values(serial="old-1", board_id="rp2040"))
        assert "device_event" not in sa.inspect(conn).get_table_names()
    engine.dispose()
    engine = store.open_engine(url)
    assert store.revision(engine) == store.head_revision() == "0004"
    with engine.connect() as conn:
        assert conn.execute(sa.select(T.device.c.board_id)).scalar_one() == "rp2040"
        assert "device_event" in sa.inspect(conn).get_table_names()
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
