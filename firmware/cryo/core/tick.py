"""One control tick, and what reacts to it: read → interlock → react →
sequence → regulate → valve → alarms, log, watchdog.

``Tick`` holds the parts the tick calls (built by ``cryo.controller``) and
the state only the tick changes (the demand, timing, what was last
signalled). ``run(now)`` is one tick at ``now`` (ms ticks of the injected
clock); ``idle(now)`` the occasional work after it. Order inside a tick,
and why:

1. **read** — ``Inputs.read``: every thermocouple driver polled without
   blocking and classified on raw codes; raw codes, fault bits and the
   supply pressure into the interlock.
2. **interlock** — ``Interlock.evaluate(now)``: integer-only,
   allocation-free; on a trip it de-energises the valve and the master
   valve before it returns.
3. **react** — for newly tripped conditions: the alarm, then the records
   (treatment log and device event log), then the protocol moves to FAULT
   (latched) or ABORTED — valve first, alarm second, log third.
4. **sequence + regulate** — °C for the fresh samples (``Inputs.convert``),
   the footswitch's press (noted; acted on at the idle point), the
   protocol advances (its phase changes go through the
   interlock, which grants or withdraws the permit in the same call), the
   site is tracked; PRECOOL asks for full cooling open-loop, FREEZE runs
   the ``Regulator``, TUNE the running experiment (``Tuning``), every other
   phase asks for nothing.
5. **valve** — ``request`` (float→int once), ``refresh`` the dead-man only
   while a permitted demand exists, ``service`` (integer, permit-gated).
6. **alarms, log sample, watchdog** — the watchdog is fed only when every
   health check passed in this tick; a control-path failure in this tick
   (log, watchdog) is evaluated again so the valves close in this tick.

Any exception escaping steps 1-6 is caught by ``run`` itself: both valves
are de-energised in that tick, the INTERNAL condition latches (service
acknowledgement), the exception's type is logged and the treatment ends.

Occasional work (the log's flash commit, the safety state's write, the
log's room check, re-placing the limits after the cold junction moved)
runs at ``idle(now)``, the planned idle point after the tick, so the
tick's cost stays flat.
"""

from micropython import const

from cryo.core.annunciator import Annunciator
from cryo.interlock import block as B
from cryo.interlock import conditions as C
from cryo.protocol import states as S
from cryo.protocol.protocol import Protocol
from cryo.storage import device_records as D
from cryo.storage import records as R
from cryo.storage import safety_state as SS

_STORAGE_CHECK_MS = const(1000)
# The line (aux) in °C once a second outside PRECOOL: only the display and
# the log use it there; the interlock sees every raw code. The tissue probes
# are converted at every sample: their supervision re-places its rate and
# range limits there, and the skin moves fast.
_AUX_EVERY = const(10)


def _name_id(name):
    """A 24-bit id of an exception type's name for the device event log
    (a record has no room for text; the host maps the ids of the built-in
    exception names back)."""
    h = 0
    for c in name:
        h = (h * 31 + ord(c)) & 0xFFFFFF
    return h


class Tick:
    def __init__(self, parts, on_press, kbd_intr=None):
        """``parts``: the controller's parts (``clock``, ``board``,
        ``settings``, ``inputs``, ``il``, ``valve``, ``master``,
        ``regulator``, ``tuning``, ``journal``, ``memory``, ``site``,
        ``watchdog``, ``alarms``). ``on_press(now)``: the footswitch was
        pressed (the controller decides what it starts). ``kbd_intr``:
        ``micropython.kbd_intr`` where the port has it."""
        self._board = parts.board
        self._settings = parts.settings
        self._inputs = parts.inputs
        self._il = parts.il
        self._valve = parts.valve
        self._master = parts.master
        self._regulator = parts.regulator
        self._tuning = parts.tuning
        self._journal = parts.journal
        self._memory = parts.memory
        self._wear = parts.wear
        self._site = parts.site
        self._watchdog = parts.watchdog
        self._alarms = parts.alarms
        self.clock = parts.clock
        self.period_ms = parts.settings.period_ms
        self.protocol = Protocol(parts.settings.params, parts.clock, parts.il, self._on_phase)
        self._on_press = on_press
        self._kbd = kbd_intr
        now = self.clock.ticks_ms()
        board = parts.board
        self.setpoint_c = parts.settings.params["target_c"]
        self.demand = 0.0
        self.ticks = 0
        self.overruns = 0
        self._overruns_consec = 0
        self.tick_us = 0
        self.max_tick_us = 0
        self._in_loop = False  # under Loop overruns are counted as missed deadlines
        self.last_tick = now
        self._storage_t = now
        self._annunciator = Annunciator(
            parts.il, parts.alarms, parts.journal, board.leds.get("freeze")
        )
        self.internal_error = None  # type name of the last exception caught
        # Held at power-up is not a press: a stuck or held pedal never
        # starts a treatment; it must be released and pressed again.
        self._foot_prev = 1 if board.footswitch is not None and parts.inputs.pedal() else 0
        self._pressed = False  # a press seen by the tick, acted on at idle()
        self._ended = -1  # end phase of a session the tick ended, closed at idle()
        self._ended_t = now

    # -- the tick ----------------------------------------------------------

    def run(self, now):
        """One control tick at ``now``; an exception from any part of it
        closes both valves here, latches INTERNAL and ends the treatment."""
        try:
            self._tick(now)
        except Exception as e:  # noqa: BLE001 - every escape is a fault, handled here
            self._internal_fault(now, e)

    def _tick(self, now):
        clock = self.clock
        t_us = clock.ticks_us()
        il = self._il
        inputs = self._inputs
        # 1. read: raw codes → interlock.
        fresh = inputs.read(now)
        il.set_demand(int(self.demand * 1000))
        il.set_overruns(self._overruns_consec)
        # 2. interlock (safety path): trips close the valves right here.
        il.evaluate(now)
        health = il.health()
        # 3. react: alarm, log, protocol — in that order, after the valves.
        new = il.take_new()
        if new:
            self.on_trip(new, now)
        # 4. °C for the control path (the line/aux channel every tick only
        # in PRECOOL, where it ends the chill-down), then the sequence.
        proto = self.protocol
        if proto.state != S.PRECOOL and self.ticks % _AUX_EVERY:
            fresh &= ~(1 << B.AUX)
        inputs.convert(now, fresh)
        temps = inputs.temps
        self._footswitch()
        tissue = temps[0]
        proto.step(now, tissue, temps[2])
        self._track_site(tissue)
        self._regulate(now, tissue)
        # 5. valve: permit-gated time-proportioning.
        v = self._valve
        v.request(self.demand)
        if il.permit and self.demand > 0.0:
            v.refresh(now)
        self.service_valves(now)
        # 6. alarms, log, watchdog.
        self._annunciator.update(now)
        self._alarms.service(now)
        if self._ended < 0:  # no sample after the treatment ended
            self._journal.sample(
                now, tissue, temps[2], self.setpoint_c, self.demand, v.is_open, proto.state
            )
        if il.healthy():
            why = self._watchdog.feed()
            if why:
                il.set_wdt_ok(False)
                self._journal.note(now, "watchdog", why)
        if il.health() != health:
            il.evaluate(now)
            new = il.take_new()
            if new:
                self.on_trip(new, now)
                self.service_valves(now)
        self.ticks += 1
        self.last_tick = now
        # Tick cost (real clocks). Under run() the loop counts overruns as
        # missed deadlines (tick + link poll + idle work); a runner that
        # calls the tick directly gets them counted here.
        dur = clock.diff(clock.ticks_us(), t_us)
        self.tick_us = dur
        if dur > self.max_tick_us:
            self.max_tick_us = dur
        if not self._in_loop:
            self.count_overrun(dur > self.period_ms * 1000)

    def idle(self, now):
        """Occasional work at the planned idle point after a tick: close a
        session the tick ended, act on a footswitch press (start, begin), commit the log's queued samples, keep the safety state current, check the
        log's room once a second, re-place the limits when the cold
        junction moved. A failure here is a condition the next tick's
        evaluation acts on."""
        if self._ended >= 0:
            # The session summary (a flash write and commit: 36 M
            # instructions on a Cortex-M3) is written here, not in the tick
            # that ended the treatment; before a press can open the next one.
            st = self._ended
            self._ended = -1
            self._journal.end(self._ended_t, st)
        if self._pressed:
            self._pressed = False
            self._on_press(now)  # the controller decides; it never raises
        try:
            self._journal.commit()
            self.remember(now)
            if self.clock.diff(now, self._storage_t) >= _STORAGE_CHECK_MS:
                self.check_storage(now)
            self._inputs.resync(self._settings.params, self.setpoint_c)
        except OSError as e:
            self._il.set_storage_ok(False)
            self._journal.note(now, "storage", "idle work failed: %s" % e)

    def check_storage(self, now):
        """The log's room, and whether the safety memory's last write held:
        latches that cannot be kept across a reset block a treatment too."""
        ok = self._journal.check_room(now, self._settings.params)
        self._il.set_storage_ok(1 if ok and self._memory.healthy() else 0)
        self._storage_t = now

    def restored(self, now, reason):
        """Latches restored at boot: FAULT and their alarm before the first tick."""
        self.protocol.fault(now, reason)
        self._annunciator.update(now)

    def scheduled(self, on):
        """``cryo.core.loop`` runs the ticks: it counts the overruns (missed
        deadlines of tick + link + idle work), not the tick itself."""
        self._in_loop = on

    def count_overrun(self, late):
        """One period's timing: ``late`` counts towards OVERRUN (consecutive)."""
        if late:
            self.overruns += 1
            self._overruns_consec += 1
        else:
            self._overruns_consec = 0

    def service_valves(self, now):
        """The valves' sub-tick (integer-only, allocation-free): the
        solenoid's time-proportioning, then the master valve following it
        where it opens with each pulse (TUNE)."""
        self._master.track(self._valve.service(now))

    def quench(self):
        """Demand nothing and close the valve now (a stop between ticks:
        not at the next tick's demand 0)."""
        self._valve.force_closed()
        self.demand = 0.0

    def safe(self):
        """De-energise everything (allocation-free paths of the drivers)."""
        self._valve.set_permit(False)
        self._valve.force_closed()
        self._master.close()
        self._board.safe_outputs()

    def _internal_fault(self, now, exc):
        """An exception escaped the tick: a firmware defect. Valves first
        (allocation-free paths), then the latch, the alarm and the records;
        each step contained so a second failure cannot skip the next one."""
        self.safe()
        self.demand = 0.0
        name = type(exc).__name__
        self.internal_error = name
        il = self._il
        try:
            il.latch(C.INTERNAL)
            self.on_trip(il.take_new(), now, "internal: " + name)
        except Exception:  # noqa: BLE001 - the valves are closed; keep going
            pass
        try:
            self._memory.record(D.DEV_INTERNAL, 0, _name_id(name), now)
        except Exception:  # noqa: BLE001
            pass
        self.safe()

    # -- the control path --------------------------------------------------

    def _footswitch(self):
        """A press (edge) of the footswitch is noted here and acted on at the
        idle point right after the tick (``idle``): what it starts (the
        self-test, opening the log session) is occasional work that must
        not stretch the tick."""
        if self._board.footswitch is None:
            return
        pressed = 1 if self._inputs.pedal() else 0
        if pressed and not self._foot_prev:
            self._pressed = True
        self._foot_prev = pressed

    def _track_site(self, tissue):
        """The site: frozen until thawed, new once the handpiece rested in
        its holder (cryo.core.site)."""
        par = self._settings.params
        self._site.update(
            tissue,
            (1 << self.protocol.state) & S.COOLING,
            not self._inputs.in_hand(),
            par["thaw_c"],
            int(par["min_thaw_s"] * 1000),
            self.period_ms,
        )

    def _regulate(self, now, tissue):
        st = self.protocol.state
        if not self._il.permit or tissue is None:
            self.demand = 0.0
            self._regulator.reset()
            return
        if st == S.TUNE:
            tu = self._tuning
            self.demand = tu.demand(now, tissue)
            if tu.ended:
                self.protocol.end_tune(now, tu.ended)
        elif st == S.PRECOOL:
            self.demand = 1.0  # open-loop line chill-down
        elif st == S.FREEZE:
            self.demand = self._regulator.demand(now, self.setpoint_c, tissue)
        else:
            self.demand = 0.0

    def set_setpoint(self, sp_c, now):
        if sp_c != self.setpoint_c:
            self.setpoint_c = sp_c
            self.place_limits()
            self._journal.event(now, R.EV_SETPOINT, R.to_cc(sp_c), 0)

    def new_params(self):
        """Parameters changed between treatments: the target is the setpoint
        again and the limits follow."""
        self.setpoint_c = self._settings.params["target_c"]
        self.place_limits()

    def place_limits(self):
        """The interlock's limits for the parameters and setpoint in force."""
        self._inputs.limits(self._settings.params, self.setpoint_c)

    # -- reactions ---------------------------------------------------------

    def on_trip(self, new, now, reason=None):
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
        self._annunciator.alarm_now(now)
        j = self._journal
        j.fault(now, names, S.name(st))
        j.note(now, "trip", "%s in %s" % (reason, S.name(st)))
        i = 0
        while i < C.COUNT:
            if new & (1 << i):
                j.event(now, R.EV_FAULT, i, C.PRIORITY[i])
                self._memory.record(D.DEV_FAULT, i, st, now)
            i += 1
        self._annunciator.update(now)  # the alarm on/off and master valve records, the lamp
        if new & C.LATCHING:
            proto.fault(now, reason)
        elif (1 << st) & (S.TREATING | (1 << S.READY) | (1 << S.SELF_TEST)):
            proto.abort(now, reason)

    def _on_phase(self, prev, state, now, reason):
        j = self._journal
        j.note(
            now,
            "phase",
            "%s -> %s%s" % (S.name(prev), S.name(state), (" (" + reason + ")") if reason else ""),
        )
        j.event(now, R.EV_PHASE, state, prev)
        if prev == S.TUNE and state != S.TUNE:
            # A trip or stop ends the experiment; the interlock closed the valve.
            self._tuning.abort("ended by %s" % S.name(state))
        self._inputs.expect_change((1 << state) & S.COOLING != 0)
        if state == S.FREEZE or state == S.PRECOOL:
            # PRECOOL -> FREEZE: the regulator starts empty (conditional
            # integration: nothing wound up during the open-loop chill-down).
            self.set_setpoint(self._settings.params["target_c"], now)
            self._regulator.reset()
        # Nothing on the serial line may interrupt a running treatment.
        if self._kbd is not None:
            self._kbd(-1 if (1 << state) & S.TREATING else 3)
        if state in (S.DONE, S.ABORTED, S.FAULT) and prev not in (S.IDLE, S.SELF_TEST, S.READY):
            if self._ended < 0:  # the first end names the outcome, as before
                self._ended = state  # closed at the idle point after this tick
                self._ended_t = now

    # -- what survives a reset ---------------------------------------------

    def flags(self):
        f = 0
        if (1 << self.protocol.state) & S.TREATING:
            f |= SS.FLAG_TREATING
        if self._site.frozen:
            f |= SS.FLAG_SITE_FROZEN
        return f

    def remember(self, now):
        """Latches, flags and the site's dose to flash when they changed."""
        il = self._il
        self._memory.update(il.latched, il.dose(), self.flags(), self._wear.lifetime(), now)
