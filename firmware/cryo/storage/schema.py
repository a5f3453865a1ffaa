"""Configuration schema: every field with type, unit, range and role.

Imported by the firmware and by the host tools (no ``micropython``
import), so device and host validate with the same rules and messages.

Roles are ordered: operator < engineer < service. A role may change the
fields of its own level and below:

* operator - treatment protocol, within the hard clinical limits;
* engineer - PID gains, sensors and calibration, alarm and log settings;
* service  - hard clinical limits and log retention (overwrite policy).

Hard clinical limits (clinical-safety.md §1.2, §3.7 item 2 and 5): a
floor of -60 degC for contact/spray (a service engineer may set -30..-80
degC), a margin the target keeps above it, a maximum freeze time, a
maximum number of freeze-thaw cycles and a cold-dose ceiling. The protocol
is validated against the limits in force (cross-field rules in
:func:`validate`). The ranges of the protocol and limit fields equal the
ranges compiled into the firmware (``cryo.protocol.params``; its ALIASES
map these names), so a file the host accepts is one the device accepts.

Schema history: v1 (flat keys, firmware 0.0.x) -> v2 (dotted keys, cold
dose, alarm and log settings); :func:`migrate` upgrades v1 files.
"""

SCHEMA_VERSION = 2

ROLE_OPERATOR = 1
ROLE_ENGINEER = 2
ROLE_SERVICE = 3
ROLES = {"operator": ROLE_OPERATOR, "engineer": ROLE_ENGINEER, "service": ROLE_SERVICE}
ROLE_NAMES = {ROLE_OPERATOR: "operator", ROLE_ENGINEER: "engineer", ROLE_SERVICE: "service"}

# (name, type, unit, low, high, role, default, description)
# type: "float", "int", "bool" or a tuple of allowed strings (choice).
_TC = ("K", "T")
_CHIP = ("MAX31855", "MAX31856")
FIELDS = (
    # PID (reverse acting: demand 0..1 = fraction of valve-open time)
    ("pid.kp", "float", "1/degC", 0.0, 10.0, "engineer", 0.05, "proportional gain"),
    ("pid.ki", "float", "1/(degC*s)", 0.0, 5.0, "engineer", 0.01, "integral gain"),
    ("pid.kd", "float", "s/degC", 0.0, 50.0, "engineer", 0.0, "derivative gain"),
    ("pid.period_ms", "int", "ms", 20, 200, "service", 100, "control tick period"),
    # Sensors and calibration (reading = gain * raw + offset)
    ("sensor.tissue.type", _TC, "", None, None, "engineer", "T", "thermocouple type"),
    ("sensor.tissue.chip", _CHIP, "", None, None, "engineer", "MAX31856", "converter"),
    ("sensor.tissue.offset_c", "float", "degC", -5.0, 5.0, "engineer", 0.0, "calibration offset"),
    ("sensor.tissue.gain", "float", "", 0.9, 1.1, "engineer", 1.0, "calibration gain"),
    ("sensor.aux.type", _TC, "", None, None, "engineer", "T", "thermocouple type"),
    ("sensor.aux.chip", _CHIP, "", None, None, "engineer", "MAX31856", "converter"),
    ("sensor.aux.offset_c", "float", "degC", -5.0, 5.0, "engineer", 0.0, "calibration offset"),
    ("sensor.aux.gain", "float", "", 0.9, 1.1, "engineer", 1.0, "calibration gain"),
    # Protocol defaults (operator, within the limits below)
    (
        "protocol.target_c",
        "float",
        "degC",
        -50.0,
        -20.0,
        "operator",
        -35.0,
        "target tissue temperature",
    ),
    ("protocol.freeze_s", "float", "s", 5.0, 30.0, "operator", 20.0, "freeze time per cycle"),
    ("protocol.cycles", "int", "", 1, 3, "operator", 2, "freeze-thaw cycles"),
    ("protocol.thaw_threshold_c", "float", "degC", -5.0, 20.0, "operator", 0.0, "thawed above"),
    ("protocol.min_thaw_s", "float", "s", 10.0, 300.0, "operator", 30.0, "minimum thaw time"),
    # Hard clinical limits (service only)
    ("limits.floor_c", "float", "degC", -80.0, -30.0, "service", -60.0, "hard tissue floor"),
    ("limits.floor_margin_c", "float", "degC", 5.0, 40.0, "service", 10.0, "target above floor by"),
    ("limits.sentinel_floor_c", "float", "degC", -60.0, 0.0, "service", -50.0, "aux floor"),
    ("limits.max_freeze_s", "float", "s", 10.0, 120.0, "service", 60.0, "hard max freeze time"),
    ("limits.max_cycles", "int", "", 1, 3, "service", 3, "hard max cycles"),
    (
        "limits.cold_dose_cs",
        "float",
        "degC*s",
        100.0,
        30000.0,
        "service",
        6000.0,
        "hard max cold dose: integral of -T over time below 0 degC per session",
    ),
    # Alarms
    ("alarm.volume_pct", "int", "%", 20, 100, "engineer", 80, "alarm volume"),
    ("alarm.audio_pause_s", "int", "s", 30, 120, "engineer", 120, "audio pause duration"),
    ("alarm.low_reservoir_pct", "int", "%", 5, 50, "engineer", 15, "low reservoir alarm"),
    # Treatment log
    ("log.sample_hz", "int", "Hz", 1, 50, "engineer", 10, "log sample rate"),
    ("log.commit_every", "int", "samples", 1, 50, "engineer", 10, "samples per flash commit"),
    ("log.max_kib", "int", "KiB", 64, 16384, "service", 1024, "log space on flash"),
    (
        "log.overwrite_unpulled",
        "bool",
        "",
        None,
        None,
        "service",
        False,
        "may rotation delete sessions the host has not pulled",
    ),
)

_BY_NAME = {}
for _f in FIELDS:
    _BY_NAME[_f[0]] = _f


def field(name):
    """The schema entry of ``name`` or None."""
    return _BY_NAME.get(name)


def defaults():
    """A complete v2 configuration with the documented defaults.

    Only for creating a new config explicitly (factory setup, tests); the
    loader never falls back to it silently.
    """
    cfg = {"schema_version": SCHEMA_VERSION}
    for f in FIELDS:
        cfg[f[0]] = f[6]
    return cfg


def _num(v):
    # "%g" is the same on CPython and MicroPython for these magnitudes.
    if isinstance(v, float):
        return "%g" % v
    return str(v)


def _allowed(f):
    ftype, unit = f[1], f[2]
    if isinstance(ftype, tuple):
        return "one of " + ", ".join(ftype)
    if ftype == "bool":
        return "true or false"
    u = " " + unit if unit else ""
    return "%s .. %s%s" % (_num(f[3]), _num(f[4]), u)


def _shown(v):
    if isinstance(v, str):
        return '"%s"' % v
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    return _num(v)


def check_value(name, value):
    """Message if ``value`` is not valid for field ``name`` (else None)."""
    f = _BY_NAME.get(name)
    if f is None:
        return "unknown field %s" % name
    ftype = f[1]
    unit = (" " + f[2]) if f[2] else ""
    if isinstance(ftype, tuple):
        if not isinstance(value, str) or value not in ftype:
            return "%s = %s is not allowed: %s" % (name, _shown(value), _allowed(f))
        return None
    if ftype == "bool":
        if not isinstance(value, bool):
            return "%s = %s has the wrong type: expected true or false" % (name, _shown(value))
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "%s = %s has the wrong type: expected a number (%s)" % (
            name,
            _shown(value),
            _allowed(f),
        )
    if ftype == "int" and not isinstance(value, int):
        return "%s = %s has the wrong type: expected a whole number (%s)" % (
            name,
            _shown(value),
            _allowed(f),
        )
    if value != value or value < f[3] or value > f[4]:
        return "%s = %s%s is out of range: allowed %s" % (name, _shown(value), unit, _allowed(f))
    return None


def _cross(cfg, out):
    # The protocol must stay within the hard limits in force.
    def g(k):
        v = cfg.get(k)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    target, floor = g("protocol.target_c"), g("limits.floor_c")
    margin = g("limits.floor_margin_c")
    if target is not None and floor is not None and margin is not None:
        if target < floor + margin:
            out.append(
                "protocol.target_c = %s degC is too close to the hard limit: allowed from "
                "limits.floor_c + limits.floor_margin_c = %s degC upwards"
                % (_num(target), _num(floor + margin))
            )
    fs, mfs = g("protocol.freeze_s"), g("limits.max_freeze_s")
    if fs is not None and mfs is not None and fs >= mfs:
        out.append(
            "protocol.freeze_s = %s s reaches the hard limit: allowed below "
            "limits.max_freeze_s = %s s" % (_num(fs), _num(mfs))
        )
    cy, mcy = g("protocol.cycles"), g("limits.max_cycles")
    if cy is not None and mcy is not None and cy > mcy:
        out.append(
            "protocol.cycles = %s exceeds the hard limit: allowed up to limits.max_cycles = %s"
            % (_num(cy), _num(mcy))
        )
    thaw = g("protocol.thaw_threshold_c")
    if thaw is not None and target is not None and thaw <= target:
        out.append(
            "protocol.thaw_threshold_c = %s degC must be above protocol.target_c = %s degC"
            % (_num(thaw), _num(target))
        )
    dose_max = g("limits.cold_dose_cs")
    if None not in (target, fs, cy, dose_max):
        dose = -target * fs * cy
        if dose > dose_max:
            out.append(
                "protocol cold dose %s degC*s (-target_c * freeze_s * cycles) exceeds the hard "
                "limit: allowed up to limits.cold_dose_cs = %s degC*s"
                % (_num(float(dose)), _num(dose_max))
            )
    sf, fl = g("limits.sentinel_floor_c"), g("limits.floor_c")
    if sf is not None and fl is not None and sf < fl:
        out.append(
            "limits.sentinel_floor_c = %s degC must not be below limits.floor_c = %s degC"
            % (_num(sf), _num(fl))
        )


def validate(cfg):
    """All problems of ``cfg`` as clear messages (empty list = valid).

    Each message names the field, the value and what is allowed.
    """
    out = []
    if not isinstance(cfg, dict):
        return ["configuration must be an object of fields, got %s" % type(cfg).__name__]
    v = cfg.get("schema_version")
    if v != SCHEMA_VERSION:
        out.append(
            "schema_version = %s is not supported here: expected %d (migrate older files first)"
            % (_shown(v), SCHEMA_VERSION)
        )
    for f in FIELDS:
        if f[0] not in cfg:
            out.append("%s is missing: required, allowed %s" % (f[0], _allowed(f)))
            continue
        msg = check_value(f[0], cfg[f[0]])
        if msg:
            out.append(msg)
    for k in sorted(cfg):
        if k != "schema_version" and k not in _BY_NAME:
            out.append("unknown field %s (not in schema v%d)" % (k, SCHEMA_VERSION))
    if not out:
        _cross(cfg, out)
    return out


def role_level(role):
    """Role name or number -> level; ValueError naming allowed roles."""
    if isinstance(role, int) and role in ROLE_NAMES:
        return role
    if role in ROLES:
        return ROLES[role]
    raise ValueError("unknown role %r: allowed operator, engineer, service" % (role,))


def check_role(name, role):
    """Message if ``role`` may not change field ``name`` (else None)."""
    f = _BY_NAME.get(name)
    if f is None:
        return "unknown field %s" % name
    need = ROLES[f[5]]
    have = role_level(role)
    if have < need:
        return "role %s may not change %s: requires %s" % (ROLE_NAMES[have], name, f[5])
    return None


# -- migrations ------------------------------------------------------------

# v1 (firmware 0.0.x): flat keys. Fields that v1 did not have are added
# with their documented default, and every such addition is reported.
_V1_RENAMES = {
    "kp": "pid.kp",
    "ki": "pid.ki",
    "kd": "pid.kd",
    "tc_type": "sensor.tissue.type",
    "tc_offset": "sensor.tissue.offset_c",
    "target_temp": "protocol.target_c",
    "freeze_time": "protocol.freeze_s",
    "cycles": "protocol.cycles",
    "thaw_temp": "protocol.thaw_threshold_c",
    "min_thaw_time": "protocol.min_thaw_s",
    "floor_temp": "limits.floor_c",
    "max_freeze_time": "limits.max_freeze_s",
    "max_cycles": "limits.max_cycles",
    "alarm_volume": "alarm.volume_pct",
}


def migrate_v1(old):
    """v1 dict -> (v2 dict, notes). Unknown v1 keys are reported, not kept."""
    new = {"schema_version": 2}
    notes = []
    for k in sorted(old):
        if k == "schema_version":
            continue
        if k in _V1_RENAMES:
            new[_V1_RENAMES[k]] = old[k]
            notes.append("v1 %s -> %s" % (k, _V1_RENAMES[k]))
        else:
            notes.append("v1 field %s dropped (no v2 equivalent)" % k)
    for f in FIELDS:
        if f[0] not in new:
            new[f[0]] = f[6]
            notes.append("%s added with default %s (not in v1)" % (f[0], _shown(f[6])))
    return new, notes


MIGRATIONS = {1: migrate_v1}


def migrate(cfg):
    """Upgrade ``cfg`` to SCHEMA_VERSION: ``(cfg, notes)``.

    ValueError (clear message) for unknown or newer versions.
    """
    v = cfg.get("schema_version", 1) if isinstance(cfg, dict) else None
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError("schema_version = %s is not a version number" % _shown(v))
    if v > SCHEMA_VERSION:
        raise ValueError(
            "schema_version = %d is newer than this firmware supports (%d)" % (v, SCHEMA_VERSION)
        )
    notes = []
    while v < SCHEMA_VERSION:
        step = MIGRATIONS.get(v)
        if step is None:
            raise ValueError("schema_version = %d has no migration to %d" % (v, SCHEMA_VERSION))
        cfg, n = step(cfg)
        notes.extend(n)
        v = cfg["schema_version"]
    return cfg, notes
