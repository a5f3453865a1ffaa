"""Where an archive lives: its folder of raw records and its database.

The archive is a folder of raw records per device (``<folder>/<serial>/``);
its database is, by default, the SQLite file ``<folder>/archive.sqlite3``
beside them: no set-up. A clinic chain points every technician's tools at
one PostgreSQL database instead: ``--archive postgresql://user@host/db`` or
``$CRYO_ARCHIVE`` set to such a URL; the raw records pulled on a laptop then
go to ``$CRYO_ARCHIVE_DIR`` (default ``./cryo-archive``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from host_tools.errors import InvalidInput

ENV_ARCHIVE = "CRYO_ARCHIVE"
ENV_ARCHIVE_DIR = "CRYO_ARCHIVE_DIR"
DEFAULT_FOLDER = "cryo-archive"
SQLITE_NAME = "archive.sqlite3"
URL_SCHEMES = ("postgresql", "postgresql+psycopg", "sqlite")


@dataclass(frozen=True)
class Location:
    folder: Path  # raw records, one sub-folder per device serial
    url: str  # SQLAlchemy URL of the database


def _is_url(text: str) -> bool:
    return "://" in text


def database_url(text: str) -> str:
    """A user's database URL as SQLAlchemy's, with the driver this tool ships (psycopg 3)."""
    scheme = text.split("://", 1)[0]
    if scheme not in URL_SCHEMES:
        raise InvalidInput(
            f"archive URL scheme {scheme!r} is not supported: use a folder, "
            "postgresql://user@host/dbname or sqlite:///path/file.sqlite3"
        )
    if scheme == "postgresql":
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    return text


def locate(archive: str | os.PathLike | None = None) -> Location:
    """The archive named by ``--archive`` (a folder or a database URL), else ``$CRYO_ARCHIVE``."""
    text = str(archive) if archive is not None else os.environ.get(ENV_ARCHIVE, DEFAULT_FOLDER)
    if _is_url(text):
        folder = Path(os.environ.get(ENV_ARCHIVE_DIR, DEFAULT_FOLDER))
        return Location(folder, database_url(text))
    folder = Path(text)
    return Location(folder, "sqlite:///" + str(folder / SQLITE_NAME))


def describe(url: str) -> str:
    """The database as a person names it: the SQLite file's path, else the URL sans password."""
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    if u.get_backend_name() == "sqlite":
        return u.database or ":memory:"
    return u.render_as_string(hide_password=True)
