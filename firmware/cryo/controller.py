"""The control tick: read → supervise → interlock → PID → valve → log → telemetry.

``Controller(board, config, log=None, audit=None)``; ``tick(now_ms)`` runs
one fixed-period control tick, ``run()`` schedules it on hardware with
``ticks_add`` deadlines (asyncio). The virtual board's runner (fast virtual
time, ``ManualClock``) calls ``tick(now_ms)`` directly.

Order inside a tick, and why:

1. **read** — every thermocouple driver is polled without blocking
   (MAX31855: one 32-bit frame; MAX31856: collect a finished one-shot and
   start the next). Supply pressure: one ADC read.
2. **supervise** — engineer A's ``cryo.supervision.Channel`` classifies each
   new sample on raw codes (chip/bus flags, range, rate, stuck frame,
   cold-junction range); raw codes and the resulting flags go straight into
   the interlock (``Interlock.record``), which debounces and checks
   staleness.
3. **interlock** — ``Interlock.evaluate(now)``: integer-only,
   allocation-free; on a trip it de-energises the valve and the master
   valve before it returns.
4. **react** — for newly tripped conditions: the alarm, then the log
   (fault, alarm, master-valve events), then the protocol moves to FAULT
   (latched) or ABORTED — valve first, alarm second, log third (issue 6).
   Then the °C conversion (NIST) of fresh samples for the control path.
5. **sequence + PID** — the protocol advances (its phase changes go through
   the interlock, which grants or withdraws the permit in the same call);
   PRECOOL asks for full cooling open-loop, FREEZE runs the PID, every other
   phase asks for nothing.
6. **valve** — ``request`` (float→int once), ``refresh`` the dead-man only
   while a permitted demand exists, ``service`` (integer, permit-gated).
7. **log sample / telemetry snapshot / watchdog** — the WDT is fed only when
   every health check passed in this tick.

Anything that can fail on the control path (log, alarms, PID) is contained
so the valve logic above it has already run; an exception escaping ``tick``
leaves the valves closed (``run`` and main.py wrap everything in
``try/finally: board.safe_outputs()``).
"""

import gc

from micropython import const

from cryo.actuation.valve import MasterValve, SolenoidValve
from cryo.alarms.alarms import Alarms
from cryo.interlock import conditions as C
from cryo.interlock import interlock as I
from cryo.interlock import limits as LIM
from cryo.protocol import params as P
from cryo.protocol import states as S
from cryo.protocol.protocol import Protocol

try:
    from cryo.storage import records as R
except ImportError:  # storage not installed: the log is optional (STORAGE trips)
    R = None

_CHANNELS = ("tissue", "tissue2", "aux")
_ST_SUSPECT = const(2)  # cryo.supervision.channel: statuses above this are faults
_F_IMPLAUSIBLE = const(0x8000)  # fault flag the interlock counts for implausible samples
_ROLES = ("operator", "engineer", "service")
_STORAGE_CHECK_MS = const(1000)
_GC_SLACK_MS = const(5)
_LINK_POLLS = const(4)  # link polls per period at most (each bounded, docs/link.md)
_LINK_SLACK_MS = const(20)  # poll again only with this much left before the tick

# Regulator and valve settings (not interlock limits): (name, default, low,
# high, role). The same names, ranges and roles are fields of the stored
# schema (cryo.storage.schema; tests/storage keeps them equal).
# Gains: SIMC gains engineer C's relay autotune measured on the default
# plant (docs/control.md: hold RMS 0.43 degC); the TUNE phase measures
# better ones per device. Valve: a 200 ms time-proportioning window (the
# skin surface answers a pulse within a fraction of a second, so the window
# *is* the ripple), serviced every ``valve.service_ms`` between ticks.
EXTRAS = (
    ("pid.kp", 0.174, 0.0, 10.0, "engineer"),
    ("pid.ki", 0.039, 0.0, 5.0, "engineer"),
    ("pid.kd", 0.0, 0.0, 50.0, "engineer"),
    ("pid.d_filter_s", 0.5, 0.0, 10.0, "engineer"),
    ("pid.band_c", 5.0, 0.5, 20.0, "engineer"),
    ("valve.window_ms", 200, 100, 5000, "engineer"),
    ("valve.min_on_ms", 30, 0, 500, "engineer"),
    ("valve.min_off_ms", 30, 0, 500, "engineer"),
    ("valve.service_ms", 10, 5, 100, "engineer"),
    ("valve.max_open_ms", 1500, 200, 3000, "service"),
)
# Regulator gains an engineer may change while a treatment (or TUNE) runs:
# range-checked, applied bumpless (PID.set_gains) and audited with role, old
# and new value. Everything else (protocol parameters, limits, valve timing)
# is refused during PRECOOL/FREEZE/THAW/TUNE (docs/safety.md).
_LIVE_GAINS = ("pid.kp", "pid.ki", "pid.kd")
_CAL_FIELDS = ("sensor.tissue.cal", "sensor.tissue2.cal", "sensor.aux.cal")
_BANDS_MAX = 8


def _extra_spec(name):
    for e in EXTRAS:
        if e[0] == name:
            return e
    return None


def check_extra(name, value):
    """Message naming what is wrong with a regulator/valve value (None: fine)."""
    e = _extra_spec(name)
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
    """Cross rules of the regulator/valve values (list of messages)."""
    msgs = []
    if x["valve.min_on_ms"] + x["valve.min_off_ms"] > x["valve.window_ms"]:
        msgs.append("valve.min_on_ms + valve.min_off_ms must fit in valve.window_ms")
    if x["valve.max_open_ms"] < 2 * period_ms:
        msgs.append("valve.max_open_ms must be at least 2 * period_ms (two ticks)")
    return msgs


def role_level(role):
    """1 operator, 2 engineer, 3 service; ValueError for an unknown role."""
    i = 0
    while i < len(_ROLES):
        if _ROLES[i] == role:
            return i + 1
        i += 1
    raise ValueError("unknown role %r; allowed: %s" % (role, ", ".join(_ROLES)))


def _denied(msg):
    try:
        from cryo.link.errors import Denied

        return Denied(msg)
    except ImportError:
        return PermissionError(msg)


def _not_now(msg):
    try:
        from cryo.link.errors import NotNow

        return NotNow(msg)
    except ImportError:
        return RuntimeError(msg)


def _board_def(board):
    d = getattr(board, "definition", None)
    if d is None:
        d = getattr(board, "config", None)
    return d if isinstance(d, dict) else {}


def make_sensor(board, name):
    """Driver for thermocouple channel ``name`` from the board definition."""
    spec = getattr(board, "tc", {}).get(name)
    if spec is None:
        spec = _board_def(board).get("thermocouples", {}).get(name, {})
    chip = spec.get("chip", "max31855")
    tc_type = spec.get("type", "K")
    cs = board.cs[name]
    if chip == "max31856":
        from cryo.sensing.max31856 import MAX31856

        try:
            return MAX31856(board.spi, cs, tc_type, clock=board.clock)
        except TypeError:
            return MAX31856(board.spi, cs, tc_type)
    from cryo.sensing.max31855 import MAX31855

    return MAX31855(board.spi, cs, tc_type)


def _pressure_code_fn(board):
    """kPa → raw ADC code for the board's pressure transducer (or None)."""
    if getattr(board, "pressure_adc", None) is None:
        return None
    spec = getattr(board, "pressure", None) or _board_def(board).get("pressure_adc", {})
    fs = float(spec.get("full_scale_kpa", 400.0))
    zero = float(spec.get("zero_fraction", 0.1))
    span = float(spec.get("span_fraction", 0.8))

    def code(kpa):
        f = kpa / fs
        if f > 1.0:
            f = 1.0
        return int(65535 * (zero + span * f))

    return code


def _active_level(board, role):
    """Pin level meaning pressed/held/loop-closed for input ``role``.

    cryo.board.Board returns raw pins and says which level is active
    (``active_level``); a board object without it is taken as active-high.
    """
    f = getattr(board, "active_level", None)
    if f is None:
        return 1
    try:
        return f(role)
    except (KeyError, ValueError):
        return 1


class _CalibratedCodes:
    """A driver seen through its channel's calibration, for the limit block:
    ``code_for(true_c)`` is the code of the reading that calibrates to
    ``true_c`` (engineer A's ``Calibration.invert``). Control path only."""

    def __init__(self, drv, cal):
        self._drv = drv
        self._cal = cal

    def code_for(self, temp_c, cj_c=None):
        return self._drv.code_for(self._cal.invert(temp_c), cj_c)


class Controller:
    """The device's core loop. See the module docstring for the tick order.

    ``board`` follows contract 2 (``spi``, ``cs``, ``valve_pin``,
    ``master_pin``, ``estop``, ``footswitch``, ``handpiece``, ``buzzer``,
    ``leds``, ``pressure_adc``, ``wdt``, ``clock``, ``safe_outputs()``).
    ``config``: dict of parameters (cryo.protocol.params names plus
    ``pid.*``/``valve.*``); invalid values latch CONFIG and are reported in
    ``config_errors``. ``log``: a cryo.storage.log.TreatmentLog (None: no
    storage, STORAGE blocks treatment). ``audit``: cryo.storage.audit
    AuditTrail for acknowledgements and parameter changes.
    ``sensors``/``valve``/``master`` may be injected (tests, other boards).
    ``config_fault``: the fault from ``cryo.storage.config.load`` (fallback
    to last-known-good latches CONFIG; unusable keeps it active).
    """

    def __init__(
        self,
        board,
        config=None,
        log=None,
        audit=None,
        clock=None,
        sensors=None,
        valve=None,
        master=None,
        link=None,
        config_fault=None,
        supervise=True,
    ):
        self.board = board
        self.clock = clock if clock is not None else board.clock
        self.log = log
        self.audit = audit
        self.link = link
        cfg = config if config is not None else {}
        self.config = cfg
        self.config_errors = P.validate(cfg)
        self.params = P.merged(cfg) if not self.config_errors else P.defaults()
        p = self.params
        self.period_ms = int(p["period_ms"])
        self._extra = self._load_extras(cfg)
        self._cal_cfg, self._cal = self._load_calibrations(cfg)
        self._bands = self._load_bands(cfg)
        self.service_ms = int(self._extra["valve.service_ms"])
        clock = self.clock
        now = clock.ticks_ms()

        # Actuators first: both valves closed before anything else can fail.
        self.valve = valve or SolenoidValve(
            board.valve_pin,
            clock,
            window_ms=int(self._extra["valve.window_ms"]),
            min_on_ms=int(self._extra["valve.min_on_ms"]),
            min_off_ms=int(self._extra["valve.min_off_ms"]),
            max_open_ms=int(self._extra["valve.max_open_ms"]),
        )
        self.master = master or MasterValve(board.master_pin)
        self.valve.force_closed()
        self.master.close()

        # Sensors (channel index = interlock channel).
        if sensors is None:
            sensors = {}
            for name in _CHANNELS:
                if name in getattr(board, "cs", {}):
                    sensors[name] = make_sensor(board, name)
        if "tissue" not in sensors:
            raise ValueError("the board has no 'tissue' thermocouple channel (required)")
        self.sensors = sensors
        self._drv = [sensors.get(n) for n in _CHANNELS]
        # Limits are true temperatures: with a calibration the interlock's
        # raw codes are those of the *measured* value that calibrates to it.
        self._lim_drv = [
            _CalibratedCodes(d, c) if (d is not None and c is not None) else d
            for d, c in zip(self._drv, self._cal)
        ]
        self._sup = [None, None, None]
        if supervise:
            self._make_supervision(p)
        self.temp_c = [None, None, None]
        self.cj_c = None

        # The interlock.
        il = I.Interlock(
            clock,
            self.valve,
            self.master,
            estop=getattr(board, "estop", None),
            footswitch=getattr(board, "footswitch", None),
            handpiece=getattr(board, "handpiece", None),
        )
        self.il = il
        fitted = 1
        if self._drv[1] is not None:
            fitted |= 1 << I.TISSUE2
        if self._drv[2] is not None:
            fitted |= 1 << I.AUX
        il.fitted = fitted
        il.required = fitted & ((1 << I.TISSUE) | (1 << I.TISSUE2))
        self._adc = getattr(board, "pressure_adc", None)
        il.has_pressure = 1 if self._adc is not None else 0
        self._p_code = _pressure_code_fn(board)
        self._foot_level = _active_level(board, "footswitch")
        self._hand_level = _active_level(board, "handpiece")
        self._estop_level = _active_level(board, "estop")
        self._cj_limits = None
        self.setpoint_c = p["target_c"]
        self._install_limits(24.0)
        il.config_ok = 1 if not self.config_errors else 0
        if config_fault is not None:
            # cryo.storage.config.load: 1 = running on the last known good
            # file (latched until a service acknowledgement), 2 = unusable.
            code = getattr(config_fault, "code", 2)
            self.config_errors.append(str(config_fault))
            if code == 1:
                il.latched |= 1 << C.CONFIG
                il.new |= 1 << C.CONFIG
            else:
                il.config_ok = 0
        if p["require_redundant"] and self._drv[1] is None:
            il.config_ok = 0
            self.config_errors.append("require_redundant is set but the board has no tissue2")

        # Watchdog: armed by the first self-test (it cannot be stopped once
        # started, and an idle board with closed valves must stay reachable
        # for service mode), then fed only when healthy.
        self.wdt = getattr(board, "wdt", None)
        il.wdt_ok = 1

        self.protocol = Protocol(p, clock, il, on_change=self._on_phase)
        self.alarms = Alarms(clock, getattr(board, "buzzer", None), getattr(board, "leds", None))
        self.pid = None
        self._make_pid()

        # Bookkeeping.
        self.demand = 0.0
        self.ticks = 0
        self.overruns = 0
        self.tick_us = 0
        self.max_tick_us = 0
        self.wdt_feeds = 0
        self.events = []  # recent (t_ms, kind, text), bounded ring for status/demo
        self._ev_max = 32
        self.fault_history = []  # (t_ms, condition names) bounded
        self._tuner = None  # cryo.control.autotune.RelayAutotune while tuning
        self._step = None  # open-loop step test state (dict) while running
        self.tune_result = None
        self.step_result = None
        self.service_requested = False
        self.service_role = None
        self.fw_hash = b"\x00" * 32  # main.py sets the verified image hash (cryo.app)
        self.rtc = None  # main.py: callable -> (s since 2000-01-01, ms) for session headers
        self._isr_ref = self.safety_isr  # pre-bound: an ISR must not allocate it
        foot = getattr(board, "footswitch", None)
        # Held at power-up is not a press (see _operator_inputs).
        self._foot_prev = 1 if (foot is not None and foot.value() == self._foot_level) else 0
        self._in_loop = False  # run() counts overruns as missed deadlines
        self._last_tick = now
        self._storage_t = now
        self._alarm_mask = 0
        self._master_logged = False
        self._freeze_led = (getattr(board, "leds", None) or {}).get("freeze")
        self._freeze_lit = -1
        self._kbd = None
        try:
            import micropython

            self._kbd = micropython.kbd_intr
        except (ImportError, AttributeError):
            pass
        self._check_storage(now)
        il.resync(now)
        if self.config_errors:
            self._event(now, "config", "; ".join(self.config_errors))

    # ------------------------------------------------------------------ setup
    def _make_supervision(self, p):
        """Wrap each driver in a supervision channel when the package exists.

        Debounce and staleness stay with the interlock (one place, one
        setting): the channel classifies every sample on its own
        (``debounce=1``, ``recover=1``) and its stale timer is left long.
        """
        try:
            from cryo.supervision.channel import Channel
        except ImportError:
            return
        i = 0
        while i < 3:
            d = self._drv[i]
            if d is not None:
                self._sup[i] = Channel(
                    _CHANNELS[i],
                    d,
                    self.clock,
                    debounce=1,
                    recover=1,
                    t_min_c=p["tc_min_c"],
                    t_max_c=p["tc_max_c"],
                    cj_min_c=p["cj_min_c"],
                    cj_max_c=p["cj_max_c"],
                    max_rate_c_s=p["max_rate_c_s"],
                    rate_noise_c=p["rate_noise_c"],
                    stuck_ms=int(p["stuck_s"] * 1000),
                    stale_ms=60000,
                    calibration=self._cal[i],
                )
            i += 1

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
        """Two-point calibration per channel (engineer A's
        ``Calibration.from_config``); a bad one is a configuration error."""
        raw = [None, None, None]
        cals = [None, None, None]
        if not isinstance(cfg, dict):
            return raw, cals
        try:
            from cryo.supervision.channel import Calibration
        except ImportError:
            Calibration = None
        i = 0
        while i < 3:
            c = cfg.get(_CAL_FIELDS[i])
            if c is not None:
                try:
                    if not isinstance(c, dict) or Calibration is None:
                        raise ValueError('must be {"m1", "r1", "m2", "r2"} (degC) or null')
                    cals[i] = Calibration.from_config(c)
                    raw[i] = c
                except (KeyError, TypeError, ValueError) as e:
                    self.config_errors.append("%s: %s" % (_CAL_FIELDS[i], e))
            i += 1
        return raw, cals

    def _load_bands(self, cfg):
        """``pid.bands`` rows ``[setpoint_c, kp, ki, kd]`` for the gain schedule."""
        rows = cfg.get("pid.bands") if isinstance(cfg, dict) else None
        if rows is None or rows == []:
            return []
        if not isinstance(rows, list) or len(rows) > _BANDS_MAX:
            self.config_errors.append("pid.bands must be a list of at most %d rows" % _BANDS_MAX)
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
        try:
            from cryo.pid import PID, LoopTimer
        except ImportError:
            self.pid = None
            self.schedule = None
            return
        x = self._extra
        kp, ki, kd = float(x["pid.kp"]), float(x["pid.ki"]), float(x["pid.kd"])
        self.pid = PID(kp, ki, kd, float(x["pid.d_filter_s"]))
        # dt from the real elapsed time, bounded to [period/2, 2*period].
        self.pid_timer = LoopTimer(self.clock, self.period_ms)
        self.schedule = None
        if self._bands:
            try:
                from cryo.control.schedule import GainSchedule

                sch = GainSchedule((kp, ki, kd), band_c=float(x["pid.band_c"]), capacity=_BANDS_MAX)
                sch.from_list(self._bands)
                self.schedule = sch
            except (ImportError, ValueError) as e:
                self.config_errors.append("pid.bands: %s" % e)
                self.il.config_ok = 0

    def _reset_pid(self):
        """Fresh regulator: empty integral, dt timer restarted (no stale gap)."""
        if self.pid is not None:
            self.pid.reset()
            self.pid_timer.restart()

    def _install_limits(self, cj_c):
        """°C limits → raw codes at cold junction ``cj_c`` (control path)."""
        ld = self._lim_drv
        block = LIM.build(self.params, ld[0], ld[1], cj_c, self.setpoint_c, self._p_code, ld[2])
        block[I.L_FOOT_PRESSED] = self._foot_level
        block[I.L_HAND_HELD] = self._hand_level
        block[I.L_ESTOP_OK] = self._estop_level
        self.il.load_limits(block)
        self._cj_limits = cj_c

    def _maybe_resync_limits(self):
        cj = self.cj_c
        if cj is None:
            return
        if self._cj_limits is None or abs(cj - self._cj_limits) >= LIM.CJ_RESYNC_C:
            self._install_limits(cj)

    def _check_storage(self, now):
        ok = 0
        log = self.log
        if log is not None:
            try:
                if getattr(log, "active", False):
                    ok = 0 if getattr(log, "full", False) else 1
                else:
                    ok = 1 if log.has_room_for(self.treatment_seconds()) else 0
            except Exception as e:  # noqa: BLE001 - storage failure is a condition, not a crash
                self._event(now, "storage", "log check failed: %s" % e)
                ok = 0
        self.il.storage_ok = ok
        self._storage_t = now

    def treatment_seconds(self):
        """Longest treatment the parameters allow (for log room checks)."""
        p = self.params
        thaw_allowance_s = 600  # a thaw through the latent-heat plateau takes minutes
        return int(
            p["precool_s"]
            + p["cycles"] * (p["approach_max_s"] + p["min_thaw_s"] + thaw_allowance_s)
            + 60
        )

    # ------------------------------------------------------------------ the tick
    def tick(self, now):
        """One control tick at ``now`` (ms ticks of the injected clock)."""
        clock = self.clock
        t_us = clock.ticks_us()
        il = self.il
        # 1. read: raw codes → interlock (allocation-free drivers).
        #    With supervision (engineer A's cryo.supervision.Channel) each new
        #    sample is also classified for plausibility on raw codes (range,
        #    rate of change, stuck frame, cold-junction range); an implausible
        #    sample counts as a bad sample in the interlock's debounce.
        drv = self._drv
        sup = self._sup
        ch = 0
        fresh = 0
        while ch < 3:
            d = drv[ch]
            if d is not None:
                sv = sup[ch]
                if sv is None:
                    if d.poll(now):
                        il.record(ch, d.tc_code, d.faults, now)
                        fresh |= 1 << ch
                else:
                    n0 = sv.samples
                    st = sv.update(now)
                    if sv.samples != n0:
                        f = d.faults
                        if f == 0 and st > _ST_SUSPECT:
                            f = _F_IMPLAUSIBLE
                        il.record(ch, d.tc_code, f, now)
                        fresh |= 1 << ch
            ch += 1
        if self._adc is not None:
            il.pressure = self._adc.read_u16()
        il.demand_pm = int(self.demand * 1000)
        # 2-3. interlock (safety path): trips close the valves right here.
        il.evaluate(now)
        health = (il.storage_ok, il.wdt_ok, il.config_ok)
        # 4. react: protocol, alarm, log — in that order, after the valves.
        new = il.take_new()
        if new:
            self._on_trip(new, now)
        # °C for the control path (only channels with a fresh, good sample;
        # the line/aux channel every tick only in PRECOOL, where it ends the
        # chill-down, else once a second for the log and telemetry — the
        # interlock watches its raw code every tick regardless).
        if self.protocol.state != S.PRECOOL and self.ticks % 10:
            fresh &= ~(1 << 2)
        ch = 0
        while ch < 3:
            if fresh & (1 << ch):
                d = drv[ch]
                sv = sup[ch]
                if sv is not None:
                    t, cj, _st = sv.convert()  # None unless the reading is plausible
                    self.temp_c[ch] = t
                    if ch == 0 and cj is not None:
                        self.cj_c = cj
                elif d.faults == 0:
                    self.temp_c[ch] = d.temperature
                    if ch == 0:
                        self.cj_c = d.cold_junction
            elif clock.diff(now, il.good_t[ch]) > il.lim[I.L_STALE_MS]:
                self.temp_c[ch] = None
            ch += 1
        # 5. sequencing and regulation.
        self._operator_inputs(now)
        proto = self.protocol
        tissue = self.temp_c[0]
        proto.step(now, tissue, self.temp_c[2])
        self._regulate(now, tissue)
        # 6. valve: permit-gated time-proportioning.
        v = self.valve
        v.request(self.demand)
        if il.permit and self.demand > 0.0:
            v.refresh(now)
        v.service(now)
        # 7. alarms, log, storage check, limits resync, watchdog.
        mask = il.active | il.latched
        if mask != self._alarm_mask:
            self._alarm_changes(self._alarm_mask, mask, now)
            self._alarm_mask = mask
            self.alarms.update(mask, now)
        self.alarms.service(now)
        if il.master_open != self._master_logged:
            self._master_logged = il.master_open
            self._log_event(now, "EV_MASTER_VALVE", 1 if il.master_open else 0, 0)
        fl = self._freeze_led
        if fl is not None:
            lit = 1 if il.master_open else 0
            if lit != self._freeze_lit:
                self._freeze_lit = lit
                fl.value(lit)
        self._log_sample(now)
        if clock.diff(now, self._storage_t) >= _STORAGE_CHECK_MS:
            self._check_storage(now)
        self._maybe_resync_limits()
        if self.wdt is not None and il.healthy():
            try:
                self.wdt.feed()
                self.wdt_feeds += 1
            except Exception as e:  # noqa: BLE001 - a watchdog that cannot be fed is a fault
                il.wdt_ok = 0
                self._event(now, "watchdog", "feed failed: %s" % e)
        # A control-path failure in this tick (log, watchdog, limits) is a
        # condition now: evaluate again so the valves close in this tick.
        if (il.storage_ok, il.wdt_ok, il.config_ok) != health:
            il.evaluate(now)
            new = il.take_new()
            if new:
                self._on_trip(new, now)
                v.service(now)
        self.ticks += 1
        self._last_tick = now
        # Tick cost (real clocks). Under run() the loop counts overruns as
        # missed deadlines (tick + link poll + idle work); a runner that calls
        # tick() directly gets them counted here, as ticks longer than the
        # period.
        dur = clock.diff(clock.ticks_us(), t_us)
        self.tick_us = dur
        if dur > self.max_tick_us:
            self.max_tick_us = dur
        if not self._in_loop:
            if dur > self.period_ms * 1000:
                self.overruns += 1
                il.overruns_consec += 1
            else:
                il.overruns_consec = 0

    def _regulate(self, now, tissue):
        st = self.protocol.state
        pid = self.pid
        if not self.il.permit or tissue is None:
            self.demand = 0.0
            if pid is not None:
                self._reset_pid()
            return
        if st == S.TUNE:
            self.demand = self._tune_demand(now, tissue)
        elif st == S.PRECOOL:
            self.demand = 1.0  # open-loop line chill-down
        elif st == S.FREEZE and pid is not None:
            sch = self.schedule
            if sch is not None:
                sch.apply(pid, self.setpoint_c)  # bumpless, only when the band changes
            d = pid.update(self.setpoint_c, tissue, self.pid_timer.dt_s(now))
            self.demand = 0.0 if d < 0.0 else (1.0 if d > 1.0 else d)
        else:
            self.demand = 0.0

    def _operator_inputs(self, now):
        """The technician's footswitch press (edge) starts a treatment.

        In READY it begins the treatment. In IDLE/DONE/ABORTED, with the
        handpiece out of its holder, it first runs the pre-treatment
        self-test (``start``: sensors, valve read-back, watchdog armed, log
        room) and begins at once if that passed — what the device does
        without a host. A footswitch already pressed when the controller
        came up is not a press (``_foot_prev`` starts from the pin): a
        stuck or held pedal at power-up never starts a treatment; it must
        be released and pressed again. Nothing starts in FAULT or service
        mode."""
        foot = getattr(self.board, "footswitch", None)
        if foot is None:
            return
        pressed = 1 if foot.value() == self._foot_level else 0
        if pressed and not self._foot_prev and not self.service_requested:
            st = self.protocol.state
            try:
                if (1 << st) & S.STARTABLE and self._handpiece_held():
                    if self.start(now):
                        self.begin(now)
                elif st == S.READY:
                    self.begin(now)
            except Exception as e:  # noqa: BLE001 - refused (e.g. handpiece not held): stay put
                self._event(now, "begin", "refused: %s" % e)
        self._foot_prev = pressed

    def _handpiece_held(self):
        hand = getattr(self.board, "handpiece", None)
        return hand is None or hand.value() == self._hand_level

    # ------------------------------------------------------------------ reactions
    def _on_trip(self, new, now):
        """Newly tripped conditions. The valves are already closed (in
        ``Interlock.evaluate``); now the alarm, then the log (fault, alarm
        and master-valve events, while the session is still open), then the
        protocol moves to FAULT/ABORTED (which closes the log session)."""
        names = C.names(new)
        proto = self.protocol
        st = proto.state
        reason = ",".join(names)
        # Alarm.
        mask = self.il.active | self.il.latched
        self.alarms.update(mask, now)
        # Log.
        if len(self.fault_history) < 64:
            self.fault_history.append((now, names, S.name(st)))
        self._event(now, "trip", "%s in %s" % (reason, S.name(st)))
        i = 0
        while i < C.COUNT:
            if new & (1 << i):
                self._log_event(now, "EV_FAULT", i, C.PRIORITY[i])
            i += 1
        self._alarm_changes(self._alarm_mask, mask, now)
        self._alarm_mask = mask
        if self.il.master_open != self._master_logged:
            self._master_logged = self.il.master_open
            self._log_event(now, "EV_MASTER_VALVE", 1 if self.il.master_open else 0, 0)
        # Protocol.
        if new & C.LATCHING:
            proto.fault(now, reason)
        elif (1 << st) & (S.TREATING | (1 << S.READY) | (1 << S.SELF_TEST)):
            proto.abort(now, reason)

    # -- autotune and step test (TUNE phase) ------------------------------
    def _tune_demand(self, now, tissue):
        tu = self._tuner
        if tu is not None:
            d = tu.step(now, tissue)
            if tu.done:
                self.tune_result = tu.result
                self._tuner = None
                self.protocol.end_tune(
                    now, "autotune: " + ("done" if tu.result.get("ok") else str(tu.reason))
                )
                return 0.0
            return d
        sp = self._step
        if sp is not None:
            t = self.clock.diff(now, sp["t0"])
            if t % 1000 < self.period_ms and len(sp["trace"]) < 600:
                sp["trace"].append((t, tissue))
            if t >= sp["ms"]:
                sp["end"] = "done"
                self.step_result = sp
                self._step = None
                self.protocol.end_tune(now, "step test: done")
                return 0.0
            return sp["demand"]
        return 0.0

    def _tune_start_checks(self, now, what):
        st = self.protocol.state
        if not ((1 << st) & S.STARTABLE):
            raise _not_now("%s needs an idle controller, state is %s" % (what, S.name(st)))
        if self.il.blocking():
            raise _not_now("cannot start %s: %s" % (what, ", ".join(C.names(self.il.blocking()))))
        for role, level in (("footswitch", self._foot_level), ("handpiece", self._hand_level)):
            pin = getattr(self.board, role, None)
            if pin is not None and pin.value() != level:
                raise _not_now("%s is hold-to-run: %s is not pressed/held" % (what, role))

    def start_autotune(self, params=None):
        """Relay autotune (engineer C's RelayAutotune) in the TUNE phase.

        ``params``: ``setpoint_c`` (default: target), ``hysteresis_c``,
        ``amplitude`` (relay bias 0.05..0.95). Hold-to-run like a
        treatment; every interlock condition stays armed.
        """
        now = self.clock.ticks_ms()
        params = params or {}
        self._tune_start_checks(now, "autotune")
        from cryo.control.autotune import RelayAutotune

        sp = float(params.get("setpoint_c", self.params["target_c"]))
        if not (self.params["floor_c"] + self.params["floor_margin_c"] <= sp <= 0.0):
            raise ValueError(
                "autotune setpoint_c %r outside %.0f..0 degC (floor + margin)"
                % (sp, self.params["floor_c"] + self.params["floor_margin_c"])
            )
        kw = {"floor_c": self.params["floor_c"] + 5.0}
        if "hysteresis_c" in params:
            kw["hysteresis_c"] = float(params["hysteresis_c"])
        if "amplitude" in params:
            kw["bias"] = float(params["amplitude"])
        kw["timeout_ms"] = int(self.params["tune_max_s"] * 1000) - 1000
        tuner = RelayAutotune(self.clock, sp, **kw)
        self._tuner = tuner
        self.tune_result = None
        self._set_setpoint(sp, now)
        self.protocol.start_tune(now, "autotune")
        return self.autotune_status()

    def autotune_status(self):
        """docs/link.md: ``{"state": "idle/running/done/aborted", "result",
        "reason"}`` plus ``cycles``, ``demand`` and ``phase``."""
        tu = self._tuner
        res = self.tune_result
        if tu is not None:
            state = "running"
        elif res is None:
            state = "idle"
        else:
            state = "done" if res.get("ok") else "aborted"
        return {
            "state": state,
            "cycles": tu.cycles if tu is not None else None,
            "demand": self.demand if tu is not None else 0.0,
            "result": res,
            "reason": None if (res is None or res.get("ok")) else res.get("reason"),
            "phase": self.protocol.name,
        }

    def stop_autotune(self, reason="stopped"):
        now = self.clock.ticks_ms()
        tu = self._tuner
        if tu is not None:
            tu.abort(reason)
            self.tune_result = tu.result
            self._tuner = None
        self.valve.force_closed()
        self.demand = 0.0
        self.protocol.end_tune(now, "autotune: " + reason)
        return self.autotune_status()

    def start_step_test(self, params=None):
        """Open-loop step: constant ``demand`` (0..1) for ``duration_s``;
        the tissue response is recorded once a second (bounded)."""
        now = self.clock.ticks_ms()
        params = params or {}
        self._tune_start_checks(now, "step test")
        demand = params.get("demand", 0.5)
        dur = params.get("duration_s", 60.0)
        if (
            isinstance(demand, bool)
            or not isinstance(demand, (int, float))
            or not 0.0 < demand <= 1.0
        ):
            raise ValueError("step demand must be within 0 (exclusive)..1, got %r" % (demand,))
        if (
            isinstance(dur, bool)
            or not isinstance(dur, (int, float))
            or not 1.0 <= dur <= self.params["tune_max_s"]
        ):
            raise ValueError(
                "step duration_s must be within 1..%.0f s, got %r"
                % (self.params["tune_max_s"], dur)
            )
        self._step = {"t0": now, "ms": int(dur * 1000), "demand": float(demand), "trace": []}
        self.step_result = None
        self.protocol.start_tune(now, "step test")
        return self.step_test_status()

    def step_test_status(self):
        """docs/link.md: ``{"state": "idle/running/done/aborted", "reason"}``
        plus ``demand``, ``duration_s``, ``trace_len`` and ``phase``. The
        trace (1 Hz, up to 600 samples) stays on the device
        (``step_trace()``): it would not fit a 2 KB frame, and the host
        records the response from telemetry."""
        sp = self._step if self._step is not None else self.step_result
        if self._step is not None:
            state = "running"
        elif sp is None:
            state = "idle"
        else:
            state = sp.get("end", "done")
        return {
            "state": state,
            "demand": sp["demand"] if sp else None,
            "duration_s": sp["ms"] / 1000.0 if sp else None,
            "trace_len": len(sp["trace"]) if sp else 0,
            "reason": sp.get("reason") if sp else None,
            "phase": self.protocol.name,
        }

    def step_trace(self):
        """The last step test's ``[(t_ms, tissue_c), ...]`` (1 Hz, on the device)."""
        sp = self._step if self._step is not None else self.step_result
        return list(sp["trace"]) if sp else []

    def stop_step_test(self, reason="stopped"):
        now = self.clock.ticks_ms()
        if self._step is not None:
            self._step["end"] = "aborted"
            self._step["reason"] = reason
            self.step_result = self._step
            self._step = None
        self.valve.force_closed()
        self.demand = 0.0
        self.protocol.end_tune(now, "step test: " + reason)
        return self.step_test_status()

    def _alarm_changes(self, old, new, now):
        """Alarm log (IEC 60601-1-8 6.12): each condition's alarm on/off."""
        if old == new:
            return
        i = 0
        while i < C.COUNT:
            b = 1 << i
            if new & b and not old & b:
                self._log_event(now, "EV_ALARM_ON", i, C.PRIORITY[i])
            elif old & b and not new & b:
                self._log_event(now, "EV_ALARM_OFF", i, 0)
            i += 1

    def _on_phase(self, prev, state, now, reason):
        self._event(
            now,
            "phase",
            "%s -> %s%s" % (S.name(prev), S.name(state), (" (" + reason + ")") if reason else ""),
        )
        self._log_event(now, "EV_PHASE", state, prev)
        if prev == S.TUNE and state != S.TUNE:
            # A trip or stop ends the experiment; the interlock already closed the valve.
            if self._tuner is not None:
                self._tuner.abort("ended by %s" % S.name(state))
                self.tune_result = self._tuner.result
                self._tuner = None
            if self._step is not None:
                self._step["end"] = "aborted"
                self._step["reason"] = "ended by %s" % S.name(state)
                self.step_result = self._step
                self._step = None
        if state == S.FREEZE or state == S.PRECOOL:
            # PRECOOL -> FREEZE: the PID starts empty (conditional
            # integration: nothing wound up during the open-loop chill-down).
            self._set_setpoint(self.params["target_c"], now)
            self._reset_pid()
        # Nothing on the serial line may interrupt a running treatment.
        if self._kbd is not None:
            try:
                self._kbd(-1 if (1 << state) & S.TREATING else 3)
            except Exception:  # noqa: BLE001 - ports without kbd_intr
                pass
        if state in (S.DONE, S.ABORTED, S.FAULT) and prev not in (S.IDLE, S.SELF_TEST, S.READY):
            self._end_session(now, state)

    def _set_setpoint(self, sp_c, now):
        if sp_c != self.setpoint_c:
            self.setpoint_c = sp_c
            self._install_limits(self.cj_c if self.cj_c is not None else 24.0)
            self._log_event(now, "EV_SETPOINT", int(sp_c * 100), 0)

    # ------------------------------------------------------------------ log
    def _event(self, now, kind, text):
        ev = self.events
        if len(ev) >= self._ev_max:
            ev.pop(0)
        ev.append((now, kind, text))

    def _log_event(self, now, name, arg=0, arg2=0):
        log = self.log
        if log is None or R is None or not getattr(log, "active", False):
            return
        try:
            log.event(getattr(R, name), arg, arg2, now)
        except Exception as e:  # noqa: BLE001 - a storage failure trips STORAGE
            self.il.storage_ok = 0
            self._event(now, "storage", "log event failed: %s" % e)

    def _log_sample(self, now):
        log = self.log
        if log is None or R is None or not getattr(log, "active", False):
            return
        t = self.temp_c[0]
        a = self.temp_c[2]
        try:
            log.sample(
                now,
                R.NO_READING16 if t is None else int(t * 100),
                None if a is None else int(a * 10),
                int(self.setpoint_c * 10),
                int(self.demand * 100),
                1 if self.valve.is_open else 0,
                self.protocol.state,
            )
        except Exception as e:  # noqa: BLE001
            self.il.storage_ok = 0
            self._event(now, "storage", "log sample failed: %s" % e)

    def _begin_session(self, now):
        log = self.log
        if log is None or R is None:
            return True
        p = self.params
        rtc_s, rtc_ms = 0, 0
        if self.rtc is not None:
            try:
                rtc_s, rtc_ms = self.rtc()
            except Exception as e:  # noqa: BLE001 - a dead RTC must not block a treatment
                self._event(now, "rtc", "unreadable: %s" % e)
        header = {
            "rtc_s": rtc_s,
            "rtc_ms": rtc_ms,
            "fw_version": _fw_version(),
            "fw_hash": self.fw_hash,
            "config_hash": self._config_hash(),
            "board_id": str(_board_def(self.board).get("name", "board"))[:16],
            "target_cc": int(p["target_c"] * 100),
            "thaw_cc": int(p["thaw_c"] * 100),
            "freeze_ds": int(p["freeze_s"] * 10),
            "cycles": int(p["cycles"]),
            "floor_cc": int(p["floor_c"] * 100),
            "max_freeze_ds": int(p["freeze_max_s"] * 10),
            "min_thaw_ds": int(p["min_thaw_s"] * 10),
        }
        try:
            log.begin_session(header, now, self.treatment_seconds())
            return True
        except Exception as e:  # noqa: BLE001 - LogFull or I/O: no treatment
            self.il.storage_ok = 0
            self._event(now, "storage", "cannot begin log session: %s" % e)
            return False

    def _config_hash(self):
        try:
            from cryo.storage import config as CFG

            cfg = dict(self.params)
            for k in self._extra:
                cfg[k] = self._extra[k]
            return CFG.config_hash(cfg)
        except Exception:  # noqa: BLE001 - no storage package / unencodable: zeros
            return b"\x00" * 32

    def _end_session(self, now, state):
        log = self.log
        if log is None or R is None or not getattr(log, "active", False):
            return
        outcome = R.OUTCOME_COMPLETED
        if state == S.ABORTED:
            outcome = R.OUTCOME_STOPPED
        elif state == S.FAULT:
            outcome = R.OUTCOME_FAULT
        try:
            log.end_session({"outcome": outcome}, now)
        except Exception as e:  # noqa: BLE001
            self.il.storage_ok = 0
            self._event(now, "storage", "log end failed: %s" % e)

    def _audit(self, what, role, **fields):
        a = self.audit
        if a is None:
            return
        entry = {"what": what, "role": role}
        for k in fields:
            entry[k] = fields[k]
        try:
            a.append(entry)
        except Exception:  # noqa: BLE001 - audit failure is reported by storage checks
            self.il.storage_ok = 0

    # ------------------------------------------------------------------ commands
    def start(self, now=None):
        """IDLE/DONE/ABORTED → SELF_TEST → READY (or back, naming the reason)."""
        now = self.clock.ticks_ms() if now is None else now
        il = self.il
        if il.blocking():
            raise _not_now("cannot start: %s" % ", ".join(C.names(il.blocking())))
        if not self.protocol.start(now):
            raise _not_now("cannot start in %s" % self.protocol.name)
        ok, why = self.self_test(now)
        self.protocol.self_test_done(ok, now, why)
        return ok

    def self_test(self, now):
        """Power-on/pre-treatment self-test: sensors, valve outputs, WDT, storage."""
        il = self.il
        p = self.params
        ch = 0
        while ch < 2:
            if il.required & (1 << ch):
                if il.bad[ch] or self.temp_c[ch] is None:
                    return False, "sensor %s not reading" % _CHANNELS[ch]
                t = self.temp_c[ch]
                if not (-10.0 <= t <= 45.0):
                    return False, "sensor %s implausible before treatment: %.1f C" % (
                        _CHANNELS[ch],
                        t,
                    )
            ch += 1
        # Valve outputs: both de-energised and reading back de-energised.
        self.valve.force_closed()
        self.master.close()
        for pin, name in ((self.board.valve_pin, "valve"), (self.board.master_pin, "master valve")):
            try:
                if pin.value() != 0:
                    return False, "%s output reads energised while commanded closed" % name
            except (AttributeError, TypeError):
                pass
        if self.wdt is None:
            start_wdt = getattr(self.board, "start_watchdog", None)
            if start_wdt is not None:
                try:
                    self.wdt = start_wdt(int(p["wdt_ms"]))
                except Exception as e:  # noqa: BLE001 - reported as the self-test result
                    self._event(now, "watchdog", "could not start: %s" % e)
        if p["require_wdt"] and self.wdt is None:
            il.wdt_ok = 0
            return False, "no hardware watchdog"
        self._check_storage(now)
        if not il.storage_ok:
            return False, "log storage unavailable or full"
        return True, ""

    def begin(self, now=None):
        """READY → PRECOOL: open the log session, then let the interlock grant."""
        now = self.clock.ticks_ms() if now is None else now
        if self.protocol.state != S.READY:
            raise _not_now("begin needs READY, state is %s" % self.protocol.name)
        if self.il.blocking():
            raise _not_now("cannot begin: %s" % ", ".join(C.names(self.il.blocking())))
        for role, level in (("footswitch", self._foot_level), ("handpiece", self._hand_level)):
            pin = getattr(self.board, role, None)
            if pin is not None and pin.value() != level:
                raise _not_now("cannot begin: %s is not pressed/held" % role)
        if not self._begin_session(now):
            self.protocol.abort(now, "log storage")
            return False
        return self.protocol.begin(now, self.temp_c[0])

    def stop(self, reason="operator stop", now=None):
        """Stop a treatment now: valves closed in this call, then ABORTED."""
        now = self.clock.ticks_ms() if now is None else now
        self.valve.force_closed()
        self.demand = 0.0
        self._log_event(now, "EV_STOP", 0, 0)
        return self.protocol.abort(now, reason)

    def ack_fault(self, role, now=None):
        """Acknowledge latched faults with a role; FAULT → IDLE once clear."""
        now = self.clock.ticks_ms() if now is None else now
        lvl = role_level(role)
        il = self.il
        before = il.latched
        cleared, still = il.acknowledge(lvl)
        self._event(now, "ack", "%s cleared %s" % (role, ",".join(C.names(cleared)) or "-"))
        self._audit("ack", role, cleared=C.names(cleared), still=C.names(still))
        i = 0
        while i < C.COUNT:
            if cleared & (1 << i):
                self._log_event(now, "EV_ACK", i, lvl)
            i += 1
        if not (il.active | il.latched) and self.protocol.state == S.FAULT:
            self.protocol.clear_fault(now)
        if still and before:
            need = "service" if still & C.SERVICE_ACK else "the cause removed"
            return {"cleared": C.names(cleared), "latched": C.names(still), "needs": need}
        return {"cleared": C.names(cleared), "latched": C.names(still), "state": self.protocol.name}

    def pause_audio(self, role="operator", now=None):
        now = self.clock.ticks_ms() if now is None else now
        ev = self.alarms.pause_audio(now)
        self._event(now, "audio_pause", "%s paused audio" % role)
        self._log_event(now, "EV_AUDIO_PAUSE", ev["ms"] // 1000, role_level(role))
        return ev

    def request_service_mode(self, role):
        """Host asks for service mode: only when no treatment runs."""
        lvl = role_level(role)
        if lvl < 2:
            raise _denied("service mode needs role engineer or service (got %s)" % role)
        st = self.protocol.state
        if not ((1 << st) & (S.STARTABLE | (1 << S.FAULT) | (1 << S.READY))):
            raise _not_now(
                "service mode is not allowed in %s; stop the treatment first" % S.name(st)
            )
        if self.wdt is not None:
            raise _not_now(
                "service mode needs a watchdog that is not armed yet: it was armed by the "
                "first treatment since power-up; reset the board, then request service mode"
            )
        now = self.clock.ticks_ms()
        self.valve.force_closed()
        self.master.close()
        self.service_requested = True
        self.service_role = role
        self._audit("service_mode", role)
        self._event(now, "service", "service mode requested by %s" % role)
        return True

    # -- parameters (link: get/set) --------------------------------------
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
        live = name in _LIVE_GAINS
        if (1 << st) & (S.TREATING | (1 << S.SELF_TEST)) and not live:
            raise _not_now(
                "parameters cannot change during %s (only %s, role engineer, may change live)"
                % (S.name(st), ", ".join(_LIVE_GAINS))
            )
        if name in self._extra:
            need = _extra_spec(name)[4]
            if lvl < role_level(need):
                raise _denied("%s needs role %s or higher (got %s)" % (name, need, role))
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
            self._audit("set", role, name=name, old=old, new=value, phase=S.name(st))
            now = self.clock.ticks_ms()
            self._event(now, "set", "%s %s: %r -> %r" % (role, name, old, value))
            return value
        spec = P.spec(name)
        if lvl < role_level(spec[5]):
            raise _denied("%s needs role %s or higher (got %s)" % (name, spec[5], role))
        trial = dict(self.params)
        trial[name] = value
        msgs = P.validate(trial)
        if msgs:
            raise ValueError("; ".join(msgs))
        old = self.params[name]
        self.params[name] = value
        self.setpoint_c = self.params["target_c"]
        self._install_limits(self.cj_c if self.cj_c is not None else 24.0)
        self._audit("set", role, name=name, old=old, new=value)
        return value

    def _apply_pid_settings(self, name):
        """pid.* changed: the running regulator takes it **bumpless**.

        Gains go through ``PID.set_gains`` (engineer C: the change of the P
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

    def save_config(self, role, path="/config.json"):
        """Store the parameters in force (cryo.storage.config, atomic + CRC).

        Fields the stored schema knows are written under its names (the
        ALIASES of cryo.protocol.params); the rest keep their defaults.
        """
        lvl = role_level(role)
        if lvl < 2:
            raise _denied("saving the configuration needs role engineer or higher (got %s)" % role)
        try:
            from cryo.storage import config as CFG
            from cryo.storage import schema
        except ImportError:
            raise _not_now("no configuration storage on this build")
        cfg = schema.defaults()
        for alias in P.ALIASES:
            if alias in cfg:
                cfg[alias] = self.params[P.ALIASES[alias]]
        for k in self._extra:
            if k in cfg:
                cfg[k] = self._extra[k]
        i = 0
        while i < 3:
            if _CAL_FIELDS[i] in cfg:
                cfg[_CAL_FIELDS[i]] = self._cal_cfg[i]
            i += 1
        if "pid.bands" in cfg:
            cfg["pid.bands"] = self.schedule.to_list() if self.schedule is not None else []
        CFG.save(cfg, path)
        self._audit("save_config", role, path=path)
        return {"path": path, "fields": len(cfg)}

    # -- status / telemetry ----------------------------------------------
    def status(self):
        """Snapshot for the host (G's telemetry fields)."""
        il = self.il
        t = self.temp_c
        temps = {}
        i = 0
        while i < 3:
            if self._drv[i] is not None:
                temps[_CHANNELS[i]] = t[i]
            i += 1
        pid = self.pid
        return {
            "t_ms": self._last_tick,
            "phase": self.protocol.name,
            "cycle": self.protocol.cycle,
            "setpoint_c": self.setpoint_c,
            "temps": temps,
            "cj_c": self.cj_c,
            "demand": self.demand,
            "valve": self.valve.is_open,
            "master": il.master_open,
            "p": pid.p_term if pid is not None else None,
            "i": pid.i_term if pid is not None else None,
            "d": pid.d_term if pid is not None else None,
            "faults": C.names(il.active),
            "latched": C.names(il.latched),
            "alarms": C.names(self.alarms.mask),
            "alarm_priority": C.PRIORITY_NAMES[self.alarms.priority],
            "mode": "service"
            if self.service_requested
            else "autotune"
            if self._tuner is not None
            else "step"
            if self._step is not None
            else "auto",
            "overruns": self.overruns,
            "gain_band": self.schedule.active if self.schedule is not None else None,
            "reason": self.protocol.reason,
        }

    # ------------------------------------------------------------------ loop
    def run(self, should_stop=None):
        """Run the loop on hardware until service mode or ``should_stop()``.

        Always leaves both valves closed (finally), whatever escapes.
        """
        try:
            import asyncio
        except ImportError:
            import uasyncio as asyncio  # noqa: F401 - older ports
        arm = getattr(self.board, "start_safety_timer", None)
        timer = None
        try:
            if arm is not None:
                timer = arm(self.period_ms, self._isr_ref)
            asyncio.run(self._loop(should_stop))
        finally:
            self._in_loop = False
            if timer is not None:
                try:
                    timer.deinit()
                except Exception:  # noqa: BLE001 - closing the valves matters more
                    pass
            self.safe()

    def safety_isr(self, _timer=None):
        """Hard-timer callback beside the loop (allocation-free): closes both
        valves if the loop missed its heartbeat. ``run()`` arms it through
        ``board.start_safety_timer(period_ms, callback)`` when the board
        offers one; the bound method is created once (``_isr_ref``)."""
        self.il.heartbeat_check(self.clock.ticks_ms())

    def safe(self):
        """De-energise everything (allocation-free paths of the drivers)."""
        self.valve.permit = False
        self.valve.force_closed()
        self.master.close()
        so = getattr(self.board, "safe_outputs", None)
        if so is not None:
            so()

    async def _loop(self, should_stop=None):
        import asyncio

        clock = self.clock
        period = self.period_ms
        now = clock.ticks_ms()
        self.il.resync(now)
        deadline = clock.add(now, period)
        self._in_loop = True
        while not self.service_requested:
            if should_stop is not None and should_stop():
                break
            self.tick(clock.ticks_ms())
            link = self.link
            if link is not None:
                # Outside the tick: bounded work, never raises. While it did
                # work and there is slack before the next tick, poll again
                # (at most _LINK_POLLS per period: a request that arrived in
                # pieces, or a queue of requests, is served without waiting
                # a whole tick per frame, and a flood still cannot eat the
                # period).
                n = 0
                while (
                    link.poll()
                    and n < _LINK_POLLS - 1
                    and clock.diff(deadline, clock.ticks_ms()) > _LINK_SLACK_MS
                ):
                    n += 1
            # Planned idle point: collect while there is slack before the deadline.
            if clock.diff(deadline, clock.ticks_ms()) > _GC_SLACK_MS:
                gc.collect()
            late = clock.diff(clock.ticks_ms(), deadline)
            if late > 0:
                # Missed the deadline: count it (consecutive ones trip
                # OVERRUN at the next evaluation), resynchronise (no burst).
                self.overruns += 1
                self.il.overruns_consec += 1
                deadline = clock.add(clock.ticks_ms(), period)
                await asyncio.sleep_ms(0)
            else:
                self.il.overruns_consec = 0
                await self._service_until(deadline)
                deadline = clock.add(deadline, period)

    def service_valve(self, now):
        """Valve sub-tick (integer-only, allocation-free): time-proportioning
        between control ticks. ``run()`` calls it every ``service_ms`` while
        it waits for the next tick; a runner that drives ``tick`` itself in
        virtual time (boards/sim) should call it every ``service_ms`` too.
        Permit and dead-man are checked inside the valve driver, so a
        sub-tick can only close, or open as the last tick allowed."""
        self.valve.service(now)

    async def _service_until(self, deadline):
        """Sleep until ``deadline`` in ``service_ms`` slices, servicing the valve.

        Why: the time-proportioning resolution is the service period. A
        200 ms window serviced only at the 100 ms tick has three levels
        (0, 100, 200 ms); measured on the default plant at -35 degC
        (docs/safety.md) the hold RMS is 0.54 degC at 100 ms service and
        0.36 degC at 10 ms.
        """
        import asyncio

        clock = self.clock
        step = self.service_ms
        while True:
            left = clock.diff(deadline, clock.ticks_ms())
            if left <= 0:
                return
            await asyncio.sleep_ms(step if left > step else left)
            self.valve.service(clock.ticks_ms())


def _fw_version():
    try:
        import cryo

        return cryo.VERSION
    except (ImportError, AttributeError):
        return "?"
