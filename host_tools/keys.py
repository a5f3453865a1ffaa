"""`cryo keys`: the manufacturer's secrets, kept outside the repository.

``cryo keys init`` creates a *development* service master secret in the
key directory (``$CRYO_KEYS``, default ``~/.config/cryo/keys``; mode 0600).
Production master secrets are held by the manufacturer's service
infrastructure, never on a clinic laptop or in git (docs/security.md).
``cryo keys provision`` gives a development board (open REPL) its device id
and per-device service key (``cryo.link.auth.provisioning_text``); from its
next start the board authenticates every state-changing link command.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.errors import AccessDenied, InvalidInput

# isort: split
from cryo import paths
from cryo.link import auth as wire

ENV_KEYS = "CRYO_KEYS"
MASTER_NAME = "service-master.key"


def keys_dir(explicit: str | None = None) -> Path:
    d = explicit or os.environ.get(ENV_KEYS) or os.path.expanduser("~/.config/cryo/keys")
    return Path(d)


def _inside_repo(p: Path) -> bool:
    from host_tools import ROOT

    try:
        p.resolve().relative_to(Path(ROOT).resolve())
        return True
    except ValueError:
        return False


def init_master(directory: str | None = None) -> Path:
    d = keys_dir(directory)
    if _inside_repo(d):
        raise InvalidInput(f"key directory {d} is inside the repository: keep keys outside it")
    p = d / MASTER_NAME
    if p.exists():
        raise InvalidInput(f"{p} exists: refusing to replace a master secret")
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return p


def load_master(directory: str | None = None) -> bytes:
    p = keys_dir(directory) / MASTER_NAME
    try:
        text = p.read_text().strip()
    except OSError:
        raise AccessDenied(
            f"no service master secret at {p}: the service role needs the manufacturer's "
            f"key directory (${ENV_KEYS}); `cryo keys init` creates a development one"
        ) from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise InvalidInput(f"{p}: must hold 64 hex digits (a 32-byte secret)")
    return key


def provision(session, directory: str | None = None, device_id: str | None = None) -> str:
    """Write the provisioning file on an open (development) board; its id."""
    from host_tools.device import device_serial, probe, record_audit

    master = load_master(directory)
    if device_id is None:
        device_id = device_serial(probe(session)) or secrets.token_hex(8)
    if not device_id.replace("-", "").isalnum() or len(device_id) > 32:
        raise InvalidInput(f"device id {device_id!r}: 1..32 letters, digits or '-'")
    text = wire.provisioning_text(
        device_id, wire.service_key(master, device_id), wire.audit_key(master, device_id)
    )
    session.write_file(paths.AUTH_PATH + ".tmp", text.encode())
    session.exec(f"os.rename({paths.AUTH_PATH + '.tmp'!r}, {paths.AUTH_PATH!r})")
    # The first keyed audit entry names the device: a verifier derives the
    # audit key from it (cryo.storage.audit.Keying).
    record_audit(
        session,
        [f"_t.append({{'kind': 'provision', 'role': 'service', 'subject': {device_id!r}}})"],
    )
    return device_id


def register(sub):
    from host_tools.connect import add_port_argument

    p = sub.add_parser("keys", help="manufacturer keys: create, provision a board")
    ks = p.add_subparsers(dest="keys_cmd", metavar="ACTION", required=True)
    pi = ks.add_parser("init", help="create a development service master secret")
    pi.add_argument("--dir", help=f"key directory (default ${ENV_KEYS} or ~/.config/cryo/keys)")
    pi.set_defaults(func=_cmd_init)
    pp = ks.add_parser("provision", help="give a development board its id and service key")
    pp.add_argument("--dir", help=f"key directory (default ${ENV_KEYS} or ~/.config/cryo/keys)")
    pp.add_argument("--device-id", help="the id to give (default: the board's unique id)")
    add_port_argument(pp)
    pp.set_defaults(func=_cmd_provision)


def _cmd_init(args) -> int:
    print(f"created {init_master(args.dir)}")
    return 0


def _cmd_provision(args) -> int:
    from host_tools.connect import Session, resolve_port

    with Session(resolve_port(args.port)) as s:
        dev = provision(s, args.dir, args.device_id)
    print(f"device {dev} provisioned: its link commands are authenticated from its next start")
    return 0
