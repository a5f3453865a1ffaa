"""Host tools for the cryotherapy controller (the `cryo` command).

Layers, like mpremote's: ``cli`` (the command table) → ``commands/`` (one
handler module per command group) → ``archive/`` (the pulled archive:
its writer ``pull`` and its readers) and ``device/`` (transport, link,
device-side code, probe/reset); ``virtual/`` is the virtual board.
"""

import datetime as _dt
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE_DIR = ROOT / "firmware"
BOARDS_DIR = ROOT / "boards"
# MicroPython's RTC epoch on every port: record and audit times count from it.
RTC_EPOCH = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
