"""The parameters in force: what the configuration says, checked once.

``Settings(config, tick_ms, watchdog_ms)`` validates a configuration at
construction and owns the result: the protocol and interlock parameters
(``params``, names of cryo.protocol.params), the regulator and valve values
that are not interlock limits (``EXTRAS``), the per-channel calibrations,
the gain-schedule rows, the control period, the watchdog timeout and every
configuration error found (``errors``; an invalid value keeps its default
and the controller latches CONFIG). A change from the link goes through
``check`` (range, cross rules, role, phase) and then ``commit``; the
controller applies it to the part that uses it and audits it. ``stored``
gives the file ``save`` writes. Control path only.
"""

from cryo.control.regulator import APPROACH
from cryo.core.roles import denied, not_now, role_level
from cryo.protocol import params as P
from cryo.protocol import states as S
from cryo.storage import config as CFG
from cryo.storage import schema as _schema
from cryo.supervision.channel import Calibration

# Regulator and valve settings (not interlock limits): (name, default, low,
# high, role), read from the configuration schema (cryo.storage.schema) so
# the device checks exactly the ranges the host validates with.
# Gains: SIMC gains the relay autotune (cryo.control.autotune) measured on the default
# plant (docs/control.md: hold RMS 0.43 degC); the TUNE phase measures
# better ones per device. Valve: a 200 ms time-proportioning window (the
# skin surface answers a pulse within a fraction of a second, so the window
# *is* the ripple), serviced every ``valve.service_ms`` between ticks.
_EXTRA_NAMES = (
    "pid.kp",
    "pid.ki",
    "pid.kd",
    "pid.d_filter_s",
    "pid.band_c",
    "pid.i_zone_c",
    "pid.hold_duty",
    "pid.beta",
    "pid.sp_ramp_c_s",
    "tune.dose_cs",
    "valve.window_ms",
    "valve.min_on_ms",
    "valve.min_off_ms",
    "valve.service_ms",
    "valve.max_open_ms",
)


def _extras():
    out = []
    for name in _EXTRA_NAMES:
        f = _schema.field(name)
        out.append((name, f[6], f[3], f[4], f[5]))  # (name, default, low, high, role)
    return tuple(out)


EXTRAS = _extras()
# Regulator gains an engineer may change while a treatment (or TUNE) runs:
# range-checked, applied bumpless (PID.set_gains) and audited with role, old
# and new value. Everything else (protocol parameters, limits, valve timing)
# is refused during PRECOOL/FREEZE/THAW/TUNE (docs/safety.md).
LIVE_GAINS = ("pid.kp", "pid.ki", "pid.kd")
# In cryo.board.CHANNELS order.
CAL_FIELDS = ("sensor.tissue.cal", "sensor.tissue2.cal", "sensor.aux.cal", "sensor.tissue3.cal")
BANDS_MAX = _schema.BANDS_MAX
# A hung firmware must leave the valve closed within this time (the watchdog
# resets the MCU, the reset releases the valve pins, gate pull-downs close
# it): the schema's upper bound of limits.wdt_ms is that clinical maximum.
WDT_CLINICAL_MAX_MS = _schema.field("limits.wdt_ms")[4]


def extra_spec(name):
    for e in EXTRAS:
        if e[0] == name:
            return e
    return None


def check_extra(name, value):
    """Message naming what is wrong with a regulator/valve value (None: fine)."""
    e = extra_spec(name)
    if e is None:
        return "unknown parameter %r" % (name,)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "%s must be a number, got %r" % (name, value)
    if isinstance(e[1], int) and not isinstance(value, int):
        return "%s must be a whole number of ms, got %r" % (name, value)
    if value != value or not (e[2] <= value <= e[3]):
        return "%s = %r is outside %r..%r" % (name, value, e[2], e[3])
    return None


def check_extras(x, period_ms):
    """Cross rules of the regulator/valve values (list of messages): the
    schema's rules (``cryo.storage.schema.cross_check``) on these values and
    the control period in force."""
    return _schema.cross_check(lambda k: period_ms if k == "pid.period_ms" else x.get(k))


def watchdog_timeout_ms(config_ms, board_ms):
    """The watchdog timeout to start: the board's, which the config may only shorten.

    ``board_ms`` is the board definition's ``watchdog.timeout_ms`` (0/None:
    not defined), ``config_ms`` the config's ``wdt_ms`` if it sets one, else
    None. The ceiling is the board's value, and never more than the clinical
    maximum (``WDT_CLINICAL_MAX_MS``). The schema already rejects a config value
    above the clinical maximum; one above a shorter board ceiling is held to it.
    """
    top = WDT_CLINICAL_MAX_MS
    if board_ms and board_ms < top:
        top = int(board_ms)
    if config_ms is None or config_ms > top:
        return top
    return int(config_ms)


class Settings:
    def __init__(self, config, tick_ms=None, watchdog_ms=None):
        cfg = config if config is not None else {}
        # The board's tick_ms is the default control period; a config that
        # sets period_ms (or pid.period_ms) overrides it.
        own = P.normalize(cfg)
        eff = cfg
        if tick_ms and isinstance(cfg, dict) and "period_ms" not in own:
            eff = dict(cfg)
            eff["period_ms"] = tick_ms
        self.errors = P.validate(eff)
        self.params = P.merged(eff) if not self.errors else P.defaults()
        self.period_ms = int(self.params["period_ms"])
        # The board's watchdog.timeout_ms, shortened (never lengthened) by the config.
        self.wdt_ms = watchdog_timeout_ms(
            own.get("wdt_ms") if not self.errors else None,
            watchdog_ms,
        )
        self.extra = self._load_extras(cfg)
        self._cal_cfg, self.calibrations = self._load_calibrations(cfg)
        self.bands = self._load_bands(cfg)
        self._hash = self._hash_config()

    # -- loading (construction) --------------------------------------------

    def _load_extras(self, cfg):
        """Regulator/valve values from ``cfg`` (defaults where absent);
        an invalid value is a configuration error and the default is used."""
        x = {}
        bad = []
        for e in EXTRAS:
            name = e[0]
            v = cfg.get(name, e[1]) if isinstance(cfg, dict) else e[1]
            m = check_extra(name, v)
            if m:
                bad.append(m)
                v = e[1]
            x[name] = v
        m = check_extras(x, self.period_ms)
        if m:
            bad.extend(m)
            for e in EXTRAS:
                if e[0].startswith("valve."):
                    x[e[0]] = e[1]
        self.errors.extend(bad)
        return x

    def _load_calibrations(self, cfg):
        """Two-point calibration per channel
        (``cryo.supervision.channel.Calibration.from_config``); a bad one is
        a configuration error."""
        raw = [None] * len(CAL_FIELDS)
        cals = [None] * len(CAL_FIELDS)
        if not isinstance(cfg, dict):
            return raw, cals
        i = 0
        while i < len(CAL_FIELDS):
            c = cfg.get(CAL_FIELDS[i])
            if c is not None:
                try:
                    if not isinstance(c, dict):
                        raise ValueError('must be {"m1", "r1", "m2", "r2"} (degC) or null')
                    cals[i] = Calibration.from_config(c)
                    raw[i] = c
                except (KeyError, TypeError, ValueError) as e:
                    self.errors.append("%s: %s" % (CAL_FIELDS[i], e))
            i += 1
        return raw, cals

    def _load_bands(self, cfg):
        """``pid.bands`` rows ``[setpoint_c, kp, ki, kd]`` for the gain schedule."""
        rows = cfg.get("pid.bands") if isinstance(cfg, dict) else None
        if rows is None or rows == []:
            return []
        if not isinstance(rows, list) or len(rows) > BANDS_MAX:
            self.errors.append("pid.bands must be a list of at most %d rows" % BANDS_MAX)
            return []
        # Each band's gains within the same limits as pid.kp/ki/kd.
        for row in rows:
            if isinstance(row, list) and len(row) == 4:
                for name, v in zip(("pid.kp", "pid.ki", "pid.kd"), row[1:]):
                    m = check_extra(name, v)
                    if m:
                        self.errors.append("pid.bands %r: %s" % (row[0], m))
                        return []
        return rows

    # -- access ------------------------------------------------------------

    def gains(self):
        x = self.extra
        return float(x["pid.kp"]), float(x["pid.ki"]), float(x["pid.kd"])

    def approach(self):
        """The approach settings (``APPROACH`` order) for ``PID.set_approach``."""
        x = self.extra
        return tuple(float(x[n]) for n in APPROACH)

    def get(self, name):
        """Value in force; stored-schema names (``limits.floor_c``) accepted."""
        if name in self.extra:
            return self.extra[name]
        name = P.ALIASES.get(name, name)
        P.spec(name)
        return self.params[name]

    def check(self, name, value, role, state):
        """A change the link asks for, checked: the canonical name, or
        ``Denied``/``NotNow``/``ValueError`` naming what is wrong.

        ``name``: a parameter (``floor_c``), its stored-schema name
        (``limits.floor_c``) or a regulator/valve value (``pid.kp``).
        During a treatment (PRECOOL/FREEZE/THAW, TUNE, SELF_TEST) only the
        PID gains ``pid.kp/ki/kd`` may change (role engineer); anything else
        is NotNow."""
        if name not in self.extra:
            name = P.ALIASES.get(name, name)
        lvl = role_level(role)
        live = name in LIVE_GAINS
        if (1 << state) & (S.TREATING | (1 << S.SELF_TEST)) and not live:
            raise not_now(
                "parameters cannot change during %s (only %s, role engineer, may change live)"
                % (S.name(state), ", ".join(LIVE_GAINS))
            )
        if name in self.extra:
            need = extra_spec(name)[4]
            if lvl < role_level(need):
                raise denied("%s needs role %s or higher (got %s)" % (name, need, role))
            m = check_extra(name, value)
            if m:
                raise ValueError(m)
            trial = dict(self.extra)
            trial[name] = value
            msgs = check_extras(trial, self.period_ms)
        else:
            spec = P.spec(name)
            if lvl < role_level(spec[5]):
                raise denied("%s needs role %s or higher (got %s)" % (name, spec[5], role))
            trial = dict(self.params)
            trial[name] = value
            msgs = P.validate(trial)
        if msgs:
            raise ValueError("; ".join(msgs))
        return name

    def commit(self, name, value):
        """Put a checked change in force; returns the old value."""
        table = self.extra if name in self.extra else self.params
        old = table[name]
        table[name] = value
        self._hash = self._hash_config()
        return old

    # -- identity and storage ----------------------------------------------

    def config_hash(self):
        """SHA-256 of the configuration in force, for the session header:
        kept from the last change (construction, ``commit``: both between
        ticks), because formatting and hashing every value allocates ~17 kB."""
        return self._hash

    def _hash_config(self):
        try:
            cfg = dict(self.params)
            for k in self.extra:
                cfg[k] = self.extra[k]
            return CFG.config_hash(cfg)
        except (TypeError, ValueError):  # a value JSON cannot encode: zeros
            return b"\x00" * 32

    def stored(self, bands):
        """The configuration file for the values in force (cryo.storage.config
        names: the ALIASES of cryo.protocol.params); ``bands`` the gain
        schedule's rows as they are now."""
        cfg = _schema.defaults()
        for alias in P.ALIASES:
            if alias in cfg:
                cfg[alias] = self.params[P.ALIASES[alias]]
        for k in self.extra:
            if k in cfg:
                cfg[k] = self.extra[k]
        i = 0
        while i < len(CAL_FIELDS):
            if CAL_FIELDS[i] in cfg:
                cfg[CAL_FIELDS[i]] = self._cal_cfg[i]
            i += 1
        if "pid.bands" in cfg:
            cfg["pid.bands"] = bands
        return cfg
