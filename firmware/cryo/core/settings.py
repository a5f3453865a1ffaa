"""Regulator/valve settings, calibrations and gain bands; parameter access.

``EXTRAS`` are the values that are not interlock limits (those live in
cryo.protocol.params); ``SettingsMixin`` loads them from the configuration
at construction and serves the link's ``get``/``set``/``save`` — every
change range-checked against its hard limits, role-checked and audited.
Control path only.
"""

from cryo import paths
from cryo.core.roles import denied, not_now, role_level
from cryo.pid import PID, LoopTimer
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
APPROACH = ("pid.i_zone_c", "pid.hold_duty", "pid.beta", "pid.sp_ramp_c_s")  # PID.set_approach
CAL_FIELDS = ("sensor.tissue.cal", "sensor.tissue2.cal", "sensor.aux.cal")
BANDS_MAX = _schema.BANDS_MAX
_CONFIG_JSON = paths.on_flash(paths.CONFIG_PATH)


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


class SettingsMixin:
    """Controller methods: configuration loading and parameter access."""

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
        self.config_errors.extend(bad)
        return x

    def _load_calibrations(self, cfg):
        """Two-point calibration per channel
        (``cryo.supervision.channel.Calibration.from_config``); a bad one is
        a configuration error."""
        raw = [None, None, None]
        cals = [None, None, None]
        if not isinstance(cfg, dict):
            return raw, cals
        i = 0
        while i < 3:
            c = cfg.get(CAL_FIELDS[i])
            if c is not None:
                try:
                    if not isinstance(c, dict):
                        raise ValueError('must be {"m1", "r1", "m2", "r2"} (degC) or null')
                    cals[i] = Calibration.from_config(c)
                    raw[i] = c
                except (KeyError, TypeError, ValueError) as e:
                    self.config_errors.append("%s: %s" % (CAL_FIELDS[i], e))
            i += 1
        return raw, cals

    def _load_bands(self, cfg):
        """``pid.bands`` rows ``[setpoint_c, kp, ki, kd]`` for the gain schedule."""
        rows = cfg.get("pid.bands") if isinstance(cfg, dict) else None
        if rows is None or rows == []:
            return []
        if not isinstance(rows, list) or len(rows) > BANDS_MAX:
            self.config_errors.append("pid.bands must be a list of at most %d rows" % BANDS_MAX)
            return []
        # Each band's gains within the same limits as pid.kp/ki/kd.
        for row in rows:
            if isinstance(row, list) and len(row) == 4:
                for name, v in zip(("pid.kp", "pid.ki", "pid.kd"), row[1:]):
                    m = check_extra(name, v)
                    if m:
                        self.config_errors.append("pid.bands %r: %s" % (row[0], m))
                        return []
        return rows

    def _make_pid(self):
        x = self._extra
        kp, ki, kd = float(x["pid.kp"]), float(x["pid.ki"]), float(x["pid.kd"])
        self.pid = PID(kp, ki, kd, float(x["pid.d_filter_s"]))
        self.pid.set_approach(*[float(x[n]) for n in APPROACH])
        # dt from the real elapsed time, bounded to [period/2, 2*period].
        self.pid_timer = LoopTimer(self.clock, self.period_ms)
        self.schedule = None
        if self._bands:
            # Only a configured schedule costs the module's heap.
            from cryo.control.schedule import GainSchedule

            try:
                sch = GainSchedule((kp, ki, kd), band_c=float(x["pid.band_c"]), capacity=BANDS_MAX)
                sch.from_list(self._bands)
                self.schedule = sch
            except ValueError as e:
                self.config_errors.append("pid.bands: %s" % e)
                self.il.set_config_ok(False)

    def _reset_pid(self):
        """Fresh regulator: empty integral, dt timer restarted (no stale gap)."""
        if self.pid is not None:
            self.pid.reset()
            self.pid_timer.restart()

    def get_param(self, name):
        """Value in force; stored-schema names (``limits.floor_c``) accepted."""
        if name in self._extra:
            return self._extra[name]
        name = P.ALIASES.get(name, name)
        P.spec(name)
        return self.params[name]

    def set_param(self, name, value, role):
        """Change a parameter within its hard limits; audited (role, old, new).

        ``name``: a parameter (``floor_c``), its stored-schema name
        (``limits.floor_c``) or a regulator/valve value (``pid.kp``).
        During a treatment (PRECOOL/FREEZE/THAW, TUNE, SELF_TEST) only the
        PID gains ``pid.kp/ki/kd`` may change (role engineer, applied
        bumpless with ``PID.set_gains``); anything else raises NotNow."""
        if name not in self._extra:
            name = P.ALIASES.get(name, name)
        lvl = role_level(role)
        st = self.protocol.state
        live = name in LIVE_GAINS
        if (1 << st) & (S.TREATING | (1 << S.SELF_TEST)) and not live:
            raise not_now(
                "parameters cannot change during %s (only %s, role engineer, may change live)"
                % (S.name(st), ", ".join(LIVE_GAINS))
            )
        if name in self._extra:
            need = extra_spec(name)[4]
            if lvl < role_level(need):
                raise denied("%s needs role %s or higher (got %s)" % (name, need, role))
            m = check_extra(name, value)
            if m:
                raise ValueError(m)
            trial = dict(self._extra)
            trial[name] = value
            msgs = check_extras(trial, self.period_ms)
            if msgs:
                raise ValueError("; ".join(msgs))
            old = self._extra[name]
            self._extra[name] = value
            if name.startswith("pid."):
                self._apply_pid_settings(name)
            else:
                self._apply_valve_settings()
            self._rehash_config()
            self._audit("set", role, name=name, old=old, new=value, phase=S.name(st))
            now = self.clock.ticks_ms()
            self._event(now, "set", "%s %s: %r -> %r" % (role, name, old, value))
            return value
        spec = P.spec(name)
        if lvl < role_level(spec[5]):
            raise denied("%s needs role %s or higher (got %s)" % (name, spec[5], role))
        trial = dict(self.params)
        trial[name] = value
        msgs = P.validate(trial)
        if msgs:
            raise ValueError("; ".join(msgs))
        old = self.params[name]
        self.params[name] = value
        self.setpoint_c = self.params["target_c"]
        self._install_limits(self.cj_c if self.cj_c is not None else 24.0)
        self._rehash_config()
        self._audit("set", role, name=name, old=old, new=value)
        return value

    def _apply_pid_settings(self, name):
        """pid.* changed: the running regulator takes it **bumpless**.

        Gains go through ``PID.set_gains`` (cryo.pid: the change of the P
        and D contributions moves into the integral, so the demand does not
        jump); the integral, filter state and dt timer are kept — a rebuilt
        PID would restart from an empty integral, a step in the demand in
        the middle of a freeze. With a gain schedule the new gains become
        the default and, if a band is in force, that band's gains (else the
        schedule would put the old ones back at the next tick)."""
        x = self._extra
        pid = self.pid
        if pid is None:
            return
        if name == "pid.d_filter_s":
            pid.d_filter_s = float(x["pid.d_filter_s"])
            return
        if name in APPROACH:
            pid.set_approach(*[float(x[n]) for n in APPROACH])
            return
        kp, ki, kd = float(x["pid.kp"]), float(x["pid.ki"]), float(x["pid.kd"])
        sch = self.schedule
        if name == "pid.band_c":
            if sch is not None:
                sch.band_c = float(x["pid.band_c"])
            return
        if sch is not None:
            sch.default = (kp, ki, kd)
            band = sch.active
            if band is not None:
                # Only the named gain changes in the band in force.
                g = [pid.kp, pid.ki, pid.kd]
                g[("pid.kp", "pid.ki", "pid.kd").index(name)] = float(x[name])
                kp, ki, kd = g
                sch.store(band, kp, ki, kd)
        pid.set_gains(kp, ki, kd)

    def _apply_valve_settings(self):
        """valve.* changed (outside a treatment): the driver takes the new timing."""
        x = self._extra
        v = self.valve
        v.force_closed()
        v.window_ms = int(x["valve.window_ms"])
        v.min_on_ms = int(x["valve.min_on_ms"])
        v.min_off_ms = int(x["valve.min_off_ms"])
        v.max_open_ms = int(x["valve.max_open_ms"])
        self.service_ms = int(x["valve.service_ms"])

    def save_config(self, role, path=_CONFIG_JSON):
        """Store the parameters in force (cryo.storage.config, atomic + CRC).

        Fields the stored schema knows are written under its names (the
        ALIASES of cryo.protocol.params); the rest keep their defaults.
        """
        lvl = role_level(role)
        if lvl < 2:
            raise denied("saving the configuration needs role engineer or higher (got %s)" % role)
        cfg = _schema.defaults()
        for alias in P.ALIASES:
            if alias in cfg:
                cfg[alias] = self.params[P.ALIASES[alias]]
        for k in self._extra:
            if k in cfg:
                cfg[k] = self._extra[k]
        i = 0
        while i < 3:
            if CAL_FIELDS[i] in cfg:
                cfg[CAL_FIELDS[i]] = self._cal_cfg[i]
            i += 1
        if "pid.bands" in cfg:
            cfg["pid.bands"] = self.schedule.to_list() if self.schedule is not None else []
        CFG.save(cfg, path)
        self._audit("save_config", role, path=path)
        return {"path": path, "fields": len(cfg)}
