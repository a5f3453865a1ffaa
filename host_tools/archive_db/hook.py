"""What ``cryo logs pull`` does after the raw records landed: log the pull, index it."""

from __future__ import annotations

from pathlib import Path


def after_pull(folder: Path, dest: Path, result: dict, port=None, url: str | None = None) -> dict:
    """Record the pull in ``<dest>/pulls.jsonl`` and index the device folder.

    ``url``: the archive database (None: the SQLite file beside ``folder``).
    Returns what was indexed, and ``seconds`` it took (the pull's overhead).
    """
    import time

    from host_tools.archive_db import indexer, location, store

    t0 = time.perf_counter()
    indexer.record_pull(dest, result, port)
    engine = store.open_engine(url or location.locate(folder).url)
    try:
        done = indexer.index_device(engine, dest)
    finally:
        engine.dispose()
    done["seconds"] = round(time.perf_counter() - t0, 4)
    return done
