"""A technician's Ctrl-C in the middle of `cryo logs pull` indexing: a real process, a real signal.

The pull runs as its own process (the installed command line) against a
virtual board through real mpremote; the test sends it SIGINT once the
archive database holds its first session, while the rest are still being
indexed. Every session in the database is then whole, and the next pull
finishes the job: the database is what a re-index of the raw records gives.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
import treatments

from host_tools.archive_db import indexer, location, store
from host_tools.archive_db import tables as T
from host_tools.errors import EXIT_INTERRUPTED
from host_tools.virtual.port import VirtualPort

SESSIONS = 40  # short ones: the index takes long enough to be caught in the middle
REPO = Path(__file__).resolve().parents[2]


def _pull(port, arch):
    env = dict(os.environ, PYTHONPATH=str(REPO))  # this checkout's code, whatever is installed
    argv = [sys.executable, "-m", "host_tools.cli", "logs", "--port", port]
    argv += ["--archive", str(arch), "pull"]
    return subprocess.Popen(
        argv,
        env=env,
        cwd=arch.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _default_sigint():
    # a suite started in the background inherits SIGINT ignored, and so would the
    # pull: give it the default, as a technician's terminal does
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _indexed(db: Path) -> int:
    """Sessions in the database as another process sees it (0 while it is being created)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as conn:
            return conn.execute("SELECT count(*) FROM session").fetchone()[0]
    except sqlite3.Error:
        return 0


def _interrupt_mid_index(port, arch) -> tuple[int, str]:
    """Start a pull, SIGINT it once a session is indexed; (exit code, stderr)."""
    proc = _pull(port, arch)
    db = arch / location.SQLITE_NAME
    while proc.poll() is None and _indexed(db) == 0:
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _whole(engine) -> list:
    """Sessions whose event or fault rows do not add up to the session's counts."""
    s, e, f = T.session.c, T.event.c, T.fault.c

    def count(table, c):
        return (
            sa.select(sa.func.count())
            .select_from(table)
            .where(sa.and_(c.serial == s.serial, c.session == s.session))
            .scalar_subquery()
        )

    with engine.connect() as conn:
        return conn.execute(
            sa.select(s.session).where(
                sa.or_(count(T.event, e) != s.events, count(T.fault, f) != s.faults)
            )
        ).all()


def test_sigint_to_a_real_pull_mid_index_leaves_whole_sessions_and_the_next_pull_finishes(
    mpy, tmp_path
):
    img = tmp_path / "board.img"
    treatments.write(img, SESSIONS, seconds=2)
    with VirtualPort(image=img) as vp:
        # the signal may land before or after the index on a busy machine: try again
        for attempt in range(4):
            arch = tmp_path / f"archive{attempt}"
            rc, err = _interrupt_mid_index(vp.port, arch)
            held = _indexed(arch / location.SQLITE_NAME)
            if rc == EXIT_INTERRUPTED and 0 < held < SESSIONS:
                break
        assert rc == EXIT_INTERRUPTED and "interrupted" in err and "Traceback" not in err
        assert 0 < held < SESSIONS, f"no attempt was interrupted mid-index ({held} indexed)"
        engine = store.open_engine(location.locate(arch).url)
        assert _whole(engine) == []
        nxt = _pull(vp.port, arch)
        out, err = nxt.communicate(timeout=120)
    assert nxt.returncode == 0, err
    assert f"indexed {SESSIONS - held} new or changed sessions" in out
    rows = indexer.dump(engine)
    assert [r[1] for r in rows["session"]] == list(range(1, SESSIONS + 1))
    fresh = store.open_engine("sqlite:///" + str(tmp_path / "fresh.sqlite3"))
    indexer.reindex(fresh, [arch])
    assert indexer.dump(fresh) == rows
    engine.dispose()
    fresh.dispose()
