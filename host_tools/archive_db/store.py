"""Opening and migrating the archive database (SQLite file or PostgreSQL server).

Opening an archive brings its schema to the newest migration (Alembic, in
``migrations/``): an archive written by an older tool is upgraded in place.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from host_tools.errors import InvalidInput

MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_setup(engine):
    # pysqlite opens transactions lazily and upgrades a read lock to a write
    # lock mid-transaction, which fails at once under a second writer:
    # take the write lock at BEGIN and wait for it instead.
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def engine_for(url: str) -> sa.Engine:
    if url.startswith("sqlite:"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})
        _sqlite_setup(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _alembic_config(conn):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(None)
    return ScriptDirectory.from_config(cfg).get_current_head()


def revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, to: str = "head"):
    """Migrate the schema (one transaction; PostgreSQL: one migrator at a time)."""
    from alembic import command

    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # SQLite changes a column by copying its table and dropping the old one,
            # which other tables' keys refer to: keys are checked once, before the
            # commit, instead (SQLite's own procedure, "lang_altertable": the pragma
            # works only outside a transaction)
            conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if not sqlite:
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7262)")  # 'cryo' migrations
                command.upgrade(_alembic_config(conn), to)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise InvalidInput(f"the migration broke foreign keys: {broken[:3]}")
        finally:
            if sqlite:
                conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")


def open_engine(url: str) -> sa.Engine:
    """An engine on the archive at ``url``, its schema at the newest revision."""
    engine = engine_for(url)
    try:
        if revision(engine) != head_revision():
            upgrade(engine)
    except sa.exc.OperationalError as e:
        engine.dispose()
        raise InvalidInput(f"cannot open the archive database {redact(url)}: {e.orig}") from None
    return engine


def redact(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)
