"""Configuration files: CRC-checked, atomically written, never silently defaulted.

File format (text, so service staff can read it)::

    CRYOCFG <schema version> <crc32 of body, 8 hex digits> <body length>\\n
    <body: one JSON object, keys sorted>

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
from binascii import crc32 as _crc32

from cryo.storage import schema
from cryo.storage.files import read_file, write_atomic

MAGIC = "CRYOCFG"
FAULT_FALLBACK = 1
FAULT_UNUSABLE = 2


class ConfigError(ValueError):
    """A rejected change or file; the message says what and what is allowed."""


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


def encode(cfg):
    """Complete file contents (bytes) for ``cfg``."""
    body = encode_body(cfg).encode()
    head = "%s %d %08x %d\n" % (
        MAGIC,
        cfg.get("schema_version", 0),
        _crc32(body) & 0xFFFFFFFF,
        len(body),
    )
    return head.encode() + body


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


def decode(data, name="config"):
    """File bytes -> (cfg dict as stored, version). ConfigError if damaged."""
    nl = data.find(b"\n")
    if nl < 0:
        raise ConfigError("%s: truncated or not a config file (no header line)" % name)
    head = data[:nl].decode().split(" ")
    if len(head) != 4 or head[0] != MAGIC:
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
    actual = _crc32(body) & 0xFFFFFFFF
    if actual != crc:
        raise ConfigError(
            "%s: CRC mismatch (stored %08x, computed %08x): corrupt" % (name, crc, actual)
        )
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


def _load_one(path, notes):
    """(cfg, None) if usable, else (None, message)."""
    try:
        data = read_file(path)
    except OSError:
        return None, "%s: missing" % path
    try:
        cfg, version = decode(data, path)
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


def load(path, notes=None):
    """Boot-time load with last-known-good fallback: ``(cfg, fault)``.

    Primary valid: ``(cfg, None)``; the last-known-good copy is refreshed
    if it differs, and a migrated file is written back in the new version.
    Primary bad, LKG valid: ``(lkg_cfg, ConfigFault(FAULT_FALLBACK, ...))``.
    Neither: ``(None, ConfigFault(FAULT_UNUSABLE, ...))``. ``notes``: a list
    that receives migration notes.
    """
    if notes is None:
        notes = []
    n0 = len(notes)
    cfg, msg = _load_one(path, notes)
    lkg_path = path + ".lkg"
    if cfg is not None:
        data = encode(cfg)
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
    lkg, msg2 = _load_one(lkg_path, notes)
    if lkg is not None:
        return lkg, ConfigFault(FAULT_FALLBACK, [msg], "lkg")
    return None, ConfigFault(FAULT_UNUSABLE, [msg, msg2], None)


def save(cfg, path):
    """Validate, then write atomically. ConfigError listing every problem."""
    problems = schema.validate(cfg)
    if problems:
        raise ConfigError("configuration not saved: " + "; ".join(problems))
    write_atomic(path, encode(cfg))


def parse_value(name, text):
    """Text from a UI/CLI -> typed value for field ``name`` (ConfigError if not)."""
    f = schema.field(name)
    if f is None:
        raise ConfigError("unknown field %s" % name)
    t = f[1]
    if isinstance(t, tuple):
        return text
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
