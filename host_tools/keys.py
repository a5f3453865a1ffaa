"""`cryo keys`: the manufacturer's secrets, kept outside the repository.

``cryo keys init`` creates a *development* service master secret and
``cryo keys release-init`` a development Ed25519 release-signing key in the
key directory (``$CRYO_KEYS``, default ``~/.config/cryo/keys``; mode 0600).
Production master secrets are held by the manufacturer's service
infrastructure, never on a clinic laptop or in git (docs/security.md).
``cryo keys provision`` gives a development board (open REPL) its device id
and per-device service key (``cryo.link.auth.provisioning_text``) and seals
its configuration (MAC under the device key); from its next start the
board authenticates every state-changing link command.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.commands import output
from host_tools.errors import AccessDenied, InvalidInput

# isort: split
from cryo import paths
from cryo.link import auth as wire

ENV_KEYS = "CRYO_KEYS"
MASTER_NAME = "service-master.key"
RELEASE_NAME = "release-signing.pem"  # Ed25519 private key (PKCS#8 PEM)


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


def _new_secret_file(directory: str | None, name: str, data: bytes) -> Path:
    d = keys_dir(directory)
    if _inside_repo(d):
        raise InvalidInput(f"key directory {d} is inside the repository: keep keys outside it")
    p = d / name
    if p.exists():
        raise InvalidInput(f"{p} exists: refusing to replace a key")
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return p


def init_master(directory: str | None = None) -> Path:
    return _new_secret_file(directory, MASTER_NAME, (secrets.token_hex(32) + "\n").encode())


def init_release(directory: str | None = None) -> Path:
    """A development release-signing key (Ed25519, ``cryptography``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return _new_secret_file(directory, RELEASE_NAME, pem)


def release_key(directory: str | None = None):
    """The release-signing private key, or None when this host holds none."""
    from cryptography.hazmat.primitives import serialization

    p = keys_dir(directory) / RELEASE_NAME
    try:
        data = p.read_bytes()
    except OSError:
        return None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InvalidInput(f"{p}: not an unencrypted Ed25519 private key (PEM)") from None


def public_hex(key) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


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
    from host_tools.device.probe import device_serial, probe, record_audit

    master = load_master(directory)
    if device_id is None:
        device_id = device_serial(probe(session)) or secrets.token_hex(8)
    if not device_id.replace("-", "").isalnum() or len(device_id) > 32:
        raise InvalidInput(f"device id {device_id!r}: 1..32 letters, digits or '-'")
    # sealed first: a board whose configuration cannot be sealed stays unprovisioned
    seal_config(session, wire.audit_key(master, device_id))
    text = wire.provisioning_text(
        device_id, wire.service_key(master, device_id), wire.audit_key(master, device_id)
    )
    session.write_file(paths.AUTH_PATH + ".tmp", text.encode())
    session.exec(f"os.rename({paths.AUTH_PATH + '.tmp'!r}, {paths.AUTH_PATH!r})")
    rk = release_key(directory)
    if rk is not None:  # from now on only releases signed by it are installed
        session.exec(f"_cry_mk({paths.APP_DIR!r})")
        session.write_file(paths.APP_RELEASE_PUB + ".tmp", public_hex(rk).encode())
        session.exec(f"os.rename({paths.APP_RELEASE_PUB + '.tmp'!r}, {paths.APP_RELEASE_PUB!r})")
    # The first keyed audit entry names the device: a verifier derives the
    # audit key from it (cryo.storage.audit.Keying).
    record_audit(
        session,
        [f"_t.append({{'kind': 'provision', 'role': 'service', 'subject': {device_id!r}}})"],
    )
    return device_id


def device_config_key(session, directory: str | None = None) -> bytes | None:
    """The key that MACs ``config.json`` on the board of an open session:
    None on a development board (no provisioning file); on a provisioned
    one the audit key (``cryo.storage.config``), derived here from the
    master secret and the device id - the device's key is never read."""
    if session.eval(f"_cry_size({paths.AUTH_PATH!r})") < 0:
        return None
    got = session.eval(
        f"[x[7:].strip() for x in open({paths.AUTH_PATH!r}).read().split(chr(10)) "
        "if x[:7] == 'device ']"
    )
    if len(got) != 1:
        raise InvalidInput(f"the board's {paths.AUTH_PATH} names no device: provision it again")
    return wire.audit_key(load_master(directory), got[0])


def write_sealed(session, cfg: dict, key: bytes | None):
    """``cfg`` as the board's configuration (atomic; MAC'd under ``key``)."""
    from cryo.storage import config as C

    data = C.encode(cfg, key)
    session.write_file(paths.CONFIG_PATH + ".tmp", data)
    session.exec(f"os.rename({paths.CONFIG_PATH + '.tmp'!r}, {paths.CONFIG_PATH!r})")
    return data


def seal_config(session, key: bytes):
    """At provisioning: the board's configuration (or, on a board that has
    none, the schema's defaults) rewritten with its MAC, and the same file
    as its last known good copy. From now on a missing or unsealed
    ``config.json`` is refused (docs/security.md)."""
    from cryo.storage import config as C
    from cryo.storage import schema as S

    cfg = S.defaults()
    if session.eval(f"_cry_size({paths.CONFIG_PATH!r})") >= 0:
        try:
            cfg, version = C.decode(session.read_file(paths.CONFIG_PATH), paths.CONFIG_PATH)
        except C.ConfigError as e:
            raise InvalidInput(f"{e}: write a good configuration before provisioning") from None
        if version != S.SCHEMA_VERSION:
            cfg, _ = S.migrate(cfg)
    problems = S.validate(cfg)
    if problems:
        raise InvalidInput(f"{paths.CONFIG_PATH} invalid: {'; '.join(problems)}: fix it first")
    data = write_sealed(session, cfg, key)
    session.write_file(paths.CONFIG_PATH + ".lkg.tmp", data)
    session.exec(f"os.rename({paths.CONFIG_PATH + '.lkg.tmp'!r}, {paths.CONFIG_PATH + '.lkg'!r})")


def register(sub):
    from host_tools.device.connect import add_port_argument

    p = sub.add_parser("keys", help="manufacturer keys: create, provision a board")
    output.add_json_argument(p)
    ks = p.add_subparsers(dest="keys_cmd", metavar="ACTION", required=True)
    pi = ks.add_parser("init", help="create a development service master secret")
    pi.add_argument("--dir", help=f"key directory (default ${ENV_KEYS} or ~/.config/cryo/keys)")
    pi.set_defaults(func=_cmd_init)
    pr = ks.add_parser("release-init", help="create a development release-signing key (Ed25519)")
    pr.add_argument("--dir", help=f"key directory (default ${ENV_KEYS} or ~/.config/cryo/keys)")
    pr.set_defaults(func=_cmd_release_init)
    pp = ks.add_parser("provision", help="give a development board its id and service key")
    pp.add_argument("--dir", help=f"key directory (default ${ENV_KEYS} or ~/.config/cryo/keys)")
    pp.add_argument("--device-id", help="the id to give (default: the board's unique id)")
    add_port_argument(pp)
    pp.set_defaults(func=_cmd_provision)


def _cmd_init(args) -> int:
    p = init_master(args.dir)
    output.emit(args, {"created": str(p)}, f"created {p}")
    return 0


def _cmd_release_init(args) -> int:
    p = init_release(args.dir)
    pub = public_hex(release_key(args.dir))
    output.emit(args, {"created": str(p), "public_key": pub}, f"created {p}; public key {pub}")
    return 0


def _cmd_provision(args) -> int:
    from host_tools.device.connect import Session, resolve_port

    with Session(resolve_port(args.port)) as s:
        dev = provision(s, args.dir, args.device_id)
    text = f"device {dev} provisioned: its link commands are authenticated from its next start"
    output.emit(args, {"provisioned": dev}, text)
    return 0


def sign_release(info: dict, manifest_text: str, signer=None) -> str | None:
    """``manifest.sig`` for a device that checks releases (``info["release"]``
    from the probe), else None. ``signer``: a private key; None = the key
    directory's; False = send the release unsigned (the device refuses it)."""
    from cryo.app import manifest, release

    if not info.get("release") or signer is False:
        return None
    if signer is None:
        signer = release_key()
        if signer is None:
            raise AccessDenied(
                f"this device installs only signed releases: no {RELEASE_NAME} in "
                f"{keys_dir()} (${ENV_KEYS}); the manufacturer signs releases"
            )
    meta, _, body, _ = manifest.parse(manifest_text)
    code = release.version_code(meta.get("version"))
    return release.sig_text(code, signer.sign(release.message(body, code)))
