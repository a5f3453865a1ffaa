"""Treatment and safety parameters: defaults and hard clinical limits.

Each entry: (name, default, low, high, unit, role, why), taken from the
configuration schema (``cryo.storage.schema``) through ``ALIASES``.
``low``/``high`` are hard limits compiled into the firmware: configuration
can choose a value inside them, never outside (hard-coded, non-configurable
ceilings; clinician-editable protocol values within them — IEC 60601-1
single-fault safety, ISO 14971 risk control by design).
Defaults: contact/spray keloid cryotherapy uses 1-3 freeze-thaw cycles of
10-30 s with a complete thaw (about 30 s) before re-freezing.

``role`` is the lowest role allowed to change the value: "operator" for the
protocol a clinician picks per patient, "service" for the safety limits.
"""

from cryo.storage import schema as _schema

# The controller's short names for the schema fields (cryo.storage.schema)
# that are protocol parameters and interlock limits; ``normalize`` maps a
# stored configuration onto them.
ALIASES = {
    "protocol.target_c": "target_c",
    "protocol.freeze_s": "freeze_s",
    "protocol.cycles": "cycles",
    "protocol.thaw_threshold_c": "thaw_c",
    "protocol.min_thaw_s": "min_thaw_s",
    "protocol.precool_s": "precool_s",
    "protocol.precool_aux_c": "precool_aux_c",
    "protocol.precool_drop_c": "precool_drop_c",
    "limits.floor_c": "floor_c",
    "limits.floor_margin_c": "floor_margin_c",
    "limits.max_freeze_s": "freeze_max_s",
    "limits.approach_max_s": "approach_max_s",
    "limits.tune_max_s": "tune_max_s",
    "limits.dose_threshold_c": "dose_threshold_c",
    "limits.cold_dose_cs": "dose_max_cs",
    "limits.disagree_c": "disagree_c",
    "limits.nocool_hyst_c": "nocool_hyst_c",
    "limits.nocool_max_cs": "nocool_max_cs",
    "limits.watch_drop_c": "watch_drop_c",
    "limits.watch_s": "watch_s",
    "limits.stuck_rate_c_s": "stuck_rate_c_s",
    "limits.stuck_window_s": "stuck_window_s",
    "limits.stuck_grace_s": "stuck_grace_s",
    "limits.stuck_line_c": "stuck_line_c",
    "limits.flow_max_s": "flow_max_s",
    "limits.floor_lead_s": "floor_lead_s",
    "limits.depl_window_s": "depl_window_s",
    "limits.depl_drop_c": "depl_drop_c",
    "limits.depl_aux_c": "depl_aux_c",
    "limits.duty_full": "duty_full",
    "limits.p_min_kpa": "p_min_kpa",
    "limits.p_max_kpa": "p_max_kpa",
    "limits.p_low_kpa": "p_low_kpa",
    "limits.stale_ms": "stale_ms",
    "limits.debounce": "debounce",
    "limits.heartbeat_ms": "heartbeat_ms",
    "limits.overruns": "overruns",
    "limits.wdt_ms": "wdt_ms",
    "limits.require_wdt": "require_wdt",
    "limits.require_redundant": "require_redundant",
    "sensor.t_min_c": "tc_min_c",
    "sensor.t_max_c": "tc_max_c",
    "sensor.cj_min_c": "cj_min_c",
    "sensor.cj_max_c": "cj_max_c",
    "sensor.max_rate_c_s": "max_rate_c_s",
    "sensor.rate_noise_c": "rate_noise_c",
    "sensor.stuck_s": "stuck_s",
    "pid.period_ms": "period_ms",
}


def _from_schema():
    # One source of truth: default, range, unit, role and description of
    # every parameter come from the configuration schema, so the device and
    # the host (which validates files with the same schema) cannot disagree.
    out = []
    for full in ALIASES:
        f = _schema.field(full)
        # (name, default, low, high, unit, role, why)
        out.append((ALIASES[full], f[6], f[3], f[4], f[2], f[5], f[7]))
    return tuple(out)


PARAMS = _from_schema()
# Short names of the fields whose range is a factory clinical bound.
_BOUNDED = tuple(ALIASES[k] for k in _schema.CLINICAL_BOUNDS if k in ALIASES)

_INDEX = {}
for _i, _p in enumerate(PARAMS):
    _INDEX[_p[0]] = _i


def spec(name):
    """The PARAMS entry for ``name``; ValueError names the allowed fields."""
    i = _INDEX.get(name)
    if i is None:
        raise ValueError("unknown parameter %r; allowed: %s" % (name, ", ".join(sorted(_INDEX))))
    return PARAMS[i]


def defaults():
    out = {}
    for p in PARAMS:
        out[p[0]] = p[1]
    return out


def check_value(name, value):
    """Message naming what is wrong with one value (None if it is fine)."""
    p = spec(name)
    default, lo, hi = p[1], p[2], p[3]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            return "%s must be true or false, got %r" % (name, value)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "%s must be a number (%s), got %r" % (name, p[4] or "count", value)
    if isinstance(default, int) and not isinstance(value, int):
        return "%s must be an integer, got %r" % (name, value)
    if value != value or not (lo <= value <= hi):
        what = "factory clinical bound" if name in _BOUNDED else "hard limits"
        return "%s = %r is outside the %s %r..%r %s (no role can widen it)" % (
            name,
            value,
            what,
            lo,
            hi,
            p[4],
        )
    return None


def normalize(cfg):
    """The protocol fields of ``cfg`` under this module's names (schema
    aliases mapped; other subsystems' fields dropped)."""
    out = {}
    if not isinstance(cfg, dict):
        return out
    for k in cfg:
        name = ALIASES.get(k, k)
        if name in _INDEX:
            out[name] = cfg[k]
    return out


def validate(cfg):
    """List of clear messages (empty = valid). Fields of other subsystems
    are ignored; missing fields take the default (see ``merged``)."""
    msgs = []
    if not isinstance(cfg, dict):
        return ["configuration must be a dict of parameters"]
    cfg = normalize(cfg)
    for k in cfg:
        if k not in _INDEX:
            continue  # other subsystems' fields (pid.*, board, ...) are not ours
        m = check_value(k, cfg[k])
        if m:
            msgs.append(m)
    if msgs:
        return msgs
    # Cross-field rules: the schema's, on the schema names of our fields.
    full = merged(cfg)
    return _schema.cross_check(lambda k: full.get(ALIASES.get(k)))


def merged(cfg):
    """Defaults overlaid with the protocol fields of ``cfg``."""
    out = defaults()
    n = normalize(cfg)
    for k in n:
        out[k] = n[k]
    return out
