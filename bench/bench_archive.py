"""The archive database: the fleet question at scale, and what indexing adds to a pull.

Query: "all faulted sessions last month" (``query.sessions(fault="any",
since, until)``, with each session's fault conditions) on SQLite and on
PostgreSQL (a throw-away cluster, ``pgcluster``), with 1,000 and 100,000
sessions archived. The rows are synthetic but of the indexer's own tables:
50 devices, sessions spread over two years, one in ten with a fault row.
Median of 15 runs. Target: interactive, under 200 ms (printed as a ratio
to 200 ms), and the 100k/1k ratio (an index, not a scan, keeps it low).
Beside it, the dashboard's fleet charts (``query.fleet``: faults and
target-reached rate per week, valve wear), median of 5.

Pull overhead: a virtual board with 30 sessions of 20 s (the firmware's
TreatmentLog under MicroPython) pulled through real mpremote; the time
``cryo logs pull`` spends logging and indexing the pull (SQLite beside the
archive, and PostgreSQL) against the rest of the pull, for the first full
pull and for an incremental pull of one new session.
"""

import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "archive"))

SIZES = (1_000, 100_000)
DEVICES = 50
NOW = dt.datetime(2026, 12, 1)
TARGET_MS = 200.0


def _fill(engine, n):
    import sqlalchemy as sa

    from host_tools.archive_db import tables as T

    rnd = random.Random(n)
    devices = [f"bench-{i:03d}" for i in range(DEVICES)]
    sessions, faults = [], []
    per_device = {d: 0 for d in devices}
    for k in range(n):
        serial = devices[k % DEVICES]
        per_device[serial] += 1
        number = per_device[serial]
        start = NOW - dt.timedelta(days=730) + dt.timedelta(seconds=rnd.randrange(730 * 86400))
        faulted = rnd.random() < 0.1
        sessions.append(
            dict(
                serial=serial, session=number, started_at=start, fw_version="0.1.0",
                fw_hash="0" * 64, config_hash="0" * 64, board_id="rp2040", target_cc=-3000,
                cycles_planned=2, sample_hz=10, outcome="fault" if faulted else "completed",
                duration_ms=90_000, min_cc=-3100, below_target_ms=20_000, valve_open_ms=30_000,
                cycles_done=2, target_reached=True, samples=900, events=8, faults=int(faulted),
                valve_cycles=6, first_seq=number * 1000, last_seq=number * 1000 + 907,
                first_segment="seg00000001.bin", first_offset=0, last_segment="seg00000001.bin",
            )
        )  # fmt: skip
        if faulted:
            faults.append(
                dict(
                    serial=serial, seq=number * 1000 + 400, session=number,
                    at=start + dt.timedelta(seconds=40), t_ms=40_000, code=3,
                    condition="sensor", priority=3,
                )
            )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(sa.insert(T.device), [{"serial": d} for d in devices])
        for i in range(0, len(sessions), 5000):
            conn.execute(sa.insert(T.session), sessions[i : i + 5000])
        if faults:
            conn.execute(sa.insert(T.fault), faults)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def _last_month(engine) -> tuple[float, int]:
    from host_tools.archive_db import query

    times, found = [], 0
    for _ in range(15):
        t0 = time.perf_counter()
        with engine.connect() as conn:
            rows = query.sessions(conn, fault="any", since=NOW - dt.timedelta(days=30), until=NOW)
        times.append(time.perf_counter() - t0)
        found = len(rows)
    times.sort()
    return times[len(times) // 2] * 1000, found


def _fleet(engine) -> float:
    from host_tools.archive_db import query

    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        with engine.connect() as conn:
            query.fleet(conn)
        times.append(time.perf_counter() - t0)
    return sorted(times)[2] * 1000


def _query_rows(name, url_for):
    from host_tools.archive_db import store

    out, ms = [], {}
    for n in SIZES:
        engine = store.open_engine(url_for(n))
        _fill(engine, n)
        ms[n], found = _last_month(engine)
        fleet = _fleet(engine)
        engine.dispose()
        out.append(
            (
                f"{name}: faulted last month, {n:,} sessions",
                f"{ms[n]:7.1f} ms ({found} found) = {ms[n] / TARGET_MS:.2f} x the 200 ms target",
            )
        )
        out.append(
            (
                f"{name}: fleet charts' data, {n:,} sessions",
                f"{fleet:7.1f} ms = {fleet / TARGET_MS:.2f} x the 200 ms target",
            )
        )
    out.append((f"{name}: 100k / 1k", f"{ms[SIZES[1]] / ms[SIZES[0]]:.1f} x"))
    return out


def _pull_rows(name, tmp, database):
    import treatments

    img = tmp / f"{name}.img"
    treatments.write(img, 30)
    out = []
    for what in ("full pull, 30 sessions", "incremental pull, 1 new session"):
        if what.startswith("incremental"):
            treatments.write(img, 1)
        t0 = time.perf_counter()
        r = treatments.pull(img, tmp / f"{name}-archive", "bench-board", database)
        total = time.perf_counter() - t0
        index = r["index"]["seconds"]
        plain = total - index
        out.append(
            (
                f"{name}: {what}",
                f"pull {plain * 1000:6.0f} ms + index {index * 1000:5.0f} ms = "
                f"{total / plain:.2f} x a plain pull",
            )
        )
    return out


def run():
    from host_tools.archive_db import location
    from host_tools.archive_db.pgcluster import PgCluster

    rows = []
    with tempfile.TemporaryDirectory() as d, PgCluster() as pg:
        tmp = Path(d)
        rows += _query_rows("SQLite", lambda n: f"sqlite:///{tmp}/q{n}.sqlite3")
        rows += _query_rows(
            "PostgreSQL", lambda n: location.database_url(pg.create_database(f"q{n}"))
        )
        rows += _pull_rows("SQLite", tmp, None)
        rows += _pull_rows("PostgreSQL", tmp, location.database_url(pg.create_database("pull")))
    return rows


if __name__ == "__main__":
    for label, figure in run():
        print(f"  {label:<48}  {figure}")
