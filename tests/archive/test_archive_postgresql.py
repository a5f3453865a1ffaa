"""The same archive on a real PostgreSQL server (a throw-away cluster the suite starts).

Same pulls give the same rows and the same query answers as on SQLite;
two technicians pulling at the same time into one database lose and
duplicate nothing; re-indexing reproduces it.
"""

import multiprocessing

import treatments

from host_tools.archive_db import indexer, location, query, store


def _engine(url):
    return store.open_engine(location.database_url(url))


def _answers(engine):
    import datetime as dt

    with engine.connect() as conn:
        return {
            "all": query.sessions(conn),
            "faulted in Sept": query.sessions(
                conn, fault="any", since=dt.datetime(2026, 9, 1), until=dt.datetime(2026, 10, 1)
            ),
            "dose": query.sessions(conn, fault="dose"),
            "reached on a": query.sessions(conn, device="virtual-a", target_reached=True),
            "completed": query.sessions(conn, outcome="completed"),
            "fw 0.2.0": query.devices(conn, firmware="0.2.0"),
            "worn": query.devices(conn, min_valve_cycles=10),
            "fleet": query.fleet(conn),
        }


def _without_pull_times(answers):
    # pull times differ between the two runs; everything else must not
    out = dict(answers)
    for k in ("fw 0.2.0", "worn"):
        out[k] = [{c: v for c, v in r.items() if c != "last_pull_at"} for r in answers[k]]
    return out


def test_same_pulls_same_answers_on_sqlite_and_postgresql(mpy, tmp_path, pg_url):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    treatments.write(a, 6)
    treatments.write(b, 3, start_day=20, fw="0.2.0")
    for img, serial in ((a, "virtual-a"), (b, "virtual-b")):
        treatments.pull(img, tmp_path / "lite", serial)
        treatments.pull(img, tmp_path / "pg", serial, database=location.database_url(pg_url))
    lite = store.open_engine(location.locate(tmp_path / "lite").url)
    pg = _engine(pg_url)
    got = _answers(pg)
    assert _without_pull_times(got) == _without_pull_times(_answers(lite))
    # condition 2 by treatments' rule: each board's third session
    assert [(r["serial"], r["session"]) for r in got["dose"]] == [
        ("virtual-a", 3),
        ("virtual-b", 3),
    ]
    assert [r["serial"] for r in got["fw 0.2.0"]] == ["virtual-b"]
    assert got["fw 0.2.0"][0]["fw_hash"] == treatments.fw_hash("0.2.0")
    # by treatments' rules: faulted when i % 3 == 2, target reached when i is even
    completed = [(1, 2, 4, 5), (1, 2)]  # of a's 6 and b's 3
    assert [(r["serial"], r["session"]) for r in got["completed"]] == [
        (serial, n) for serial, ns in zip(("virtual-a", "virtual-b"), completed) for n in ns
    ]
    assert [r["session"] for r in got["reached on a"]] == [1, 3, 5]
    # lifetime valve cycles: a 2+3+4+5+2+3 = 19, b 2+3+4 = 9 (under 10)
    assert [(r["serial"], r["lifetime_valve_cycles"]) for r in got["worn"]] == [("virtual-a", 19)]
    assert len(got["faulted in Sept"]) == 3  # a's 3 and 6, b's 3 (day 26)
    assert len(got["all"]) == 9
    fleet = got["fleet"]
    assert sum(fleet["faults"]) == 3 and fleet["devices"] == ["virtual-a", "virtual-b"]
    # a's sessions on days 0..15 from Tuesday 2026-09-01 (ISO week 36), b's on days 20..26
    assert fleet["weeks"] == ["2026-W36", "2026-W37", "2026-W38", "2026-W39"]
    reached = [e["target_reached"] for e in map(treatments.expected, range(6))]
    assert fleet["target_rate"][0] == round(100 * sum(reached[:2]) / 2, 1)  # days 0 and 3
    # the rows themselves, but for the pulls' own times and places
    lp, pp = indexer.dump(lite), indexer.dump(pg)
    for name in pp:
        if name != "pull":
            assert pp[name] == lp[name], name
    # re-index from the raw records: the same database
    indexer.reindex(pg, [tmp_path / "pg"])
    assert indexer.dump(pg) == pp
    lite.dispose()
    pg.dispose()


def test_two_technicians_pulling_at_once_lose_and_duplicate_nothing(mpy, tmp_path, pg_url):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    treatments.write(a, 8)
    treatments.write(b, 5, start_day=30)
    a2, b2 = tmp_path / "a2.img", tmp_path / "b2.img"  # one virtual board per technician's cable
    a2.write_bytes(a.read_bytes())
    b2.write_bytes(b.read_bytes())
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    # each technician pulls both boards, in opposite order, into their own folder
    jobs = [
        ctx.Process(
            target=treatments.pull_all,
            args=((first, second), tmp_path / who, location.database_url(pg_url), go),
        )
        for who, first, second in (
            ("tech1", (a, "virtual-a"), (b, "virtual-b")),
            ("tech2", (b2, "virtual-b"), (a2, "virtual-a")),
        )
    ]
    for j in jobs:
        j.start()
    go.set()
    for j in jobs:
        j.join(180)
    assert [j.exitcode for j in jobs] == [0, 0]
    engine = _engine(pg_url)
    rows = indexer.dump(engine)
    assert [(r[0], r[1]) for r in rows["session"]] == [("virtual-a", n) for n in range(1, 9)] + [
        ("virtual-b", n) for n in range(1, 6)
    ]
    assert len(rows["pull"]) == 4  # every pull, by both
    assert len(rows["fault"]) == 2 + 1 and len(rows["audit"]) == 2 * 2
    with engine.connect() as conn:
        devs = {d["serial"]: d for d in query.devices(conn)}
    assert devs["virtual-a"]["sessions"] == 8 and devs["virtual-b"]["sessions"] == 5
    assert devs["virtual-a"]["valve_cycles"] == sum(
        treatments.expected(i)["valve_cycles"] for i in range(8)
    )
    indexer.reindex(engine, [tmp_path / "tech1", tmp_path / "tech2"])
    assert indexer.dump(engine) == rows
    engine.dispose()


def test_cryo_logs_pull_into_postgresql_by_environment(mpy, tmp_path, pg_url, monkeypatch):
    from host_tools.cli import main
    from host_tools.virtual.port import VirtualPort

    img = tmp_path / "a.img"
    treatments.write(img, 3)
    monkeypatch.setenv("CRYO_ARCHIVE", pg_url)
    monkeypatch.setenv("CRYO_ARCHIVE_DIR", str(tmp_path / "laptop"))
    with VirtualPort(image=img) as vp:
        assert main(["logs", "--port", vp.port, "--json", "pull"]) == 0
    (serial,) = [p.name for p in (tmp_path / "laptop").iterdir() if p.is_dir()]
    assert not (tmp_path / "laptop" / location.SQLITE_NAME).exists()  # the database is the server
    engine = _engine(pg_url)
    with engine.connect() as conn:
        assert [(r["serial"], r["session"]) for r in query.sessions(conn)] == [
            (serial, n) for n in (1, 2, 3)
        ]
    engine.dispose()
