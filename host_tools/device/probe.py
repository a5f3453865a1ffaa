"""The device layer: what a board tells about itself and what it is asked to do.

Between the transport (``host_tools.device.connect``: ports, the raw REPL, bulk
transfers, the ``_cry_*`` helpers) and the commands (``flash``, ``config``,
``logs``): probe a board, name it, reset it, append to its audit trail.
File locations on the device are the firmware's own (``cryo.paths``).
"""

from __future__ import annotations

import ast
import time

from host_tools import (
    RTC_EPOCH,
    fwimport,  # noqa: F401  (firmware/ importable, micropython shim)
)
from host_tools.device.snippets import PROBE, THERMOCOUPLES, audit_code


def probe(session) -> dict:
    """MicroPython version and ``.mpy`` ABI, platform, unique id, serial,
    active slot, key fingerprint and boot fault of the board."""
    out = session.exec(PROBE)
    return ast.literal_eval(out.decode().strip())


def thermocouples(session) -> dict:
    """``{channel: {"chip": ..., "type": ...}}`` of the board definition the
    firmware runs with (empty when the board reports none)."""
    import json

    try:
        got = json.loads(session.exec(THERMOCOUPLES).decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}
    return got if isinstance(got, dict) else {}


def device_serial(info: dict) -> str | None:
    """The board's name: its unique id, else the serial ``cryo flash`` gave it."""
    if info.get("uid"):
        return info["uid"]
    s = (info.get("serial") or "").strip()
    return s or None


def reset_board(session) -> str:
    """Hard-reset the board so boot.py selects the new slot (if it can)."""
    has = session.eval("hasattr(__import__('machine'), 'reset')")
    if not has:
        return "not supported by this board (power-cycle it to boot the new app)"
    try:
        session.transport.exec_raw_no_follow("import machine\nmachine.reset()")
    except Exception:  # noqa: BLE001 - the board resets while we still talk to it
        pass
    return "reset"


def rtc_now() -> int:
    """Now in the board's RTC seconds (since 2000-01-01 UTC)."""
    return int(time.time() - RTC_EPOCH.timestamp())


def record_audit(session, calls: list[str], slot: str | None = None) -> bool:
    """Run ``calls`` (``_t.<method>(...)`` of ``cryo.storage.audit.AuditTrail``)
    on the device, with ``cryo`` imported from app slot ``slot`` (default:
    the active one), not from /lib's boot layer.

    False when the firmware in that slot has no audit trail: the device
    runs whatever firmware it was given, and the caller says so.
    """
    return session.exec(audit_code(calls, slot)).decode().strip().endswith("recorded")
