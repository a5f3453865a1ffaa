"""Configuration schema: every field with type, unit, range and role.

Imported by the firmware and by the host tools (no ``micropython``
import), so device and host validate with the same rules and messages.

Roles are ordered: operator < engineer < service. A role may change the
fields of its own level and below:

* operator - treatment protocol, within the hard clinical limits;
* engineer - PID gains, sensors and calibration, alarm and log settings;
* service  - hard clinical limits and log retention (overwrite policy).

Hard clinical limits: a floor of -60 degC for contact/spray (lethal
tissue temperatures are -20 to -50 degC; colder risks necrosis beyond the
lesion and pigment loss), a margin the target keeps above it, a maximum
freeze time, a maximum number of freeze-thaw cycles and a cold-dose
ceiling. Their ranges below are factory bounds (``CLINICAL_BOUNDS``): a
service engineer may tighten a limit, no role or file can widen it. The protocol
is validated against the limits in force (cross-field rules in
:func:`cross_check`, the one definition the controller uses too). The
ranges of the protocol and limit fields are the ones the firmware enforces
(``cryo.protocol.params`` reads them from here through its ALIASES), so a
file the host accepts is one the device accepts.

Schema history: v1 (flat keys, firmware 0.0.x) -> v2 (dotted keys, cold
dose, alarm and log settings) -> v3 (every interlock parameter of
``cryo.protocol.params``, per-channel plausibility limits, two-point
calibration per channel, PID derivative filter and gain-schedule bands,
valve timing); :func:`migrate` upgrades older files, reporting every field
it adds, converts or drops.

Structured field types (besides "float", "int", "bool" and choices):

* "cal" - two-point calibration of one thermocouple channel, ``null`` (none)
  or ``{"m1":, "r1":, "m2":, "r2":}``: readings m1, m2 (degC, as measured)
  at reference temperatures r1, r2 (e.g. LN2 -195.8 and the ice point 0);
  the same rules as ``cryo.supervision.channel.Calibration``.
* "bands" - PID gains per setpoint band for ``cryo.control.schedule``:
  a list of at most 8 ``[setpoint_c, kp, ki, kd]`` rows.
"""

SCHEMA_VERSION = 3

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
    # Defaults: SIMC gains the relay autotune measured on the default plant
    # (docs/control.md: hold RMS 0.43 degC at -25 degC).
    ("pid.kp", "float", "1/degC", 0.0, 10.0, "engineer", 0.174, "proportional gain"),
    ("pid.ki", "float", "1/(degC*s)", 0.0, 5.0, "engineer", 0.039, "integral gain"),
    ("pid.kd", "float", "s/degC", 0.0, 50.0, "engineer", 0.0, "derivative gain"),
    ("pid.d_filter_s", "float", "s", 0.0, 10.0, "engineer", 0.5, "derivative filter time"),
    ("pid.period_ms", "int", "ms", 20, 200, "service", 100, "control tick period"),
    ("pid.bands", "bands", "", None, None, "engineer", [], "gains per setpoint band"),
    ("pid.band_c", "float", "degC", 0.5, 20.0, "engineer", 5.0, "band: nearest entry within"),
    # Approach without windup (docs/control.md): `cryo tune` proposes them; the
    # factory zone is wider than the factory gains' saturation band (1/kp), so it
    # acts only where the gains are much weaker than the plant
    ("pid.i_zone_c", "float", "degC", 0.0, 20.0, "engineer", 12.0, "integrate within (0 = off)"),
    ("pid.hold_duty", "float", "", 0.0, 1.0, "engineer", 0.0, "integral preload: holding duty"),
    ("pid.beta", "float", "", 0.0, 1.0, "engineer", 1.0, "P-on-error weight (0 = on meas.)"),
    ("pid.sp_ramp_c_s", "float", "degC/s", 0.0, 10.0, "engineer", 0.0, "setpoint ramp (0 = off)"),
    # The autotune's own cold-dose budget (a clean abort, below limits.cold_dose_cs)
    ("tune.dose_cs", "float", "degC*s", 100.0, 6000.0, "engineer", 4000.0, "autotune dose budget"),
    # Valve time-proportioning (docs/control.md: the window sets the ripple)
    ("valve.window_ms", "int", "ms", 100, 5000, "engineer", 200, "time-proportioning window"),
    ("valve.min_on_ms", "int", "ms", 0, 500, "engineer", 30, "shortest valve pulse"),
    ("valve.min_off_ms", "int", "ms", 0, 500, "engineer", 30, "shortest valve gap"),
    ("valve.service_ms", "int", "ms", 5, 100, "engineer", 10, "valve service sub-tick"),
    ("valve.max_open_ms", "int", "ms", 200, 3000, "service", 1500, "dead-man without refresh"),
    # Sensors and calibration (two-point, per channel; see "cal" above)
    ("sensor.tissue.type", _TC, "", None, None, "engineer", "T", "thermocouple type"),
    ("sensor.tissue.chip", _CHIP, "", None, None, "engineer", "MAX31856", "converter"),
    ("sensor.tissue.cal", "cal", "", None, None, "engineer", None, "two-point calibration"),
    ("sensor.tissue2.cal", "cal", "", None, None, "engineer", None, "two-point calibration"),
    ("sensor.aux.type", _TC, "", None, None, "engineer", "T", "thermocouple type"),
    ("sensor.aux.chip", _CHIP, "", None, None, "engineer", "MAX31856", "converter"),
    ("sensor.aux.cal", "cal", "", None, None, "engineer", None, "two-point calibration"),
    ("sensor.tissue3.cal", "cal", "", None, None, "engineer", None, "two-point calibration"),
    # Per-channel plausibility (service: a sample outside is a bad sample)
    ("sensor.t_min_c", "float", "degC", -270.0, -150.0, "service", -210.0, "probe range low"),
    ("sensor.t_max_c", "float", "degC", 40.0, 100.0, "service", 60.0, "probe range high"),
    ("sensor.cj_min_c", "float", "degC", -40.0, 10.0, "service", -20.0, "cold junction low"),
    ("sensor.cj_max_c", "float", "degC", 40.0, 125.0, "service", 70.0, "cold junction high"),
    ("sensor.max_rate_c_s", "float", "degC/s", 5.0, 200.0, "service", 50.0, "max rate"),
    ("sensor.rate_noise_c", "float", "degC", 0.5, 10.0, "service", 2.0, "rate noise allowance"),
    ("sensor.stuck_s", "float", "s", 5.0, 300.0, "service", 30.0, "identical frame: stuck"),
    # Protocol defaults (operator, within the limits below). Clinical basis
    # lethal tissue temperatures -20..-50 degC (Gage and Baust, Cryobiology
    # 1998); keloid cryotherapy uses 1-3 freeze-thaw cycles of 10-30 s
    # (Zouboulis et al., Arch Dermatol 1993; Har-Shai et al. 2003).
    # These ranges are also the firmware's hard ranges (cryo.protocol.params
    # reads them from here).
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
    ("protocol.precool_s", "float", "s", 3.0, 60.0, "engineer", 20.0, "pre-cool timeout"),
    ("protocol.precool_aux_c", "float", "degC", -190.0, -20.0, "engineer", -100.0, "line chilled"),
    ("protocol.precool_drop_c", "float", "degC", 0.5, 20.0, "engineer", 3.0, "tissue drop"),
    # Hard clinical limits (service only, within factory bounds); floor: a
    # surface below -60 degC risks necrosis beyond the lesion.
    ("limits.floor_c", "float", "degC", -60.0, -30.0, "service", -60.0, "hard tissue floor"),
    ("limits.floor_margin_c", "float", "degC", 5.0, 40.0, "service", 10.0, "target above floor by"),
    ("limits.sentinel_floor_c", "float", "degC", -60.0, 0.0, "service", -50.0, "aux floor"),
    ("limits.max_freeze_s", "float", "s", 10.0, 60.0, "service", 60.0, "hard max freeze time"),
    ("limits.max_cycles", "int", "", 1, 3, "service", 3, "hard max cycles"),
    (
        "limits.cold_dose_cs",
        "float",
        "degC*s",
        100.0,
        6000.0,
        "service",
        6000.0,
        "hard max cold dose: integral of -T over time below 0 degC per session",
    ),
    # Interlock (cryo.protocol.params; docs/safety.md has each condition)
    ("limits.approach_max_s", "float", "s", 30.0, 900.0, "service", 600.0, "whole FREEZE max"),
    ("limits.tune_max_s", "float", "s", 60.0, 3600.0, "service", 1800.0, "autotune/step max"),
    ("limits.dose_threshold_c", "float", "degC", -30.0, 0.0, "service", -10.0, "dose below"),
    ("limits.disagree_c", "float", "degC", 2.0, 10.0, "service", 10.0, "tissue sensors differ"),
    ("limits.nocool_hyst_c", "float", "degC", 1.0, 20.0, "service", 5.0, "no-cool band"),
    ("limits.nocool_max_cs", "float", "degC*s", 5.0, 600.0, "service", 60.0, "no-cool integral"),
    ("limits.watch_drop_c", "float", "degC", 0.5, 10.0, "service", 2.0, "watch: must fall"),
    ("limits.watch_s", "float", "s", 2.0, 120.0, "service", 60.0, "watch: within"),
    ("limits.stuck_rate_c_s", "float", "degC/s", 0.25, 2.0, "service", 0.5, "stuck-open fall"),
    ("limits.stuck_window_s", "float", "s", 0.5, 3.0, "service", 2.0, "stuck-open window"),
    ("limits.stuck_grace_s", "float", "s", 0.2, 3.0, "service", 1.0, "stuck-open grace"),
    ("limits.stuck_line_c", "float", "degC", 0.5, 5.0, "service", 2.0, "stuck-open line change"),
    ("limits.floor_lead_s", "float", "s", 0.2, 2.0, "service", 0.6, "floor: line + probe lag"),
    ("limits.flow_max_s", "float", "s", 2.0, 900.0, "service", 480.0, "valve open to target"),
    ("limits.depl_window_s", "float", "s", 2.0, 120.0, "service", 60.0, "depletion window"),
    ("limits.depl_drop_c", "float", "degC", 0.1, 10.0, "service", 0.5, "depletion: min drop"),
    ("limits.depl_aux_c", "float", "degC", -180.0, 0.0, "service", -60.0, "depletion: line"),
    ("limits.duty_full", "float", "", 0.5, 1.0, "service", 0.95, "full duty from"),
    ("limits.p_min_kpa", "float", "kPa", 0.0, 500.0, "service", 60.0, "supply pressure low"),
    ("limits.p_max_kpa", "float", "kPa", 50.0, 1000.0, "service", 250.0, "supply pressure high"),
    ("limits.p_low_kpa", "float", "kPa", 0.0, 500.0, "service", 100.0, "depleted below"),
    ("limits.stale_ms", "int", "ms", 150, 3000, "service", 500, "no good sample: stale"),
    ("limits.debounce", "int", "samples", 1, 10, "service", 3, "bad samples to trip"),
    ("limits.heartbeat_ms", "int", "ms", 100, 2000, "service", 500, "missed heartbeat"),
    ("limits.overruns", "int", "ticks", 1, 20, "service", 3, "overruns that trip"),
    (
        "limits.wdt_ms",
        "int",
        "ms",
        500,
        2000,
        "service",
        2000,
        "hardware watchdog timeout (clinical maximum 2 s)",
    ),
    ("limits.require_wdt", "bool", "", None, None, "service", True, "treat only with a WDT"),
    ("limits.require_redundant", "bool", "", None, None, "service", False, "require tissue2"),
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

# Fields whose range is a factory clinical bound compiled into the firmware
# (IEC 60601-1 single-fault safety: the envelope the interlock enforces
# cannot be moved by a configuration mistake or a role): the floor, the
# freeze and dose ceilings, the sensor-disagreement limit and the stuck-open
# detection limits.
CLINICAL_BOUNDS = (
    "limits.floor_c",
    "limits.max_freeze_s",
    "limits.cold_dose_cs",
    "limits.disagree_c",
    "limits.stuck_rate_c_s",
    "limits.stuck_window_s",
    "limits.stuck_grace_s",
    "limits.stuck_line_c",
    "limits.wdt_ms",
    "limits.max_cycles",
    "limits.approach_max_s",
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
        v = f[6]
        cfg[f[0]] = list(v) if isinstance(v, list) else v  # no shared mutable default
    return cfg


def _num(v):
    # "%g" is the same on CPython and MicroPython for these magnitudes.
    if isinstance(v, float):
        return "%g" % v
    return str(v)


_CAL_KEYS = ("m1", "r1", "m2", "r2")
CAL_MIN_GAIN = 0.8  # cryo.supervision.channel.Calibration uses these
CAL_MAX_GAIN = 1.2
CAL_MIN_SPAN_C = 10.0
BANDS_MAX = 8  # the gain schedule capacity the controller builds (cryo.core.settings)
_BAND_RANGES = (
    ("setpoint_c", -200.0, 50.0),
    ("kp", 0.0, 10.0),
    ("ki", 0.0, 5.0),
    ("kd", 0.0, 50.0),
)


def _allowed(f):
    ftype, unit = f[1], f[2]
    if isinstance(ftype, tuple):
        return "one of " + ", ".join(ftype)
    if ftype == "cal":
        return 'null or {"m1", "r1", "m2", "r2"} in degC, m2 at least %s degC from m1, ' % _num(
            CAL_MIN_SPAN_C
        ) + "gain (r2-r1)/(m2-m1) %s .. %s" % (_num(CAL_MIN_GAIN), _num(CAL_MAX_GAIN))
    if ftype == "bands":
        return (
            "a list of at most %d [setpoint_c -200..50, kp 0..10, ki 0..5, kd 0..50] rows"
            % BANDS_MAX
        )
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


def _isnum(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _check_cal(name, value, f):
    if value is None:
        return None
    if not isinstance(value, dict) or sorted(value) != sorted(_CAL_KEYS):
        return "%s has the wrong form: allowed %s" % (name, _allowed(f))
    for k in _CAL_KEYS:
        v = value[k]
        if not _isnum(v) or not (-273.15 <= v <= 1372.0):
            return "%s.%s = %s is not a temperature: allowed -273.15 .. 1372 degC" % (
                name,
                k,
                _shown(v),
            )
    dm = value["m2"] - value["m1"]
    if abs(dm) < CAL_MIN_SPAN_C:
        return "%s: points m1 = %s and m2 = %s degC too close: allowed at least %s degC apart" % (
            name,
            _num(value["m1"]),
            _num(value["m2"]),
            _num(CAL_MIN_SPAN_C),
        )
    gain = (value["r2"] - value["r1"]) / dm
    if not (CAL_MIN_GAIN <= gain <= CAL_MAX_GAIN):
        return "%s: gain %s implausible: allowed %s .. %s (check the points)" % (
            name,
            _num(gain),
            _num(CAL_MIN_GAIN),
            _num(CAL_MAX_GAIN),
        )
    return None


def _check_bands(name, value, f):
    if not isinstance(value, list) or len(value) > BANDS_MAX:
        return "%s has the wrong form: allowed %s" % (name, _allowed(f))
    i = 0
    while i < len(value):
        row = value[i]
        if not isinstance(row, list) or len(row) != 4:
            return "%s[%d] has the wrong form: allowed [setpoint_c, kp, ki, kd]" % (name, i)
        j = 0
        while j < 4:
            what, lo, hi = _BAND_RANGES[j]
            v = row[j]
            if not _isnum(v) or v < lo or v > hi:
                return "%s[%d] %s = %s is out of range: allowed %s .. %s" % (
                    name,
                    i,
                    what,
                    _shown(v),
                    _num(lo),
                    _num(hi),
                )
            j += 1
        i += 1
    return None


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
    if ftype == "cal":
        return _check_cal(name, value, f)
    if ftype == "bands":
        return _check_bands(name, value, f)
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
        if name in CLINICAL_BOUNDS:
            return "%s = %s%s is outside the factory clinical bound %s (no role can widen it)" % (
                name,
                _shown(value),
                unit,
                _allowed(f),
            )
        return "%s = %s%s is out of range: allowed %s" % (name, _shown(value), unit, _allowed(f))
    return None


def cross_check(get):
    """Messages for every broken cross-field rule (empty list = none).

    The one definition of the rules between fields: the host's file check
    (``validate``), the controller's parameters (``cryo.protocol.params``)
    and its regulator/valve values (``cryo.core.settings``) all call it, so
    a value the host accepts is one the device accepts. ``get(name)`` gives
    the value of a schema field or None where the caller has no such field;
    a rule needing a field that is absent is not checked here.
    """

    def g(k):
        v = get(k)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    out = []
    _cross(g, out)
    return out


def _cross(g, out):
    # The protocol must stay within the hard limits in force.
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
    _cross_v3(g, out)
    sf, fl = g("limits.sentinel_floor_c"), g("limits.floor_c")
    if sf is not None and fl is not None and sf < fl:
        out.append(
            "limits.sentinel_floor_c = %s degC must not be below limits.floor_c = %s degC"
            % (_num(sf), _num(fl))
        )


def _cross_v3(g, out):
    # Rules the device's timing needs (supervision periods, the valve driver).
    def need(ok, a, b, rel):
        if not ok:
            out.append(
                "%s = %s %s %s = %s" % (a, _num(g(a)), rel, b, _num(g(b))) + ": change one of them"
            )

    def have(*names):
        for n in names:
            if g(n) is None:
                return False
        return True

    if have("limits.approach_max_s", "limits.max_freeze_s"):
        a, m = g("limits.approach_max_s"), g("limits.max_freeze_s")
        need(a > m, "limits.approach_max_s", "limits.max_freeze_s", "must exceed")
    if have("limits.p_min_kpa", "limits.p_max_kpa", "limits.p_low_kpa"):
        lo, hi, low = g("limits.p_min_kpa"), g("limits.p_max_kpa"), g("limits.p_low_kpa")
        need(lo < hi, "limits.p_min_kpa", "limits.p_max_kpa", "must be below")
        need(lo <= low, "limits.p_low_kpa", "limits.p_min_kpa", "must not be below")
        need(low < hi, "limits.p_low_kpa", "limits.p_max_kpa", "must be below")
    if have("limits.heartbeat_ms", "pid.period_ms"):
        hb, per = g("limits.heartbeat_ms"), g("pid.period_ms")
        need(hb >= 2 * per, "limits.heartbeat_ms", "pid.period_ms", "must be at least 2 *")
    if have("limits.stale_ms", "pid.period_ms"):
        need(
            g("limits.stale_ms") >= g("pid.period_ms"),
            "limits.stale_ms",
            "pid.period_ms",
            "must not be below",
        )
    if have("valve.min_on_ms", "valve.min_off_ms", "valve.window_ms"):
        if g("valve.min_on_ms") + g("valve.min_off_ms") > g("valve.window_ms"):
            out.append(
                "valve.min_on_ms + valve.min_off_ms = %s ms must fit in valve.window_ms = %s ms"
                % (_num(g("valve.min_on_ms") + g("valve.min_off_ms")), _num(g("valve.window_ms")))
            )
    if have("valve.max_open_ms", "pid.period_ms"):
        mo, per = g("valve.max_open_ms"), g("pid.period_ms")
        need(mo >= 2 * per, "valve.max_open_ms", "pid.period_ms", "must be at least 2 *")


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
        out.extend(cross_check(cfg.get))
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
            v = f[6]
            new[f[0]] = list(v) if isinstance(v, list) else v
            notes.append("%s added with default %s (not in v1)" % (f[0], _shown(v)))
    return new, notes


def migrate_v2(old):
    """v2 dict -> (v3 dict, notes).

    v2's linear calibration per channel (``reading = gain * raw + offset``,
    never used by the firmware) becomes the two-point form of v3 (the same
    line through -200 and 0 degC; an identity becomes ``null``). Fields v3
    added get their documented default; every change is reported.
    """
    new = {}
    notes = []
    for k in old:
        new[k] = old[k]
    new["schema_version"] = 3
    for ch in ("tissue", "aux"):
        ko, kg = "sensor.%s.offset_c" % ch, "sensor.%s.gain" % ch
        if ko in new or kg in new:
            off = new.pop(ko, 0.0)
            gain = new.pop(kg, 1.0)
            kc = "sensor.%s.cal" % ch
            if _isnum(off) and _isnum(gain) and (off != 0.0 or gain != 1.0):
                new[kc] = {"m1": -200.0, "r1": gain * -200.0 + off, "m2": 0.0, "r2": off}
                notes.append(
                    "v2 %s/%s (gain %s, offset %s) -> %s two-point form"
                    % (kg, ko, _shown(gain), _shown(off), kc)
                )
            else:
                notes.append("v2 %s/%s (identity) -> %s = null" % (kg, ko, kc))
    for k in sorted(new):
        if k != "schema_version" and k not in _BY_NAME:
            del new[k]
            notes.append("v2 field %s dropped (not in v3)" % k)
    for f in FIELDS:
        if f[0] not in new:
            v = f[6]
            new[f[0]] = list(v) if isinstance(v, list) else v
            notes.append("%s added with default %s (not in v2)" % (f[0], _shown(v)))
    return new, notes


MIGRATIONS = {1: migrate_v1, 2: migrate_v2}


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
