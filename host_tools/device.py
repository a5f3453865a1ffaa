"""The device layer: what a board tells about itself and what it is asked to do.

Between the transport (``host_tools.connect``: ports, the raw REPL, bulk
transfers, the ``_cry_*`` helpers) and the commands (``flash``, ``config``,
``logs``): probe a board, name it, reset it, append to its audit trail.
File locations on the device are the firmware's own (``cryo.paths``).
"""

from __future__ import annotations

import ast
import datetime as _dt
import time

from host_tools import fwimport  # noqa: F401  (firmware/ importable, micropython shim)

# isort: split
from cryo import paths

# MicroPython's RTC epoch on every port: record and audit times count from it.
RTC_EPOCH = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)

PROBE = f"""
def _cry_probe():
    import sys
    d = {{'version': list(sys.implementation.version[:3]), 'mpy': getattr(sys.implementation, '_mpy', 0),
         'platform': sys.platform}}
    try:
        import machine
        d['uid'] = binascii.hexlify(machine.unique_id()).decode()
    except Exception:
        d['uid'] = None
    def rd(p, m='r'):
        try:
            with open(p, m) as f:
                return f.read()
        except OSError:
            return None
    d['serial'] = rd({paths.APP_SERIAL!r})
    d['active'] = rd({paths.APP_ACTIVE!r})
    k = rd({paths.APP_KEY!r}, 'rb')
    d['key_fp'] = binascii.hexlify(hashlib.sha256(k).digest()).decode()[:16] if k else None
    d['fault'] = rd({paths.APP_FAULT!r})
    d['release'] = rd({paths.APP_RELEASE_PUB!r})
    return d
print(repr(_cry_probe()))
"""


def probe(session) -> dict:
    """MicroPython version and ``.mpy`` ABI, platform, unique id, serial,
    active slot, key fingerprint and boot fault of the board."""
    out = session.exec(PROBE)
    return ast.literal_eval(out.decode().strip())


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
    body = "\n    ".join(calls)
    code = f"""
import sys
_slot = {paths.slot_dir(slot) if slot else None!r}
if _slot is None:
    try:
        _slot = {paths.APP_DIR + "/"!r} + open({paths.APP_ACTIVE!r}).read().strip()
    except OSError:
        pass
if _slot:
    sys.path.insert(0, _slot)
_cry_purge()
try:
    from cryo.storage.audit import AuditTrail
    try:  # a provisioned device keys its entries (cryo.link.auth)
        from cryo.link.auth import load_audit_key
        _k = load_audit_key({paths.AUTH_PATH!r})
    except ImportError:
        _k = None
    _t = AuditTrail({paths.AUDIT_PATH!r}, key=_k) if _k else AuditTrail({paths.AUDIT_PATH!r})
    {body}
    print('recorded')
except ImportError:
    print('no-audit')
finally:
    if _slot:
        sys.path.remove(_slot)
    _cry_purge()
"""
    return session.exec(code).decode().strip().endswith("recorded")
