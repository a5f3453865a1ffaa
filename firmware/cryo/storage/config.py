"""Configuration files: CRC-checked, atomically written, never silently defaulted.

File format (text, so service staff can read it)::

    CRYOCFG <schema version> <crc32 of body, 8 hex digits> <body length>[ <mac>]\\n
    <body: one JSON object, keys sorted>

The CRC catches accidents. A provisioned device (docs/security.md) also
writes ``<mac>``: HMAC-SHA256 (RFC 2104) under the device's audit key
(``cryo.link.auth.audit_key``: the same per-device key that keys the audit
trail, never a second one) of ``MAC_LABEL`` followed by the body, in hex.
The label keeps a configuration MAC from ever equalling an audit entry's.
Loaded with that key, a file without a MAC or whose MAC does not verify was
written outside the firmware (chip removal, an old REPL) and is refused:
:class:`ConfigTampered`, and :func:`load` does not fall back to the last
known good copy either (``FAULT_UNUSABLE``: no treatment until an
authenticated rewrite). A device without the key (development) neither
writes nor checks a MAC.

Writes are atomic: ``<path>.tmp`` is written and flushed, then renamed over
``<path>`` (littlefs renames atomically, littlefs DESIGN.md: after a power
cut the file is the old or the new one; tests/storage proves it at every
flash operation). ``<path>.lkg`` holds the *last known good* configuration:
the last one that loaded and validated at boot.

``load(path)`` returns ``(cfg, fault)``. ``fault`` is None when the primary
file is intact and valid; otherwise a :class:`ConfigFault` the core turns
into a latched fault: ``FAULT_FALLBACK`` (running on the last known good
file) or ``FAULT_UNUSABLE`` (no usable configuration: ``cfg`` is None and
no treatment may start). Each message names the file, and the field, value
and allowed range where one is at fault. Older schema versions are
migrated in memory, written back atomically, and reported in ``notes``.
"""

import hashlib
import json
from binascii import hexlify

from cryo.app.hmac256 import equal, hmac_sha256
from cryo.crc import crc32
from cryo.storage import schema
from cryo.storage.files import read_file, write_atomic

MAGIC = "CRYOCFG"
FAULT_FALLBACK = 1
FAULT_UNUSABLE = 2
MAC_LABEL = b"cryo-config-mac-v1\n"
_MAC_HEX = 64
REWRITE = (
    "rewrite it with an authenticated save (link `save`, or `cryo config` by the service role)"
)


class ConfigError(ValueError):
    """A rejected change or file; the message says what and what is allowed."""


class ConfigTampered(ConfigError):
    """A file a provisioned device did not write itself: no MAC, or a MAC
    that does not verify under its key."""


class ConfigFault:
    """Data for the core's fault: ``code``, ``messages``, ``source``."""

    def __init__(self, code, messages, source):
        self.code = code
        self.messages = messages
        self.source = source  # "lkg" or None

    def __str__(self):
        what = "using last known good" if self.code == FAULT_FALLBACK else "no usable configuration"
        return "config fault (%s): %s" % (what, "; ".join(self.messages))

    def __repr__(self):
        return "ConfigFault(%d, %r, %r)" % (self.code, self.messages, self.source)


def _jval(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v)


def encode_body(cfg):
    """Canonical JSON body: keys sorted, no spaces (same on both interpreters)."""
    parts = []
    for k in sorted(cfg):
        parts.append(json.dumps(k) + ":" + _jval(cfg[k]))
    return "{" + ",".join(parts) + "}"


def body_mac(key, body):
    """Hex (bytes) of the configuration MAC of ``body`` under the device key."""
    return hexlify(hmac_sha256(key, MAC_LABEL + body))


def encode(cfg, key=None):
    """Complete file contents (bytes) for ``cfg``; with the device ``key``
    (provisioned device) the header carries the body's MAC."""
    body = encode_body(cfg).encode()
    head = "%s %d %08x %d" % (
        MAGIC,
        cfg.get("schema_version", 0),
        crc32(body),
        len(body),
    )
    mac = b"" if key is None else b" " + body_mac(key, body)
    return head.encode() + mac + b"\n" + body


def config_hash(cfg):
    """SHA-256 of the canonical body (recorded in every session header).

    Fed field by field: the same digest as hashing ``encode_body(cfg)``
    without building the whole body (a few kB of contiguous string copies
    that the controller does not need, at boot when the heap is fullest)."""
    h = hashlib.sha256(b"{")
    sep = b""
    for k in sorted(cfg):
        h.update(sep)
        h.update((json.dumps(k) + ":" + _jval(cfg[k])).encode())
        sep = b","
    h.update(b"}")
    return h.digest()


def decode(data, name="config", key=None):
    """File bytes -> (cfg dict as stored, version). ConfigError if damaged;
    with the device ``key``, ConfigTampered if its MAC is missing or wrong."""
    nl = data.find(b"\n")
    if nl < 0:
        raise ConfigError("%s: truncated or not a config file (no header line)" % name)
    head = data[:nl].decode().split(" ")
    if len(head) not in (4, 5) or head[0] != MAGIC:
        raise ConfigError("%s: not a config file (header must start with %s)" % (name, MAGIC))
    try:
        version = int(head[1])
        crc = int(head[2], 16)
        length = int(head[3])
    except ValueError:
        raise ConfigError("%s: damaged header %r" % (name, data[:nl]))
    body = data[nl + 1 :]
    if len(body) != length:
        raise ConfigError(
            "%s: truncated: body is %d bytes, header says %d" % (name, len(body), length)
        )
    actual = crc32(body)
    if actual != crc:
        raise ConfigError(
            "%s: CRC mismatch (stored %08x, computed %08x): corrupt" % (name, crc, actual)
        )
    if key is not None:
        _check_mac(name, key, body, head[4].encode() if len(head) == 5 else None)
    try:
        cfg = json.loads(body)
    except ValueError:
        raise ConfigError("%s: body is not valid JSON" % name)
    if not isinstance(cfg, dict):
        raise ConfigError("%s: body must be a JSON object" % name)
    if cfg.get("schema_version", 1) != version:
        raise ConfigError(
            "%s: header version %d does not match schema_version %r"
            % (name, version, cfg.get("schema_version"))
        )
    return cfg, version


def _check_mac(name, key, body, mac):
    if mac is None:
        raise ConfigTampered(
            "%s: refused: no MAC, so not written by this device (edited outside the "
            "firmware: flash chip or an old REPL); %s" % (name, REWRITE)
        )
    if len(mac) != _MAC_HEX or not equal(mac, body_mac(key, body)):
        raise ConfigTampered(
            "%s: refused: its MAC does not verify under this device's key (edited outside "
            "the firmware: flash chip or an old REPL); %s" % (name, REWRITE)
        )


def _load_one(path, notes, key=None):
    """(cfg, None) if usable, else (None, message); ConfigTampered passes."""
    try:
        data = read_file(path)
    except OSError:
        return None, "%s: missing" % path
    try:
        cfg, version = decode(data, path, key)
    except ConfigTampered:
        raise
    except ConfigError as e:
        return None, str(e)
    if version != schema.SCHEMA_VERSION:
        try:
            cfg, n = schema.migrate(cfg)
        except ValueError as e:
            return None, "%s: %s" % (path, e)
        for m in n:
            notes.append("%s: %s" % (path, m))
    problems = schema.validate(cfg)
    if problems:
        return None, "%s: invalid: %s" % (path, "; ".join(problems))
    return cfg, None


def load(path, notes=None, key=None):
    """Boot-time load with last-known-good fallback: ``(cfg, fault)``.

    Primary valid: ``(cfg, None)``; the last-known-good copy is refreshed
    if it differs, and a migrated file is written back in the new version.
    Primary bad, LKG valid: ``(lkg_cfg, ConfigFault(FAULT_FALLBACK, ...))``.
    Neither: ``(None, ConfigFault(FAULT_UNUSABLE, ...))``. ``notes``: a list
    that receives migration notes. ``key``: the device key of a provisioned
    device; a file it did not MAC (:class:`ConfigTampered`, primary or
    last known good) gives ``(None, ConfigFault(FAULT_UNUSABLE, ...))``
    without any fallback: someone wrote the flash outside the firmware, and
    running on another configuration would hide it.
    """
    if notes is None:
        notes = []
    try:
        return _load(path, notes, key)
    except ConfigTampered as e:
        return None, ConfigFault(FAULT_UNUSABLE, [str(e)], None)


def _load(path, notes, key):
    n0 = len(notes)
    cfg, msg = _load_one(path, notes, key)
    lkg_path = path + ".lkg"
    if cfg is not None:
        data = encode(cfg, key)
        try:
            if len(notes) > n0:  # migrated: store the upgraded file
                write_atomic(path, data)
            try:
                same = read_file(lkg_path) == data
            except OSError:
                same = False
            if not same:
                write_atomic(lkg_path, data)
        except OSError as e:  # flash full or failing: run, but say so
            notes.append("%s: could not write back (%s)" % (path, e))
        return cfg, None
    lkg, msg2 = _load_one(lkg_path, notes, key)
    if lkg is not None:
        return lkg, ConfigFault(FAULT_FALLBACK, [msg], "lkg")
    return None, ConfigFault(FAULT_UNUSABLE, [msg, msg2], None)


def save(cfg, path, key=None):
    """Validate, then write atomically (with its MAC under ``key``, a
    provisioned device's). ConfigError listing every problem."""
    problems = schema.validate(cfg)
    if problems:
        raise ConfigError("configuration not saved: " + "; ".join(problems))
    write_atomic(path, encode(cfg, key))


def parse_value(name, text):
    """Text from a UI/CLI -> typed value for field ``name`` (ConfigError if not)."""
    f = schema.field(name)
    if f is None:
        raise ConfigError("unknown field %s" % name)
    t = f[1]
    if isinstance(t, tuple):
        return text
    if t == "cal" or t == "bands":
        # Structured values are written as JSON (``[[-25, 0.2, 0.05, 0]]``,
        # ``null``); the schema then checks the shape and every number.
        try:
            return json.loads(text)
        except ValueError:
            raise ConfigError("%s = %r is not JSON: allowed %s" % (name, text, schema._allowed(f)))
    if t == "bool":
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ConfigError("%s = %r: expected true or false" % (name, text))
    try:
        return int(text) if t == "int" else float(text)
    except ValueError:
        raise ConfigError("%s = %r is not a number: allowed %s" % (name, text, schema._allowed(f)))


def set_field(cfg, name, value, role, audit=None, time_s=0):
    """Change one field as ``role``; returns the old value.

    Checks, in order: known field, role allowed, type and range, then the
    whole configuration (the protocol must stay within the hard limits).
    ``cfg`` is changed only if everything passes. With ``audit`` (an
    AuditTrail) the change is appended (role, time, field, old, new).
    """
    msg = schema.check_role(name, role) if schema.field(name) else "unknown field %s" % name
    if msg is None:
        msg = schema.check_value(name, value)
    if msg:
        raise ConfigError(msg)
    trial = dict(cfg)
    trial[name] = value
    problems = schema.validate(trial)
    if problems:
        raise ConfigError("; ".join(problems))
    old = cfg.get(name)
    cfg[name] = value
    if audit is not None:
        audit.config_change(time_s, schema.ROLE_NAMES[schema.role_level(role)], name, old, value)
    return old
