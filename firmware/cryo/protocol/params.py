"""Treatment and safety parameters: defaults and hard clinical limits.

Each entry: (name, default, low, high, unit, role, why). ``low``/``high``
are hard limits compiled into the firmware: configuration can choose a value
inside them, never outside (clinical-safety.md §3.7 item 5: "hard-coded,
non-configurable ceilings; clinician-editable protocol values within them").
Defaults come from the clinical reference (§1.3: contact/spray keloid
cryotherapy, 1-3 freeze-thaw cycles of 10-30 s; thaw about 30 s before
re-freezing) and from the controller reference (control.md §7).

``role`` is the lowest role allowed to change the value: "operator" for the
protocol a clinician picks per patient, "service" for the safety limits.
"""

PARAMS = (
    # Protocol (per treatment).
    ("target_c", -35.0, -50.0, -20.0, "degC", "operator", "tissue target; lethal -20..-50 (§1.2)"),
    ("freeze_s", 20.0, 5.0, 30.0, "s", "operator", "hold at target per cycle (10-30 s, §1.3)"),
    ("cycles", 2, 1, 3, "", "operator", "freeze-thaw cycles (1-3, §1.3)"),
    ("thaw_c", 0.0, -5.0, 20.0, "degC", "operator", "tissue must rise above this to end THAW"),
    ("min_thaw_s", 30.0, 10.0, 300.0, "s", "operator", "minimum thaw before re-freezing (~30 s)"),
    ("precool_s", 20.0, 3.0, 60.0, "s", "engineer", "pre-cool (line chill-down) timeout"),
    (
        "precool_aux_c",
        -100.0,
        -190.0,
        -20.0,
        "degC",
        "engineer",
        "line chilled below this ends PRECOOL",
    ),
    ("precool_drop_c", 3.0, 0.5, 20.0, "degC", "engineer", "tissue drop that also ends PRECOOL"),
    # Safety limits (interlock).
    (
        "floor_c",
        -60.0,
        -80.0,
        -30.0,
        "degC",
        "service",
        "hard floor (§3.7 item 2: below -60 surface)",
    ),
    (
        "floor_margin_c",
        10.0,
        5.0,
        40.0,
        "degC",
        "service",
        "target must stay this far above the floor",
    ),
    ("freeze_max_s", 60.0, 10.0, 120.0, "s", "service", "hard maximum of the hold at target"),
    ("approach_max_s", 600.0, 30.0, 900.0, "s", "service", "hard maximum of a whole FREEZE phase"),
    ("tune_max_s", 1800.0, 60.0, 3600.0, "s", "service", "hard maximum of an autotune/step test"),
    ("dose_threshold_c", -10.0, -30.0, 0.0, "degC", "service", "cold dose counts below this"),
    (
        "dose_max_cs",
        6000.0,
        100.0,
        30000.0,
        "degC*s",
        "service",
        "cumulative cold dose per treatment",
    ),
    ("disagree_c", 10.0, 2.0, 30.0, "degC", "service", "redundant tissue sensors max difference"),
    ("nocool_hyst_c", 5.0, 1.0, 20.0, "degC", "service", "failure-to-cool band above setpoint"),
    (
        "nocool_max_cs",
        60.0,
        5.0,
        600.0,
        "degC*s",
        "service",
        "failure-to-cool integral (Klipper max_error)",
    ),
    ("watch_drop_c", 2.0, 0.5, 10.0, "degC", "service", "watch: tissue must fall this much ..."),
    (
        "watch_s",
        60.0,
        2.0,
        120.0,
        "s",
        "service",
        "... within this time (Marlin WATCH_COOLER 60 s)",
    ),
    (
        "stuck_rate_c_s",
        2.0,
        0.5,
        20.0,
        "degC/s",
        "service",
        "falling faster with valve closed: stuck",
    ),
    ("stuck_window_s", 2.0, 0.5, 10.0, "s", "service", "stuck-open observation window"),
    ("stuck_grace_s", 1.0, 0.2, 10.0, "s", "service", "after closing: dead time + probe lag"),
    ("depl_window_s", 60.0, 2.0, 120.0, "s", "service", "depletion: full duty window"),
    (
        "depl_drop_c",
        0.5,
        0.1,
        10.0,
        "degC",
        "service",
        "depletion: min drop per window at full duty",
    ),
    (
        "depl_aux_c",
        -60.0,
        -180.0,
        0.0,
        "degC",
        "service",
        "line warmer than this at full duty: no liquid",
    ),
    ("duty_full", 0.95, 0.5, 1.0, "", "service", "demand counted as full duty"),
    ("p_min_kpa", 60.0, 0.0, 500.0, "kPa", "service", "supply pressure window, low end"),
    ("p_max_kpa", 250.0, 50.0, 1000.0, "kPa", "service", "supply pressure window, high end"),
    ("p_low_kpa", 100.0, 0.0, 500.0, "kPa", "service", "below this while cooling: depleted"),
    ("stale_ms", 500, 150, 3000, "ms", "service", "no good sample this long: stale (3-7 s max)"),
    ("debounce", 3, 1, 10, "samples", "service", "consecutive bad samples to trip (3-4)"),
    ("period_ms", 100, 20, 200, "ms", "service", "control tick period (10 Hz)"),
    ("heartbeat_ms", 500, 100, 2000, "ms", "service", "gap between ticks counted as missed"),
    ("overruns", 3, 1, 20, "ticks", "service", "consecutive overruns that trip"),
    (
        "wdt_ms",
        2000,
        500,
        2000,
        "ms",
        "service",
        "hardware watchdog timeout (clinical maximum 2 s)",
    ),
    ("require_wdt", True, False, True, "", "service", "refuse to treat without a hardware WDT"),
    ("require_redundant", False, False, True, "", "service", "refuse to treat without tissue2"),
    # Per-channel plausibility (cryo.supervision.Channel), on raw
    # codes: outside these a sample counts as bad in the interlock's debounce.
    ("tc_min_c", -210.0, -270.0, -150.0, "degC", "service", "plausible probe range, low end"),
    ("tc_max_c", 60.0, 40.0, 100.0, "degC", "service", "plausible probe range, high end"),
    ("cj_min_c", -20.0, -40.0, 10.0, "degC", "service", "plausible cold junction, low end"),
    ("cj_max_c", 70.0, 40.0, 125.0, "degC", "service", "plausible cold junction, high end"),
    ("max_rate_c_s", 50.0, 5.0, 200.0, "degC/s", "service", "faster change is implausible"),
    ("rate_noise_c", 2.0, 0.5, 10.0, "degC", "service", "noise allowance of the rate check"),
    ("stuck_s", 30.0, 5.0, 300.0, "s", "service", "identical raw frame this long: stuck"),
)

# Names used by the stored configuration schema (cryo.storage.schema) for
# the same quantities; ``normalize`` maps them onto the names above.
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

_INDEX = {}
for _i, _p in enumerate(PARAMS):
    _INDEX[_p[0]] = _i

# Cross-field rules (name, check, message) evaluated after the ranges.
_RULES = (
    (
        lambda c: c["target_c"] >= c["floor_c"] + c["floor_margin_c"],
        "target_c must be at least floor_margin_c above floor_c",
    ),
    (lambda c: c["freeze_max_s"] > c["freeze_s"], "freeze_max_s must exceed freeze_s"),
    (lambda c: c["approach_max_s"] > c["freeze_max_s"], "approach_max_s must exceed freeze_max_s"),
    (lambda c: c["p_min_kpa"] < c["p_max_kpa"], "p_min_kpa must be below p_max_kpa"),
    (
        lambda c: c["p_min_kpa"] <= c["p_low_kpa"] < c["p_max_kpa"],
        "p_low_kpa must lie within p_min_kpa..p_max_kpa",
    ),
    (lambda c: c["thaw_c"] > c["target_c"], "thaw_c must be above target_c"),
    (lambda c: c["heartbeat_ms"] >= 2 * c["period_ms"], "heartbeat_ms must be >= 2 * period_ms"),
    (lambda c: c["stale_ms"] >= c["period_ms"], "stale_ms must be >= period_ms"),
)


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
        return "%s = %r is outside the hard limits %r..%r %s" % (name, value, lo, hi, p[4])
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
    full = merged(cfg)
    for rule, msg in _RULES:
        if not rule(full):
            msgs.append(msg)
    return msgs


def merged(cfg):
    """Defaults overlaid with the protocol fields of ``cfg``."""
    out = defaults()
    n = normalize(cfg)
    for k in n:
        out[k] = n[k]
    return out
