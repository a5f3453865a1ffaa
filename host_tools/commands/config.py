"""`cryo config`: show, get, set, diff, apply and export the device configuration.

Validation uses the config schema (``cryo.storage.schema`` /
``cryo.storage.config``) imported from firmware/, so the host rejects a
value with exactly the message the device would give. Every change:

1. needs ``--role`` and that role's PIN (``--pin``, ``$CRYO_PIN`` or a
   prompt), checked against the salted hashes in the device's roles file
   (``cryo.storage.roles``; deny by default: a role with no PIN there
   cannot log in);
2. is checked field by field (known field, role allowed, type, range) and
   as a whole (protocol within the hard limits in force);
3. is shown as a diff and written only after confirmation (or ``--yes``),
   atomically (``config.json.tmp`` + rename, the CRC'd format of ``cryo.storage.config``);
4. is appended to the device's audit trail (role, time, field, old, new).

The firmware reads its configuration at start-up: changes take effect at
the next reset (``--reset``).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import tempfile
from pathlib import Path

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.auth import ENV_PIN
from host_tools.commands.output import console, emit
from host_tools.device.connect import resolve_port
from host_tools.device.probe import record_audit, reset_board, rtc_now
from host_tools.errors import EXIT_FAILED, AccessDenied, CryoError, InvalidInput

# isort: split
from cryo.paths import CONFIG_PATH, ROLES_PATH


class NotConfirmed(CryoError):
    exit_code = EXIT_FAILED


# -- device I/O ----------------------------------------------------------
def _read_device(session, path: str) -> bytes | None:
    if session.eval(f"_cry_size({path!r})") < 0:
        return None
    return session.read_file(path)


def read_config(session) -> tuple[dict, str]:
    """(config, source). Source is "device" or "factory defaults"."""
    from cryo.storage import config as C
    from cryo.storage import schema as S

    data = _read_device(session, CONFIG_PATH)
    if data is None:
        return S.defaults(), "factory defaults (no config.json on the device)"
    try:
        cfg, version = C.decode(data, CONFIG_PATH)
    except C.ConfigError as e:
        raise InvalidInput(f"device {e}; `cryo config apply FILE` writes a good one") from None
    if version != S.SCHEMA_VERSION:
        cfg, _ = S.migrate(cfg)
    return cfg, "device"


def write_config(session, cfg: dict):
    """Write ``cfg`` atomically; on a provisioned board with its MAC under the
    device key (``host_tools.keys.device_config_key``), or the firmware refuses it."""
    from host_tools.keys import device_config_key, write_sealed

    write_sealed(session, cfg, device_config_key(session))


def authenticate(session, role: str, pin: str | None) -> str:
    """Check ``role``'s PIN against the device's roles file; return the role."""
    from cryo.storage import roles as RL
    from cryo.storage import schema as S

    if role not in S.ROLES:
        raise InvalidInput(f"unknown role {role!r}: allowed {', '.join(S.ROLES)}")
    data = _read_device(session, ROLES_PATH)
    if pin is None:
        pin = os.environ.get(ENV_PIN)
    if pin is None:
        if not sys.stdin.isatty():
            raise AccessDenied(f"role {role} needs its PIN: pass --pin or set {ENV_PIN}")
        pin = getpass.getpass(f"PIN for {role}: ")
    if data is None:
        raise AccessDenied(
            "no role PINs are set on this device: set the service PIN first "
            "(cryo config --role service --pin NEW pin service NEW)"
        )
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "roles")
        Path(p).write_bytes(data)
        if not RL.check_pin(p, role, pin):
            raise AccessDenied(f"wrong PIN for role {role} (or no PIN set for it)")
    return role


def audit(session, entries: list[tuple]):
    """Append ``(kind, role, subject, old, new)`` entries to the device's audit
    trail (cryo.storage.audit.AuditTrail)."""
    if not entries:
        return "nothing to record"
    now = rtc_now()
    calls = []
    for kind, role, subject, old, new in entries:
        if kind == "config":
            calls.append(f"_t.config_change({now}, {role!r}, {subject!r}, {old!r}, {new!r})")
        elif kind == "pin":
            calls.append(f"_t.pin_change({now}, {role!r}, {subject!r})")
    return "recorded" if record_audit(session, calls) else "no audit trail in this firmware"


# -- pure logic (tested without a device) --------------------------------
def parse_assignments(pairs: list[str]) -> dict:
    """``["pid.kp=0.07", ...]`` or ``["pid.kp", "0.07", ...]`` → typed values."""
    from cryo.storage import config as C

    out = {}
    items = []
    i = 0
    while i < len(pairs):
        if "=" in pairs[i]:
            k, v = pairs[i].split("=", 1)
            i += 1
        elif i + 1 < len(pairs):
            k, v = pairs[i], pairs[i + 1]
            i += 2
        else:
            raise InvalidInput(f"{pairs[i]}: missing value (use NAME=VALUE or NAME VALUE)")
        items.append((k, v))
    for k, v in items:
        try:
            out[k] = C.parse_value(k, v)
        except C.ConfigError as e:
            raise InvalidInput(str(e)) from None
    return out


def apply_changes(cfg: dict, changes: dict, role: str) -> tuple[dict, list[tuple]]:
    """New config with ``changes`` applied as ``role`` and the list of diffs.

    Raises AccessDenied for a field the role may not change and InvalidInput
    naming every invalid value (the schema's messages).
    """
    from cryo.storage import config as C
    from cryo.storage import schema as S

    new = dict(cfg)
    diffs = []
    denied = []
    for name in sorted(changes):
        if name == "schema_version":
            continue
        value = changes[name]
        if S.field(name) is None:
            raise InvalidInput(f"unknown field {name} (see `cryo config show`)")
        if new.get(name) == value and type(new.get(name)) is type(value):
            continue
        msg = S.check_role(name, role)
        if msg:
            denied.append(msg)
            continue
        try:
            old = C.set_field(new, name, value, role)
        except C.ConfigError as e:
            if "may not change" in str(e):
                denied.append(str(e))
                continue
            # set_field validates the whole config: apply all, then report all
            new[name] = value
            old = cfg.get(name)
        diffs.append((name, old, value))
    if denied:
        raise AccessDenied("; ".join(denied))
    problems = S.validate(new)
    if problems:
        raise InvalidInput("rejected: " + "; ".join(problems))
    return new, diffs


def diff(a: dict, b: dict) -> list[tuple]:
    keys = sorted(set(a) | set(b))
    return [(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]


def load_file(path: Path) -> dict:
    """A config file: JSON object of fields, or a CRYOCFG file (cryo.storage.config)."""
    from cryo.storage import config as C
    from cryo.storage import schema as S

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from None
    if data.startswith(C.MAGIC.encode()):
        try:
            cfg, _ = C.decode(data, str(path))
        except C.ConfigError as e:
            raise InvalidInput(str(e)) from None
    else:
        try:
            cfg = json.loads(data)
        except ValueError as e:
            raise InvalidInput(f"{path}: not JSON ({e})") from None
        if not isinstance(cfg, dict):
            raise InvalidInput(f"{path}: must be a JSON object of field: value")
    if cfg.get("schema_version", S.SCHEMA_VERSION) != S.SCHEMA_VERSION:
        try:
            cfg, _ = S.migrate(cfg)
        except ValueError as e:
            raise InvalidInput(f"{path}: {e}") from None
    return cfg


# -- output --------------------------------------------------------------
def _fmt(v):
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def print_diff(diffs, title="changes"):
    from rich.table import Table

    t = Table(title=title)
    t.add_column("field")
    t.add_column("now", justify="right")
    t.add_column("new", justify="right")
    for name, old, new in diffs:
        t.add_row(name, _fmt(old), f"[bold]{_fmt(new)}[/bold]")
    console().print(t)


def print_config(cfg, source):
    from rich.table import Table

    from cryo.storage import schema as S

    t = Table(title=f"configuration ({source})")
    for c in ("field", "value", "unit", "allowed", "role"):
        t.add_column(c)
    for f in S.FIELDS:
        t.add_row(f[0], _fmt(cfg.get(f[0])), f[2], S._allowed(f), f[5])
    console().print(t)


def _confirm(args, n):
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise NotConfirmed(f"{n} change(s) not written: confirm with --yes (no terminal to ask)")
    ans = input(f"write {n} change(s) to the device? [y/N] ").strip().lower()
    if ans not in ("y", "yes"):
        raise NotConfirmed("not written")


# -- CLI -----------------------------------------------------------------
def cmd_config(args) -> int:
    from host_tools.device.connect import Session

    with Session(resolve_port(args.port)) as s:
        return run(s, args)


def run(s, args) -> int:
    """The config actions on an open session (the CLI and tests call this)."""
    from cryo.storage import schema as S

    cmd = args.config_cmd
    cfg, source = read_config(s)
    if cmd == "show":
        emit(args, {"source": source, "config": cfg}, lambda: print_config(cfg, source))
        return 0
    if cmd == "get":
        if S.field(args.name) is None and args.name != "schema_version":
            raise InvalidInput(f"unknown field {args.name} (see `cryo config show`)")
        v = cfg.get(args.name)
        emit(args, {args.name: v}, _fmt(v))
        return 0
    if cmd == "export":
        text = json.dumps(cfg, indent=2, sort_keys=True) + "\n"
        if args.output:
            args.output.write_text(text)
            emit(args, {"file": str(args.output)}, f"wrote {args.output}")
        elif args.json:
            emit(args, cfg)
        else:
            sys.stdout.write(text)
        return 0
    if cmd == "diff":
        other = load_file(args.file)
        d = diff(cfg, other)
        rows = [{"field": k, "device": a, "file": b} for k, a, b in d]
        title = f"device ({source}) → {args.file}"
        emit(args, rows, (lambda: print_diff(d, title=title)) if d else "no differences")
        return 0
    if args.role is None:
        raise AccessDenied(f"`cryo config {cmd}` changes the device: pass --role and its PIN")
    if cmd == "pin":
        return _set_pin(s, args)
    if cmd == "set":
        changes = parse_assignments(args.assignments)
    else:  # apply
        changes = load_file(args.file)
    authenticate(s, args.role, args.pin)  # deny by default: nothing is checked before the PIN
    new, diffs = apply_changes(cfg, changes, args.role)
    if not diffs:
        emit(args, {"changed": [], "diff": []}, "no changes")
        return 0
    if not args.json:
        print_diff(diffs)
    _confirm(args, len(diffs))
    write_config(s, new)
    rec = audit(s, [("config", args.role, k, old, v) for k, old, v in diffs])
    reset = None
    if getattr(args, "reset", False):
        reset = reset_board(s)
    when = "now (board reset)" if reset == "reset" else "at the next start"
    res = {"changed": [k for k, _, _ in diffs], "audit": rec, "reset": reset}
    res["diff"] = [{"field": k, "device": old, "new": v} for k, old, v in diffs]
    emit(args, res, f"written ({len(diffs)} change(s)); audit: {rec}; takes effect {when}")
    return 0


def _set_pin(s, args) -> int:
    from cryo.storage import roles as RL

    existing = _read_device(s, ROLES_PATH)
    if existing is None:
        if args.role != "service" or args.target_role != "service":
            raise AccessDenied("a new device has no PINs: set the service PIN first")
        if args.pin != args.new_pin:
            raise InvalidInput("first service PIN: pass the same value as --pin and NEW_PIN")
    else:
        authenticate(s, args.role, args.pin)
        if args.role != "service" and args.target_role != args.role:
            raise AccessDenied(f"role {args.role} may change only its own PIN")
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "roles")
        if existing:
            Path(p).write_bytes(existing)
        try:
            RL.set_pin(p, args.target_role, args.new_pin)
        except ValueError as e:
            raise InvalidInput(str(e)) from None
        data = Path(p).read_bytes()
    s.write_file(ROLES_PATH + ".tmp", data)
    s.exec(f"os.rename({ROLES_PATH + '.tmp'!r}, {ROLES_PATH!r})")
    rec = audit(s, [("pin", args.role, args.target_role, None, None)])
    emit(
        args,
        {"pin_set": args.target_role, "audit": rec},
        f"PIN for {args.target_role} set; audit: {rec}",
    )
    return 0
