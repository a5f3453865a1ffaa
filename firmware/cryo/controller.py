"""The control tick: read → supervise → interlock → react → PID → valve → log.

``Controller(board, config=None, log=None, audit=None, state=None,
events=None)``; ``tick(now_ms)`` runs one fixed-period control tick,
``run()`` schedules it on hardware with ``ticks_add`` deadlines (asyncio).
The virtual board's runner (fast virtual time, ``ManualClock``) calls
``tick(now_ms)`` directly.

Order inside a tick, and why:

1. **read** — every thermocouple driver is polled without blocking
   (MAX31855: one 32-bit frame; MAX31856: collect a finished one-shot and
   start the next) through its supervision channel
   (``cryo.supervision.Channel``), which classifies each new sample on raw
   codes; raw codes and flags go into the interlock (``Interlock.record``),
   which debounces and checks staleness. Supply pressure: one ADC read.
2. **interlock** — ``Interlock.evaluate(now)``: integer-only,
   allocation-free; on a trip it de-energises the valve and the master
   valve before it returns.
3. **react** — for newly tripped conditions: the alarm, then the log
   (treatment log and device event log), then the protocol moves to FAULT
   (latched) or ABORTED — valve first, alarm second, log third.
4. **sequence + PID** — °C for fresh samples, the protocol advances (its
   phase changes go through the interlock, which grants or withdraws the
   permit in the same call); PRECOOL asks for full cooling open-loop,
   FREEZE runs the PID, every other phase asks for nothing.
5. **valve** — ``request`` (float→int once), ``refresh`` the dead-man only
   while a permitted demand exists, ``service`` (integer, permit-gated).
6. **alarms, log sample, watchdog** — the WDT is fed only when every
   health check passed in this tick.

Occasional work (the log's flash commit, the safety state's periodic write,
the log's room check, re-placing the limits after the cold junction moved)
runs at the idle point after the tick, ``idle(now)``, so the tick's cost
stays flat.

Any exception escaping steps 1-6 is caught by ``tick`` itself: both valves
are de-energised in that tick, the INTERNAL condition latches (service
acknowledgement), the exception's type is logged and the treatment ends.
Beside the loop, a hard timer (``Board.start_safety_timer``, armed here at
construction) checks the loop's heartbeat and closes both valves on its
own, and a pin interrupt latches any opening of the e-stop loop.

This module is the tick and the safety path (``tick``, reactions to trips,
``safety_isr``, ``safe``, ``service_valve``); the other parts of the
controller are mixins in ``cryo.core`` (settings, tuning, session log,
commands/status, the asyncio loop) and collaborators (``SafetyMemory``,
``Site``). Names other code imports from here: ``Controller``, ``EXTRAS``,
``check_extra``, ``check_extras``, ``role_level``, ``make_sensor``.
"""

import micropython
from micropython import const

from cryo.actuation.valve import MasterValve, SolenoidValve
from cryo.alarms.alarms import Alarms
from cryo.core.commands import CommandsMixin
from cryo.core.hardware import (
    CHANNELS,
    CalibratedCodes,
    active_level,
    fw_hash_of,
    make_sensor,
    pressure_code_fn,
)
from cryo.core.loop import LoopMixin
from cryo.core.memory import SafetyMemory
from cryo.core.roles import role_level
from cryo.core.session import SessionMixin
from cryo.core.settings import EXTRAS, SettingsMixin, check_extra, check_extras
from cryo.core.site import Site
from cryo.core.tuning import TuningMixin
from cryo.interlock import block as B
from cryo.interlock import conditions as C
from cryo.interlock import interlock as I
from cryo.interlock import limits as LIM
from cryo.protocol import params as P
from cryo.protocol import states as S
from cryo.protocol.protocol import Protocol
from cryo.sensing.faults import FAULT_IMPLAUSIBLE
from cryo.storage import records as R
from cryo.storage import safety_state as SS
from cryo.storage import schema as _schema
from cryo.supervision.channel import Channel

# Re-exported: other code and tests import these from cryo.controller.
__all__ = ("Controller", "EXTRAS", "check_extra", "check_extras", "role_level", "make_sensor")

_ST_SUSPECT = const(2)  # cryo.supervision.channel: statuses above this are faults
_STORAGE_CHECK_MS = const(1000)
# A hung firmware must leave the valve closed within this time (the watchdog
# resets the MCU, the reset releases the valve pins, gate pull-downs close
# it): the schema's upper bound of limits.wdt_ms is that clinical maximum.
WDT_CLINICAL_MAX_MS = _schema.field("limits.wdt_ms")[4]


def _name_id(name):
    """A 24-bit id of an exception type's name for the device event log
    (a record has no room for text; the host maps the ids of the built-in
    exception names back)."""
    h = 0
    for c in name:
        h = (h * 31 + ord(c)) & 0xFFFFFF
    return h


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


class Controller(SettingsMixin, TuningMixin, SessionMixin, CommandsMixin, LoopMixin):
    """The device's core loop. See the module docstring for the tick order.

    ``board`` is a ``cryo.board.Board`` (``spi``, ``cs``, ``valve_pin``,
    ``master_pin``, ``estop``, ``footswitch``, ``handpiece``, ``buzzer``,
    ``leds``, ``pressure_adc``, ``clock``, ``safe_outputs()``,
    ``start_watchdog()``, ``start_safety_timer()``, ``watch_estop()``,
    ``reset_cause()``).
    ``config``: dict of parameters (cryo.protocol.params names plus
    ``pid.*``/``valve.*``); invalid values latch CONFIG and are reported in
    ``config_errors``. ``log``: a cryo.storage.log.TreatmentLog (None: no
    storage, STORAGE blocks treatment). ``audit``: cryo.storage.audit
    AuditTrail for acknowledgements and parameter changes. ``state``: a
    cryo.storage.safety_state.SafetyState and ``events`` a
    cryo.storage.events.DeviceEventLog — the latches, the site's dose and
    the device's event history that survive a reset (None: not kept).
    ``sensors``/``valve``/``master`` may be injected (tests, other boards).
    ``config_fault``: the fault from ``cryo.storage.config.load`` (fallback
    to last-known-good latches CONFIG; unusable keeps it active).
    ``rtc``: callable returning (seconds since 2000-01-01, ms) for the
    session headers (None: zeros). ``link``: the command channel polled
    between ticks (``attach_link`` when it needs the controller first).
    ``app``: boot's app selection (``cryo.app.select_app``, the ``APP`` dict
    boot.py leaves for main.py): ``fault`` 1 (fell back to the previous
    slot) latches FIRMWARE until a service acknowledgement, 2 (no authentic
    app) keeps it active; ``manifest_sha256`` becomes the session header's
    ``fw_hash``.
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
        app=None,
        state=None,
        events=None,
        rtc=None,
    ):
        self.board = board
        self.clock = clock if clock is not None else board.clock
        self.log = log
        self.audit = audit
        self.link = link
        cfg = config if config is not None else {}
        self.config = cfg
        # The board's tick_ms is the default control period; a config that
        # sets period_ms (or pid.period_ms) overrides it.
        own = P.normalize(cfg)
        eff = cfg
        tick = board.tick_ms
        if tick and isinstance(cfg, dict) and "period_ms" not in own:
            eff = dict(cfg)
            eff["period_ms"] = tick
        self.config_errors = P.validate(eff)
        self.params = P.merged(eff) if not self.config_errors else P.defaults()
        p = self.params
        self.period_ms = int(p["period_ms"])
        # The board's watchdog.timeout_ms, shortened (never lengthened) by the config.
        self.wdt_ms = watchdog_timeout_ms(
            own.get("wdt_ms") if not self.config_errors else None,
            board.watchdog_ms,
        )
        self._extra = self._load_extras(cfg)
        self._cfg_hash = None
        self._rehash_config()
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
            for name in CHANNELS:
                if name in board.cs:
                    sensors[name] = make_sensor(board, name)
        if "tissue" not in sensors:
            raise ValueError("the board has no 'tissue' thermocouple channel (required)")
        self.sensors = sensors
        self._drv = [sensors.get(n) for n in CHANNELS]
        # Limits are true temperatures: with a calibration the interlock's
        # raw codes are those of the *measured* value that calibrates to it.
        self._lim_drv = [
            CalibratedCodes(d, c) if (d is not None and c is not None) else d
            for d, c in zip(self._drv, self._cal)
        ]
        self._sup = [self._channel(i, p) for i in range(3)]
        self.temp_c = [None, None, None]
        self.cj_c = None

        # The interlock.
        il = I.Interlock(
            clock,
            self.valve,
            self.master,
            estop=board.estop,
            footswitch=board.footswitch,
            handpiece=board.handpiece,
        )
        self.il = il
        fitted = 1
        if self._drv[1] is not None:
            fitted |= 1 << B.TISSUE2
        if self._drv[2] is not None:
            fitted |= 1 << B.AUX
        self._adc = board.pressure_adc
        il.fit(fitted, self._adc is not None)
        self._p_code = pressure_code_fn(board)
        self._foot_level = active_level(board, "footswitch")
        self._hand_level = active_level(board, "handpiece")
        self._estop_level = active_level(board, "estop")
        self._cj_limits = None
        self.setpoint_c = p["target_c"]
        self._install_limits(24.0)
        il.set_config_ok(not self.config_errors)
        if config_fault is not None:
            # cryo.storage.config.load: 1 = running on the last known good
            # file (latched until a service acknowledgement), 2 = unusable.
            code = getattr(config_fault, "code", 2)
            self.config_errors.append(str(config_fault))
            if code == 1:
                il.latch(C.CONFIG)
            else:
                il.set_config_ok(False)
        if p["require_redundant"] and self._drv[1] is None:
            il.set_config_ok(False)
            self.config_errors.append("require_redundant is set but the board has no tissue2")

        # Watchdog: armed before any valve may open (the self-test, a tune
        # start), then fed only when healthy; the interlock withholds the
        # permit until it runs (``require_wdt``). Not at construction: it
        # cannot be stopped once started, and an idle board with closed
        # valves must stay reachable for service mode.
        self.wdt = board.wdt
        il.set_wdt_armed(self.wdt is not None)

        self.protocol = Protocol(p, clock, il, on_change=self._on_phase)
        self.alarms = Alarms(clock, board.buzzer, board.leds)
        self.pid = None
        self._make_pid()

        # Bookkeeping.
        self.demand = 0.0
        self.ticks = 0
        self.overruns = 0
        self._overruns_consec = 0
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
        self.internal_error = None  # type name of the last exception caught in tick
        self.fw_hash = fw_hash_of(app)  # the verified manifest's SHA-256 (cryo.app)
        self.app_fault = 0
        self.rtc = rtc  # callable -> (s since 2000-01-01, ms) for session headers
        self._isr_ref = self.safety_isr  # pre-bound: an ISR must not allocate it
        foot = board.footswitch
        # Held at power-up is not a press (see _operator_inputs).
        self._foot_prev = 1 if (foot is not None and foot.value() == self._foot_level) else 0
        self._in_loop = False  # run() counts overruns as missed deadlines
        self._last_tick = now
        self._storage_t = now
        self._alarm_mask = 0
        self._master_logged = False
        self._freeze_led = board.leds.get("freeze")
        self._freeze_lit = -1
        self._kbd = getattr(micropython, "kbd_intr", None)  # absent under CPython
        self._check_storage(now)
        il.resync(now)

        # What survives a reset: latches, the site's dose and frozen flag,
        # the boot history (cryo.core.memory). Restored before the first
        # tick; restored latches put the protocol into FAULT then.
        self.memory = SafetyMemory(state, events, clock)
        self._restore(board.reset_cause(), now)
        if self.config_errors:
            self._event(now, "config", "; ".join(self.config_errors))
        self._app_fault(app, now)

        # Hardware beside the loop, from construction on: the safety timer
        # checks the heartbeat and closes both valves on its own; the
        # e-stop interrupt latches an opening of the loop between ticks.
        self._timer = board.start_safety_timer(self.period_ms, self._isr_ref)
        board.watch_estop(il.estop_isr)

    def _restore(self, reset_name, now):
        """Latches and the site's dose from flash (cryo.core.memory)."""
        got = self.memory.boot(reset_name, now)
        il = self.il
        has_holder = self.board.handpiece is not None
        self.site = Site(bool(got["flags"] & SS.FLAG_SITE_FROZEN), has_holder)
        il.restore(got["latched"], got["dose"])
        if got["lost"]:
            # A state that cannot be read must not look like a clean one.
            il.latch(C.CONFIG)
            self._event(now, "memory", "safety state unreadable: CONFIG latched")
        if reset_name == "wdt":
            # The watchdog bit only because the loop stopped (it is fed every
            # healthy tick): the overrun the safety timer latched in RAM just
            # before is lost with the reset, so it is raised again here and
            # recorded by the first tick like any other trip.
            il.latch(C.OVERRUN)
        if got["wdt_in_treatment"]:
            il.latch(C.WATCHDOG)
            self._event(now, "memory", "watchdog reset during a treatment")
        if got["latched"]:
            self._event(now, "memory", "restored: %s" % ",".join(C.names(got["latched"])))
            self.protocol.fault(now, "restored: " + ",".join(C.names(got["latched"])))
            self._alarm_mask = il.blocking()
            self.alarms.update(self._alarm_mask, now)

    def _app_fault(self, app, now):
        """Firmware integrity from boot's app selection (cryo.app).

        1 = booted the previous slot (the wanted one failed verification):
        runnable, latched until the service role inspects and acknowledges.
        2 = no authentic app: FIRMWARE stays active, no treatment at all.
        Raised like any other trip: alarm, log and FAULT in the first tick.
        """
        code = (app.get("fault") or 0) if app else 0
        if not code:
            return
        self.app_fault = code
        if code == 1:
            self.il.latch(C.FIRMWARE)
        else:
            self.il.set_fw_ok(False)
        self._event(now, "firmware", "app fault %d: %s" % (code, app.get("reason") or "-"))

    def _channel(self, i, p):
        """Supervision of channel ``i`` (None when not fitted).

        Debounce and staleness stay with the interlock (one place, one
        setting): the channel classifies every sample on its own
        (``debounce=1``, ``recover=1``) and its stale timer is left long.
        """
        d = self._drv[i]
        if d is None:
            return None
        return Channel(
            CHANNELS[i],
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
            expect_change=False,  # until a cooling phase (_on_phase)
        )

    def _install_limits(self, cj_c):
        """°C limits → raw codes at cold junction ``cj_c`` (control path)."""
        ld = self._lim_drv
        levels = (self._foot_level, self._hand_level, self._estop_level)
        block = LIM.build(
            self.params, ld[0], ld[1], cj_c, self.setpoint_c, levels, self._p_code, ld[2]
        )
        self.il.load_limits(block)
        self._cj_limits = cj_c

    def _maybe_resync_limits(self):
        cj = self.cj_c
        if cj is None:
            return
        if self._cj_limits is None or abs(cj - self._cj_limits) >= LIM.CJ_RESYNC_C:
            self._install_limits(cj)

    def tick(self, now):
        """One control tick at ``now`` (ms ticks of the injected clock).

        An exception from any part of the tick closes both valves here,
        latches INTERNAL and ends the treatment (``_internal_fault``)."""
        try:
            self._tick(now)
        except Exception as e:  # noqa: BLE001 - every escape is a fault, handled here
            self._internal_fault(now, e)

    def _tick(self, now):
        clock = self.clock
        t_us = clock.ticks_us()
        il = self.il
        # 1. read: raw codes → interlock (allocation-free drivers), each new
        #    sample classified by its supervision channel on raw codes
        #    (range, rate, stuck frame, cold-junction range); an implausible
        #    sample counts as a bad sample in the interlock's debounce.
        drv = self._drv
        sup = self._sup
        ch = 0
        fresh = 0
        while ch < 3:
            sv = sup[ch]
            if sv is not None:
                n0 = sv.samples
                st = sv.update(now)
                if sv.samples != n0:
                    d = drv[ch]
                    f = d.faults
                    if f == 0 and st > _ST_SUSPECT:
                        f = FAULT_IMPLAUSIBLE
                    il.record(ch, d.tc_code, f, now)
                    fresh |= 1 << ch
            ch += 1
        if self._adc is not None:
            il.set_pressure(self._adc.read_u16())
        il.set_demand(int(self.demand * 1000))
        il.set_overruns(self._overruns_consec)
        # 2. interlock (safety path): trips close the valves right here.
        il.evaluate(now)
        health = il.health()
        # 3. react: alarm, log, protocol — in that order, after the valves.
        new = il.take_new()
        if new:
            self._on_trip(new, now)
        # 4. °C for the control path (only channels with a fresh, good
        # sample; the line/aux channel every tick only in PRECOOL, where it
        # ends the chill-down, else once a second for the log and telemetry
        # — the interlock watches its raw code every tick regardless).
        if self.protocol.state != S.PRECOOL and self.ticks % 10:
            fresh &= ~(1 << 2)
        ch = 0
        while ch < 3:
            if fresh & (1 << ch):
                t, cj, _st = sup[ch].convert()  # None unless the reading is plausible
                self.temp_c[ch] = t
                if ch == 0 and cj is not None:
                    self.cj_c = cj
            elif clock.diff(now, il.good_t[ch]) > il.lim[B.L_STALE_MS]:
                self.temp_c[ch] = None
            ch += 1
        self._operator_inputs(now)
        proto = self.protocol
        tissue = self.temp_c[0]
        proto.step(now, tissue, self.temp_c[2])
        self._track_site(now, tissue)
        self._regulate(now, tissue)
        # 5. valve: permit-gated time-proportioning.
        v = self.valve
        v.request(self.demand)
        if il.permit and self.demand > 0.0:
            v.refresh(now)
        v.service(now)
        # 6. alarms, log, safety memory, storage check, limits, watchdog.
        mask = il.blocking()
        if mask != self._alarm_mask:
            self._alarm_changes(self._alarm_mask, mask, now)
            self._alarm_mask = mask
            self.alarms.update(mask, now)
        self.alarms.service(now)
        if il.master_open != self._master_logged:
            self._master_logged = il.master_open
            self._log_event(now, R.EV_MASTER_VALVE, 1 if il.master_open else 0, 0)
        fl = self._freeze_led
        if fl is not None:
            lit = 1 if il.master_open else 0
            if lit != self._freeze_lit:
                self._freeze_lit = lit
                fl.value(lit)
        self._log_sample(now)
        if self.wdt is not None and il.healthy():
            try:
                self.wdt.feed()
                self.wdt_feeds += 1
            except Exception as e:  # noqa: BLE001 - a watchdog that cannot be fed is a fault
                il.set_wdt_ok(False)
                self._event(now, "watchdog", "feed failed: %s" % e)
        # A control-path failure in this tick (log, watchdog, limits) is a
        # condition now: evaluate again so the valves close in this tick.
        if il.health() != health:
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
            self.count_overrun(dur > self.period_ms * 1000)

    def idle(self, now):
        """Occasional work at the planned idle point after a tick (``run()``,
        the fast runner and the test rigs call it): commit the log's queued
        samples before the next tick would, keep the safety state current,
        check the log's room once a second, re-place the limits when the
        cold junction moved. None of it may delay the tick itself; a failure
        here is a condition the next tick's evaluation acts on."""
        try:
            log = self.log
            if log is not None and log.active:
                log.commit_soon()
            self._remember(now)
            if self.clock.diff(now, self._storage_t) >= _STORAGE_CHECK_MS:
                self._check_storage(now)
            self._maybe_resync_limits()
        except OSError as e:
            self.il.set_storage_ok(False)
            self._event(now, "storage", "idle work failed: %s" % e)

    def attach_link(self, link):
        """The command channel ``run()`` polls between ticks (it is built
        with the controller, so it comes after the constructor)."""
        self.link = link

    def count_overrun(self, late):
        """One period's timing: ``late`` counts towards OVERRUN (consecutive)."""
        if late:
            self.overruns += 1
            self._overruns_consec += 1
        else:
            self._overruns_consec = 0

    def _internal_fault(self, now, exc):
        """An exception escaped the tick: a firmware defect. Valves first
        (allocation-free paths), then the latch, the alarm and the records;
        each step contained so a second failure cannot skip the next one."""
        self.safe()
        self.demand = 0.0
        name = type(exc).__name__
        self.internal_error = name
        try:
            self.il.latch(C.INTERNAL)
            self._on_trip(self.il.take_new(), now, "internal: " + name)
        except Exception:  # noqa: BLE001 - the valves are closed; keep going
            pass
        try:
            self.memory.record(R.DEV_INTERNAL, 0, _name_id(name), now)
        except Exception:  # noqa: BLE001
            pass
        self.safe()

    def _track_site(self, now, tissue):
        """The site: frozen until thawed, new once the handpiece rested in
        its holder (cryo.core.site)."""
        st = self.protocol.state
        self.site.update(
            tissue,
            (1 << st) & S.COOLING,
            not self._handpiece_held(),
            self.params["thaw_c"],
            int(self.params["min_thaw_s"] * 1000),
            self.period_ms,
        )

    def _flags(self):
        f = 0
        if (1 << self.protocol.state) & S.TREATING:
            f |= SS.FLAG_TREATING
        if self.site.frozen:
            f |= SS.FLAG_SITE_FROZEN
        return f

    def _remember(self, now):
        """Latches, flags and the site's dose to flash when they changed
        (cryo.core.memory): at the idle point right after the tick."""
        self.memory.update(self.il.latched, self.il.dose(), self._flags(), now)

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
        foot = self.board.footswitch
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
        hand = self.board.handpiece
        return hand is None or hand.value() == self._hand_level

    def _on_trip(self, new, now, reason=None):
        """Newly tripped conditions. The valves are already closed (in
        ``Interlock.evaluate``); now the alarm, then the records (treatment
        log while the session is still open, the device event log in every
        phase), then the protocol moves to FAULT/ABORTED (which closes the
        log session)."""
        names = C.names(new)
        proto = self.protocol
        st = proto.state
        if reason is None:
            reason = ",".join(names)
        il = self.il
        # Alarm.
        mask = il.blocking()
        self.alarms.update(mask, now)
        # Records.
        if len(self.fault_history) < 64:
            self.fault_history.append((now, names, S.name(st)))
        self._event(now, "trip", "%s in %s" % (reason, S.name(st)))
        i = 0
        while i < C.COUNT:
            if new & (1 << i):
                self._log_event(now, R.EV_FAULT, i, C.PRIORITY[i])
                self.memory.record(R.DEV_FAULT, i, st, now)
            i += 1
        self._alarm_changes(self._alarm_mask, mask, now)
        self._alarm_mask = mask
        if il.master_open != self._master_logged:
            self._master_logged = il.master_open
            self._log_event(now, R.EV_MASTER_VALVE, 1 if il.master_open else 0, 0)
        # Protocol.
        if new & C.LATCHING:
            proto.fault(now, reason)
        elif (1 << st) & (S.TREATING | (1 << S.READY) | (1 << S.SELF_TEST)):
            proto.abort(now, reason)

    def _alarm_changes(self, old, new, now):
        """Alarm log (IEC 60601-1-8 6.12): each condition's alarm on/off."""
        if old == new:
            return
        i = 0
        while i < C.COUNT:
            b = 1 << i
            if new & b and not old & b:
                self._log_event(now, R.EV_ALARM_ON, i, C.PRIORITY[i])
            elif old & b and not new & b:
                self._log_event(now, R.EV_ALARM_OFF, i, 0)
            i += 1

    def _on_phase(self, prev, state, now, reason):
        self._event(
            now,
            "phase",
            "%s -> %s%s" % (S.name(prev), S.name(state), (" (" + reason + ")") if reason else ""),
        )
        self._log_event(now, R.EV_PHASE, state, prev)
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
        # A frame that does not change is a stuck converter only while the
        # tissue is being cooled: a probe resting at room temperature may
        # read the same code for minutes (0.25 degC steps on a MAX31855).
        cooling = (1 << state) & S.COOLING != 0
        for sv in self._sup:
            if sv is not None:
                sv.expect_change(cooling)
        if state == S.FREEZE or state == S.PRECOOL:
            # PRECOOL -> FREEZE: the PID starts empty (conditional
            # integration: nothing wound up during the open-loop chill-down).
            self._set_setpoint(self.params["target_c"], now)
            self._reset_pid()
        # Nothing on the serial line may interrupt a running treatment.
        if self._kbd is not None:
            self._kbd(-1 if (1 << state) & S.TREATING else 3)
        if state in (S.DONE, S.ABORTED, S.FAULT) and prev not in (S.IDLE, S.SELF_TEST, S.READY):
            self._end_session(now, state)

    def _set_setpoint(self, sp_c, now):
        if sp_c != self.setpoint_c:
            self.setpoint_c = sp_c
            self._install_limits(self.cj_c if self.cj_c is not None else 24.0)
            self._log_event(now, R.EV_SETPOINT, R.to_cc(sp_c), 0)

    def safety_isr(self, _timer=None):
        """Hard-timer callback beside the loop (allocation-free): closes both
        valves if the loop missed its heartbeat. Armed at construction
        through ``board.start_safety_timer(period_ms, callback)``; the bound
        method is created once (``_isr_ref``)."""
        self.il.heartbeat_check(self.clock.ticks_ms())

    def safe(self):
        """De-energise everything (allocation-free paths of the drivers)."""
        self.valve.set_permit(False)
        self.valve.force_closed()
        self.master.close()
        self.board.safe_outputs()

    def service_valve(self, now):
        """Valve sub-tick (integer-only, allocation-free): time-proportioning
        between control ticks. ``run()`` calls it every ``service_ms`` while
        it waits for the next tick; a runner that drives ``tick`` itself in
        virtual time (boards/sim) should call it every ``service_ms`` too.
        Permit and dead-man are checked inside the valve driver, so a
        sub-tick can only close, or open as the last tick allowed."""
        self.valve.service(now)
