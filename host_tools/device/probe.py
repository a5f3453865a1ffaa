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


def reset_controller(port: str, pin: str | None):
    """Reset through a running controller: the firmware's version once it
    is back, or None when no controller answers (a board at the REPL)."""
    import os

    from host_tools.auth import ENV_PIN, Credentials
    from host_tools.device.connect import TREATMENT_RUNNING
    from host_tools.device.link import BOOT_WAIT, Link, LinkError
    from host_tools.errors import DeviceError

    pin = pin if pin is not None else os.environ.get(ENV_PIN)
    creds = Credentials(pins={} if pin is None else {"engineer": pin}, ask=False)
    with Link(port, credentials=creds) as link:
        hello = link.await_controller(repl_ok=True)
        if not hello or (hello.get("auth") and pin is None):
            # a board at the REPL, or a locked one with no PIN given: the
            # REPL path (its service unlock takes the service key)
            return None
        try:
            link.reset("engineer")
        except LinkError as e:
            text = str(e)
            if any(w in text for w in ("PRECOOL", "FREEZE", "THAW")):
                raise DeviceError(TREATMENT_RUNNING) from None
            raise
    # The board resets ~0.1 s after its reply, then boots (seconds on the
    # emulated Cortex-M3): wait for the controller, so the next command finds it.
    with Link(port, credentials=creds) as link:
        hello = link.await_controller(boot_wait=3 * BOOT_WAIT, repl_ok=True)
    if not hello:
        raise DeviceError(
            f"{port} was reset but came up at the REPL, not the controller: "
            "check boot.py/main.py (`cryo flash`)"
        )
    return "firmware %s" % hello.get("fw", "?")


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
