"""What ``cryo logs pull`` does after the raw records landed: log the pull, index it."""

from __future__ import annotations

from pathlib import Path


def after_pull(folder: Path, dest: Path, result: dict, port=None, url: str | None = None) -> dict:
    """Record the pull in ``<dest>/pulls.jsonl`` and index the device folder.

    ``url``: the archive database (None: the SQLite file beside ``folder``).
    Returns what was indexed, and ``seconds`` it took (the pull's overhead).
    """
    import time

    import sqlalchemy as sa

    from host_tools.archive_db import indexer, location, store
    from host_tools.errors import InvalidInput

    t0 = time.perf_counter()
    indexer.record_pull(dest, result, port)
    url = url or location.locate(folder).url
    engine = store.open_engine(url)
    try:
        done = indexer.index_device(engine, dest)
    except sa.exc.OperationalError as e:
        # the raw records are in and verified; the next pull indexes what is missing
        raise InvalidInput(
            f"the records were pulled into {dest}, but indexing them into "
            f"{store.redact(url)} failed ({e.orig}): pull again or run `cryo archive reindex`"
        ) from None
    finally:
        engine.dispose()
    done["seconds"] = round(time.perf_counter() - t0, 4)
    done["database"] = location.describe(url)
    return done
