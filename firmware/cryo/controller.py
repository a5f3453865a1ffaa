"""The device's controller: its parts put together, and what it is asked to do.

``Controller(board, config=None, log=None, audit=None, ...)`` builds the
parts in the order the safety of the device needs — both valves closed
before anything else can fail — and restores what survived the last reset.
The parts, each owning its state (docs/architecture.md):

========================  ==================================================
``settings``              the configuration in force (cryo.core.settings)
``inputs``                thermocouples, pressure, pedal/holder levels, and
                          the interlock's limits in their codes (core.inputs)
``il``                    the interlock: alone grants the permit to cool
``valve``, ``master``     the cryogen valve (solenoid or proportional, as
                          the board fits) and the series master valve
``regulator``             PID (+ gain schedule) for FREEZE (control.regulator)
``tuning``                the TUNE phase's experiments (control.tuning)
``journal``               treatment log session, audit, recent events
``memory``                latches, dose and device events on flash
``wear``                  the solenoid's lifetime cycle count
``site``                  the treatment site: frozen or thawed, same or new
``watchdog``, ``alarms``  the hardware watchdog; audible/visual alarms
``ticker``                the tick itself (cryo.core.tick) and the protocol
========================  ==================================================

``tick(now)`` runs one control tick and ``idle(now)`` the occasional work
after it (``cryo.core.tick``); ``run()`` schedules both on hardware
(``cryo.core.loop``); ``service_valve(now)`` is the valve's sub-tick.
The methods below are the commands of the operator, the engineer and the
service technician (the link calls them by name): start, begin, stop,
acknowledge, set/get/save parameters, autotune and step test, service
mode, and ``status()``. Refusals name the reason (``NotNow``/``Denied``);
every accepted role-asserted action is audited.

Beside the loop, from construction on, a hard timer
(``Board.start_safety_timer``) checks the loop's heartbeat and closes both
valves on its own, and a pin interrupt latches any opening of the e-stop
loop between ticks.
"""

import micropython

from cryo.actuation.valve import MasterValve, ProportionalValve, SolenoidValve
from cryo.alarms.alarms import Alarms
from cryo.app import fw_hash
from cryo.board import CHANNELS
from cryo.control.regulator import Regulator
from cryo.control.tuning import Tuning
from cryo.core import engineer as E
from cryo.core.inputs import Inputs
from cryo.core.journal import Journal
from cryo.core.loop import Loop
from cryo.core.memory import SafetyMemory
from cryo.core.operator import COMMANDS as OPERATOR_COMMANDS
from cryo.core.operator import Operator
from cryo.core.settings import BANDS_MAX, Settings
from cryo.core.site import Site
from cryo.core.tick import Tick
from cryo.core.watchdog import Watchdog
from cryo.core.wear import ValveWear
from cryo.interlock import conditions as C
from cryo.interlock import interlock as I
from cryo.storage import safety_state as SS


def _cryogen_valve(board, clock, x):
    """The board's cryogen valve driver: a proportional valve on its PWM
    (the duty is the opening; no window, so no ripple from pulses and no
    cycles while it modulates) or the time-proportioned solenoid."""
    if board.valve_pwm is not None:
        return ProportionalValve(
            board.valve_pwm,
            clock,
            max_open_ms=int(x["valve.max_open_ms"]),
            min_demand=board.valve_min_demand,
        )
    return SolenoidValve(
        board.valve_pin,
        clock,
        window_ms=int(x["valve.window_ms"]),
        min_on_ms=int(x["valve.min_on_ms"]),
        min_off_ms=int(x["valve.min_off_ms"]),
        max_open_ms=int(x["valve.max_open_ms"]),
    )


class _Parts:
    """The parts ``Tick``, ``Operator`` and ``Engineer`` call, named once."""

    def __init__(self, ctl):
        self.clock = ctl.clock
        self.board = ctl.board
        self.settings = ctl.settings
        self.inputs = ctl.inputs
        self.il = ctl.il
        self.valve = ctl.valve
        self.master = ctl.master
        self.regulator = ctl.regulator
        self.tuning = ctl.tuning
        self.journal = ctl.journal
        self.memory = ctl.memory
        self.wear = ctl.wear
        self.site = ctl.site
        self.watchdog = ctl.watchdog
        self.alarms = ctl.alarms
        self.fw_hash = ctl.fw_hash
        self.config_key = ctl.config_key
        self.ticker = None  # the Tick, once built (it builds the protocol)


class Controller:
    """See the module docstring.

    ``board`` is a ``cryo.board.Board``. ``config``: dict of parameters
    (cryo.protocol.params names plus ``pid.*``/``valve.*``); invalid values
    latch CONFIG and are reported in ``config_errors``. ``log``: a
    cryo.storage.log.TreatmentLog (None: no storage, STORAGE blocks
    treatment). ``audit``: cryo.storage.audit.AuditTrail. ``state``: a
    cryo.storage.safety_state.SafetyState and ``events`` a
    cryo.storage.events.DeviceEventLog — the latches, the site's dose and
    the device's event history that survive a reset (None: not kept).
    ``sensors``/``valve``/``master`` may be injected (tests, other boards).
    ``config_fault``: the fault from ``cryo.storage.config.load`` (1: fell
    back to the last known good file, latched until a service
    acknowledgement; 2: unusable, CONFIG stays active). ``rtc``: callable
    returning (seconds since 2000-01-01, ms) for session headers. ``link``:
    the command channel ``run()`` polls (``attach_link`` when it needs the
    controller first). ``console_locked``: a provisioned device whose
    Ctrl-C stays off (docs/security.md); ``config_key`` its device key,
    which MACs the configuration ``save_config`` writes. ``app``: boot's app selection (``cryo.app``): fault 1
    latches FIRMWARE until a service acknowledgement, 2 keeps it active;
    ``manifest_sha256`` becomes the session header's ``fw_hash``.
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
        console_locked=False,
        config_key=None,
    ):
        self.board = board
        clock = clock if clock is not None else board.clock
        self.clock = clock
        self.link = link
        self.config = config if config is not None else {}
        self.config_key = config_key  # a provisioned device MACs what it saves
        self.settings = st = Settings(config, board.tick_ms, board.watchdog_ms)
        x = st.extra
        now = clock.ticks_ms()

        # Actuators first: both valves closed before anything else can fail.
        self.valve = valve or _cryogen_valve(board, clock, x)
        self.master = master or MasterValve(board.master_pin)
        self.valve.force_closed()
        self.master.close()

        self.il = il = I.Interlock(
            clock,
            self.valve,
            self.master,
            estop=board.estop,
            footswitch=board.footswitch,
            handpiece=board.handpiece,
        )
        self.inputs = Inputs(board, clock, il, st.params, st.calibrations, sensors)
        self.sensors = self.inputs.sensors
        self.regulator = self._regulator(st, clock)
        il.set_config_ok(not st.errors)
        if config_fault is not None:
            st.errors.append(str(config_fault))
            if getattr(config_fault, "code", 2) == 1:
                il.latch(C.CONFIG)
            else:
                il.set_config_ok(False)
        if st.params["require_redundant"] and not self.inputs.fitted(1):
            il.set_config_ok(False)
            st.errors.append("require_redundant is set but the board has no tissue2")

        self.watchdog = Watchdog(board, st.wdt_ms)
        il.set_wdt_armed(self.watchdog.running)
        self.tuning = Tuning(clock, st.period_ms)
        self.log = log
        self.audit = audit
        self.alarms = Alarms(clock, board.buzzer, board.leds)
        # What survives a reset (cryo.core.memory): read before the first tick.
        self.memory = SafetyMemory(state, events, clock)
        reset_name = board.reset_cause()
        got = self.memory.boot(reset_name, now)
        self.wear = ValveWear(self.valve, got["valve_cycles"], board.valve_service_cycles)
        self.journal = Journal(log, audit, il, self.wear, rtc)
        self.site = Site(bool(got["flags"] & SS.FLAG_SITE_FROZEN), board.handpiece is not None)
        self.fw_hash = fw_hash(app)  # the verified manifest's SHA-256
        self.app_fault = 0

        parts = _Parts(self)
        # A locked device keeps Ctrl-C off at all times (main.py): the tick
        # does not switch it back on after a treatment.
        kbd = None if console_locked else getattr(micropython, "kbd_intr", None)
        self.ticker = tk = Tick(parts, self._pressed, kbd)
        self.protocol = tk.protocol
        parts.ticker = tk
        # The commands, published under their names (the link calls them).
        self.operator = op = Operator(parts)
        self.engineer = eng = E.Engineer(parts, op.tune_guard, op.new_site_if_moved)
        for part, names in ((op, OPERATOR_COMMANDS), (eng, E.COMMANDS)):
            for name in names:
                setattr(self, name, getattr(part, name))
        tk.place_limits()
        if self.journal.log_budget():  # said before the room check it explains
            self.journal.note(now, "storage", self.journal.log_budget())
        tk.check_storage(now)
        il.resync(now)

        # Restored latches put the protocol into FAULT before the first tick.
        self._restore(got, reset_name, now)
        if st.errors:
            self.journal.note(now, "config", "; ".join(st.errors))
        self._app_fault(app, now)

        # Hardware beside the loop, from construction on.
        self._isr_ref = self.safety_isr  # pre-bound: an ISR must not allocate it
        self._timer = board.start_safety_timer(st.period_ms, self._isr_ref)
        board.watch_estop(il.estop_isr)

    def _regulator(self, st, clock):
        x = st.extra
        args = (clock, st.period_ms, st.gains(), float(x["pid.d_filter_s"]), float(x["pid.band_c"]))
        try:
            return Regulator(*args, st.bands, BANDS_MAX, st.approach())
        except ValueError as e:
            st.errors.append("pid.bands: %s" % e)
            self.il.set_config_ok(False)
            return Regulator(*args, None, BANDS_MAX, st.approach())

    def _restore(self, got, reset_name, now):
        """Latches and the site's dose read from flash (``SafetyMemory.boot``)."""
        il = self.il
        il.restore(got["latched"], got["dose"])
        j = self.journal
        if got["lost"]:
            # A state that cannot be read must not look like a clean one.
            il.latch(C.CONFIG)
            j.note(now, "memory", "safety state unreadable: CONFIG latched")
        if reset_name == "wdt":
            # The watchdog bit only because the loop stopped (it is fed every
            # healthy tick): the overrun the safety timer latched in RAM just
            # before is lost with the reset, so it is raised again here and
            # recorded by the first tick like any other trip.
            il.latch(C.OVERRUN)
        if got["wdt_in_treatment"]:
            il.latch(C.WATCHDOG)
            j.note(now, "memory", "watchdog reset during a treatment")
        if got["latched"]:
            names = ",".join(C.names(got["latched"]))
            j.note(now, "memory", "restored: %s" % names)
            self.ticker.restored(now, "restored: " + names)
        if self.wear.service_due():
            j.note(
                now,
                "wear",
                "valve service due: %d cycles (limit %d)"
                % (self.wear.lifetime(), self.wear.service_cycles),
            )

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
        self.journal.note(now, "firmware", "app fault %d: %s" % (code, app.get("reason") or "-"))

    # -- read-only views (status, tests) ------------------------------------

    @property
    def params(self):
        return self.settings.params

    @property
    def config_errors(self):
        return self.settings.errors

    @property
    def period_ms(self):
        return self.settings.period_ms

    @property
    def service_requested(self):
        return self.operator.service_requested

    @property
    def service_role(self):
        return self.operator.service_role

    @property
    def reset_requested(self):
        return self.operator.reset_requested

    def _pressed(self, now):
        self.operator.pressed(now)

    @property
    def service_ms(self):
        return self.settings.extra["valve.service_ms"]

    # -- the tick and beside it ----------------------------------------------

    def tick(self, now):
        """One control tick at ``now`` (``cryo.core.tick.Tick.run``)."""
        self.ticker.run(now)

    def idle(self, now):
        """The occasional work at the idle point after a tick."""
        self.ticker.idle(now)

    def service_valve(self, now):
        """Valve sub-tick (integer-only, allocation-free): time-proportioning
        between control ticks, every ``service_ms``. Permit and dead-man
        are checked inside the valve driver, so a sub-tick can only close,
        or open as the last tick allowed; the master valve follows the
        solenoid's pulses where it must (TUNE)."""
        self.ticker.service_valves(now)

    def safe(self):
        """De-energise everything (allocation-free paths of the drivers)."""
        self.ticker.safe()

    def count_overrun(self, late):
        self.ticker.count_overrun(late)

    def run(self, should_stop=None):
        """The loop on hardware until service mode or ``should_stop()``
        (``cryo.core.loop``); always leaves both valves closed."""
        Loop(self).run(should_stop)

    def attach_link(self, link):
        """The command channel ``run()`` polls between ticks (it is built
        with the controller, so it comes after the constructor)."""
        self.link = link

    def safety_isr(self, _timer=None):
        """Hard-timer callback beside the loop (allocation-free): closes both
        valves if the loop missed its heartbeat. Armed at construction
        through ``board.start_safety_timer(period_ms, callback)``; the bound
        method is created once (``_isr_ref``)."""
        self.il.heartbeat_check(self.clock.ticks_ms())

    # -- status ----------------------------------------------------------------

    def status(self):
        """Snapshot for the host (the telemetry fields of cryo.link.messages)."""
        il = self.il
        st = self.settings
        tk = self.ticker
        t = self.inputs.temps
        temps = {}
        i = 0
        while i < len(CHANNELS):
            if self.inputs.fitted(i):
                temps[CHANNELS[i]] = t[i]
            i += 1
        p, ii, d = self.regulator.terms()
        mode = "auto"
        if self.service_requested:
            mode = "service"
        elif self.tuning.mode() is not None:
            mode = self.tuning.mode()
        return {
            "t_ms": tk.last_tick,
            "phase": self.protocol.name,
            "cycle": self.protocol.cycle,
            "setpoint_c": tk.setpoint_c,
            "temps": temps,
            "cj_c": self.inputs.cj_c,
            "demand": tk.demand,
            "valve": self.valve.is_open,
            "master": il.master_open,
            "p": p,
            "i": ii,
            "d": d,
            "faults": C.names(il.active),
            "latched": C.names(il.latched),
            "alarms": C.names(self.alarms.mask),
            "alarm_priority": C.PRIORITY_NAMES[self.alarms.priority],
            "mode": mode,
            "overruns": tk.overruns,
            "site_frozen": self.site.frozen,
            "internal_error": tk.internal_error,
            "gain_band": self.regulator.band(),
            "reason": self.protocol.reason,
            "valve_cycles": self.wear.lifetime(),
            "valve_service_due": self.wear.service_due(),
            # why CONFIG blocks treatment, when it does (one line, bounded)
            "config_error": st.errors[0][:300] if st.errors else None,
            # the log's budget cut to this board's flash at boot (None: not cut)
            "log_budget": self.journal.log_budget(),
        }
