"""Reading a pulled log archive (``<archive>/<device serial>/logs``).

The readers ``cryo logs`` (list, export, verify) and the report share: the
sessions in an archive, one session's records and the dates they carry.
Records are decoded with the firmware's own reader (``cryo.storage.log``).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.device import RTC_EPOCH
from host_tools.errors import InvalidInput


def list_sessions(dest: Path) -> list[dict]:
    from cryo.storage import segments as L

    return L.list_sessions(str(Path(dest) / "logs"))


def session_records(dest: Path, session: int) -> list[dict]:
    from cryo.storage import segments as L

    recs = L.read_records(str(Path(dest) / "logs"), session=session)
    if not recs:
        have = [s["session"] for s in list_sessions(dest)]
        raise InvalidInput(f"no session {session} in {dest} (sessions: {have or 'none'})")
    return recs


def rtc_date(rtc_s) -> str:
    """Board RTC seconds as a UTC date and time."""
    return (RTC_EPOCH + _dt.timedelta(seconds=int(rtc_s))).strftime("%Y-%m-%d %H:%M:%S")
