"""Safety interlock: the only grantor of the valve permit.

Every tick the controller hands the interlock raw integer sensor codes
(``record``) and its other inputs through methods (``set_pressure``,
``set_demand``, ``set_storage_ok`` …), then calls ``evaluate(now_ms)``.
``evaluate`` compares raw codes, fault flags, counters and ticks against a
block of integer limits, updates the condition bitmasks, grants or withdraws
``valve.permit`` and, on a trip, de-energises the cryogen valve and the
master valve *before it returns* — the alarm and the log entry follow later
in the same tick, in the control path. ``record``, ``evaluate``,
``heartbeat_check`` and ``estop_isr`` are integer-only and allocation-free
(proved under MicroPython with the heap locked), so they never wait for the
garbage collector and may run from a hard interrupt.

Two independent barriers stand between the dewar and the patient: the
cryogen solenoid (time-proportioned, opened only with the permit) and the
master valve in series, open only while cooling is allowed (PRECOOL, FREEZE,
TUNE with nothing blocking) and closed in THAW, between cycles and the
moment the solenoid is suspected stuck open. Either one closed stops the
flow, so one stuck valve never delivers cryogen on its own (IEC 60601-1
4.7, single-fault condition).

Limits are converted from °C to the sensor's raw codes when they are set (and
again when the cold junction moves), outside the safety path, by
:mod:`cryo.interlock.limits` — the way Klipper and Marlin turn min/max
temperatures into raw ADC limits. The limit block is check-summed; a
corrupted limit in RAM trips CONFIG.

Channels: 0 = tissue (required), 1 = redundant tissue ("tissue2", required
when fitted), 2 = aux (line/nozzle, used by the protocol, not required).
A lower raw code is a colder temperature on every supported converter.
"""

from micropython import const

from cryo.interlock import block as B
from cryo.interlock import conditions as C
from cryo.interlock.cooling import CoolingWatch
from cryo.interlock.stuck import StuckOpenWatch
from cryo.protocol import states as S

_DT_MAX = const(1000)  # bound for the integration step (ms)
_SAT = const(1 << 28)  # integrals saturate here (small int on 32-bit boards)
_MASK24 = const(0xFFFFFF)
_CNT_MAX = const(1000)  # debounce counters saturate here
_EDGE_MASK = const(0xFFFF)  # e-stop edge counter wraps here (a small int)
_RATE_N = const(4)  # the tissue's fall is measured over this many evaluations


class Interlock:
    """Evaluates the conditions and grants the valve permit.

    ``valve`` follows cryo.actuation.valve.SolenoidValve (``permit``,
    ``force_closed()``, ``is_open``); ``master`` has ``open()``/``close()``.
    ``estop`` (normally-closed loop: the inactive level = pressed or wire
    broken), ``footswitch`` and ``handpiece`` are machine.Pin-like inputs
    (or None). Outputs other objects may read: ``active``, ``latched``,
    ``permit``, ``master_open``, ``code``, ``good_t``, ``bad``, ``trips``.
    """

    def __init__(self, clock, valve, master, estop=None, footswitch=None, handpiece=None):
        self._clock = clock
        self._valve = valve
        self._master = master
        self._estop = estop
        self._foot = footswitch
        self._hand = handpiece
        now = clock.ticks_ms()
        self.lim = [0] * B.NL
        self._lim_sum = 0
        # Per-channel inputs (written by record()).
        self.code = [0] * B.NCH
        self.good_t = [now] * B.NCH
        self.bad = [0] * B.NCH
        self.fitted = 1  # bitmask of fitted channels (channel 0 always)
        self.required = 1  # bitmask of channels the interlock requires
        # Other inputs (methods below).
        self._pressure = 0  # raw ADC code of the supply pressure
        self._has_pressure = 0
        self._demand_pm = 0  # PID demand, per mille
        self._overruns = 0  # consecutive overruns reported by the loop
        self._config_ok = 0
        self._storage_ok = 0
        self._wdt_ok = 1
        self._wdt_armed = 0
        self._fw_ok = 1
        self._estop_edges = 0  # written only by estop_isr
        self._estop_seen = 0
        self.corrupt = 0  # the limit block failed its checksum (RAM corruption)
        # Outputs.
        self.active = 0  # conditions true now
        self.latched = 0  # latching conditions not yet acknowledged
        self._new = 0  # conditions that tripped since the controller last took them
        self.permit = False
        self.master_open = False
        self.trips = 0
        # Phase bookkeeping.
        self.phase = S.IDLE
        self.phase_t0 = now
        self.reached = 0  # FREEZE: target reached (set by the protocol)
        self.reached_t = now
        self._last = now
        self._dose = 0  # cold dose of the current treatment site
        self._flow_ms = 0  # valve-open time in this FREEZE before the target
        self._cooling = CoolingWatch(clock)
        self._stuck = StuckOpenWatch(clock)
        self._hist = [0] * _RATE_N  # last tissue codes and their times, a ring
        self._hist_t = [now] * _RATE_N
        self._hist_i = 0
        self._hist_n = 0
        self._p_bad = 0
        self._dis_bad = 0
        self._valve.set_permit(False)

    # ------------------------------------------------------------ limits
    def _sum(self):
        lim = self.lim
        s = 0
        i = 0
        while i < B.NL:
            s = ((s << 1) ^ (s >> 23) ^ (lim[i] & _MASK24)) & _MASK24
            i += 1
        return s

    def load_limits(self, values):
        """Install a full limit block (control path; ints only) and its checksum."""
        if len(values) != B.NL:
            raise ValueError("limit block needs %d ints, got %d" % (B.NL, len(values)))
        i = 0
        while i < B.NL:
            v = values[i]
            if not isinstance(v, int):
                raise ValueError("limit %d must be an int raw value, got %r" % (i, v))
            self.lim[i] = v
            i += 1
        self._lim_sum = self._sum()
        self.corrupt = 0

    # ------------------------------------------------------------ inputs
    def fit(self, fitted, has_pressure):
        """Which channels are fitted (bitmask; tissue2 becomes required) and
        whether a supply pressure sensor is (construction)."""
        self.fitted = fitted | 1
        self.required = self.fitted & ((1 << B.TISSUE) | (1 << B.TISSUE2))
        self._has_pressure = 1 if has_pressure else 0

    def record(self, ch, code, faults, now):
        """One sample of channel ``ch``: raw code and fault flags (0 = ok).

        A good sample refreshes the channel; bad ones are counted so a single
        glitch does not trip (Klipper: 3-4 reads before a sensor shutdown).
        """
        if faults == 0:
            self.code[ch] = code
            self.good_t[ch] = now
            self.bad[ch] = 0
        elif self.bad[ch] < _CNT_MAX:
            self.bad[ch] += 1

    def set_pressure(self, code):
        """Raw ADC code of the supply pressure (this tick)."""
        self._pressure = code

    def set_demand(self, per_mille):
        """The regulator's demand for this tick, per mille (0..1000)."""
        self._demand_pm = per_mille

    def set_overruns(self, consecutive):
        """Consecutive overrun count from the loop (0 after an on-time tick)."""
        self._overruns = consecutive

    def set_config_ok(self, ok):
        self._config_ok = 1 if ok else 0

    def set_storage_ok(self, ok):
        self._storage_ok = 1 if ok else 0

    def set_wdt_ok(self, ok):
        self._wdt_ok = 1 if ok else 0

    def set_wdt_armed(self, armed):
        """The hardware watchdog runs: only then may a valve open (when required)."""
        self._wdt_armed = 1 if armed else 0

    def set_fw_ok(self, ok):
        self._fw_ok = 1 if ok else 0

    def health(self):
        """(storage_ok, wdt_ok, config_ok) as ints: the control path compares
        them before and after its own work in a tick."""
        return self._storage_ok, self._wdt_ok, self._config_ok

    def storage_ok(self):
        return self._storage_ok

    def wdt_armed(self):
        return self._wdt_armed

    def latch(self, code):
        """Raise condition ``code`` from the control path (a latched fault
        found outside ``evaluate``: configuration fallback, firmware
        fallback, an exception in the tick). The valves close now."""
        bit = 1 << code
        if not ((self.active | self.latched) & bit):
            self._new |= bit
            self.trips += 1
        self.latched |= bit
        self._apply(self.active)

    def restore(self, latched, dose):
        """At boot: the latched conditions and the site's cold dose kept on
        flash (cryo.storage.safety_state). Restored latches are not new
        trips (they were alarmed and logged before the reset)."""
        self.latched |= latched & C.LATCHING
        self._dose = dose if 0 <= dose < _SAT else _SAT
        self._apply(self.active)

    def dose(self):
        """Cold dose of the current site, (code >> B.L_Q) * ms."""
        return self._dose

    def new_site(self):
        """The operator moved to a new treatment site: its dose starts at 0."""
        self._dose = 0

    def estop_isr(self, _pin=None):
        """Pin interrupt on the e-stop loop opening (hard IRQ, allocation-free):
        counts the edge; the next ``evaluate`` trips ESTOP however short the
        opening was. A counter, not a flag, so an edge that arrives while
        ``evaluate`` reads it is never lost."""
        self._estop_edges = (self._estop_edges + 1) & _EDGE_MASK

    def set_phase(self, phase, now):
        """Protocol phase change (allocation-free). Starts the watch on
        entering PRECOOL/FREEZE (a setpoint decrease) and the valve-open
        budget of a FREEZE."""
        prev = self.phase
        self.phase = phase
        self.phase_t0 = now
        self.reached = 0
        if (phase == S.PRECOOL or phase == S.TUNE) and prev != phase:
            self._cooling.restart_integral()
        if phase == S.PRECOOL or phase == S.FREEZE:
            self.watch_start(now)
            self._flow_ms = 0
        self._apply(self.active)  # leaving a cooling phase closes both valves now

    def mark_reached(self, now):
        """The protocol saw the target reached: the hold timer starts."""
        if not self.reached:
            self.reached = 1
            self.reached_t = now

    def watch_start(self, now):
        """Watch after a setpoint decrease (cryo.interlock.cooling)."""
        self._cooling.start(self.code[B.TISSUE], self.lim, now)

    def resync(self, now):
        """Restart the liveness timers (before the first tick of a loop)."""
        self._last = now
        self.phase_t0 = now
        self._stuck.reset()
        i = 0
        while i < B.NCH:
            self.good_t[i] = now
            i += 1

    # ------------------------------------------------------------ the check
    def evaluate(self, now):
        """Evaluate every condition, grant/withdraw the permit, and on a trip
        de-energise both valves immediately. Returns the active mask."""
        dt = self._clock.diff(now, self._last)
        act = 0
        if dt > self.lim[B.L_HEARTBEAT_MS]:
            act = 1 << C.OVERRUN
        if dt < 0:
            dt = 0
        elif dt > _DT_MAX:
            dt = _DT_MAX
        self._last = now
        ph = self.phase
        act |= self._integrity()
        act |= self._sensors(now)
        act |= self._treatment(now, ph, dt)
        aux_live = self._aux_live(now)
        if ph == S.PRECOOL or ph == S.FREEZE:
            act |= self._cooling.check(
                now,
                ph,
                dt,
                self.lim,
                self.code,
                aux_live,
                self._demand_pm,
                self.phase_t0,
                self._pressure if self._has_pressure else -1,
            )
        act |= self._supply(ph)
        # Commanded closed = a zero demand (the valve's sub-ticks then never
        # open it); a sample of ``is_open`` at the tick would miss pulses.
        closed = self._demand_pm == 0 and not self._valve.is_open
        if self._stuck.check(now, self.lim, self.code, aux_live, closed, self.master_open):
            act |= 1 << C.STUCK_OPEN
        if (
            act & (1 << C.OVERCOOL)
            and self.master_open
            and self._demand_pm < self.lim[B.L_DUTY_FULL]
        ):
            # Past (or about to pass) the floor while the regulator asked for
            # less than full cooling: cryogen arrived that nobody commanded
            # (or both probes read cold). The floor trip closes the master
            # before the stuck-open watch could see it; the valve must be
            # inspected before the next treatment, not just acknowledged.
            act |= 1 << C.STUCK_OPEN
        act |= self._inputs(ph)
        return self._apply(act)

    def _integrity(self):
        act = 0
        if self._sum() != self._lim_sum:
            self.corrupt = 1
            act |= 1 << C.CONFIG
        elif not self._config_ok:
            act |= 1 << C.CONFIG
        if not self._fw_ok:
            act |= 1 << C.FIRMWARE
        if self._overruns >= self.lim[B.L_OVERRUNS]:
            act |= 1 << C.OVERRUN
        if not self._wdt_ok:
            act |= 1 << C.WATCHDOG
        if not self._storage_ok:
            act |= 1 << C.STORAGE
        return act

    def _sensors(self, now):
        """Debounced fault flags and staleness of the required channels, the
        hard floor on every tissue channel (no debounce: over-freeze is
        immediate) and the redundant channels' agreement (debounced)."""
        lim = self.lim
        code = self.code
        act = 0
        req = self.required
        stale = lim[B.L_STALE_MS]
        ch = 0
        while ch < B.NCH:
            if self._clock.diff(now, self.good_t[ch]) > stale:
                # Age the last good sample: after half the tick period (6.2
                # days on a 32-bit board) ``diff`` would wrap and a channel
                # dead that long would look fresh again.
                self.good_t[ch] = self._clock.add(now, -stale - 1)
                if req & (1 << ch):
                    act |= 1 << C.SENSOR
            elif req & (1 << ch) and self.bad[ch] >= lim[B.L_DEBOUNCE]:
                act |= 1 << C.SENSOR
            ch += 1
        c0 = code[B.TISSUE]
        two = self.fitted & (1 << B.TISSUE2)
        if c0 < lim[B.L_FLOOR0] or (two and code[B.TISSUE2] < lim[B.L_FLOOR1]):
            act |= 1 << C.OVERCOOL
        elif (
            self.master_open
            and self._demand_pm < lim[B.L_DUTY_FULL]
            and self._ahead(now, c0) < lim[B.L_FLOOR0]
        ):
            # Where the tissue will be once the cryogen already in the line
            # and the probe's lag have caught up: a fast fall the regulator
            # is not asking for (a valve that does not close) trips before
            # the surface passes the floor, not after. At full demand the
            # fall is the one commanded and the regulator turns it round
            # long before the floor (the target is at least floor_margin_c
            # above it).
            act |= 1 << C.OVERCOOL
        if two:
            exp = lim[B.L_DIS_B] + ((lim[B.L_DIS_M] * c0) >> lim[B.L_DIS_SHIFT])
            d = code[B.TISSUE2] - exp
            if d < 0:
                d = -d
            if d > lim[B.L_DIS_MAX]:
                if self._dis_bad < _CNT_MAX:
                    self._dis_bad += 1
            else:
                self._dis_bad = 0
            if self._dis_bad >= lim[B.L_DEBOUNCE]:
                act |= 1 << C.DISAGREE
        return act

    def _ahead(self, now, c0):
        """The tissue code ``B.L_LEAD_MS`` ahead at its present rate of fall
        (measured over the last ``_RATE_N`` evaluations; a rise counts as
        no fall). Integer-only."""
        i = self._hist_i
        old = self._hist[i]
        span = self._clock.diff(now, self._hist_t[i])
        self._hist[i] = c0
        self._hist_t[i] = now
        self._hist_i = i + 1 if i + 1 < _RATE_N else 0
        if self._hist_n < _RATE_N:
            self._hist_n += 1
            return c0
        fall = old - c0
        if fall <= 0 or span <= 0 or span > 1000:
            return c0
        return c0 - (fall * self.lim[B.L_LEAD_MS]) // span

    def _treatment(self, now, ph, dt):
        """Hard treatment limits: freeze and tune time, the site's cold dose,
        and the valve-open budget of a FREEZE before its target."""
        clock = self._clock
        lim = self.lim
        act = 0
        if ph == S.TUNE and clock.diff(now, self.phase_t0) > lim[B.L_TUNE_MS]:
            act |= 1 << C.FREEZE_TIME
        if ph == S.FREEZE:
            if clock.diff(now, self.phase_t0) > lim[B.L_APPROACH_MS]:
                act |= 1 << C.FREEZE_TIME
            elif self.reached and clock.diff(now, self.reached_t) > lim[B.L_FREEZE_MAX_MS]:
                act |= 1 << C.FREEZE_TIME
            # Cryogen keeps flowing and the tissue reading does not reach
            # the target: beyond the valve-open time the plant needs to get
            # there, the reading cannot be trusted (both probes drifting
            # warm together, a probe off the skin) while the real tissue
            # under the spray keeps freezing. The demand is what the valve
            # delivered since the last tick (its sub-ticks time-proportion
            # it), so demand x dt is the valve-open time (dt <= 1000,
            # demand <= 1000: a small int).
            if not self.reached:
                if self.permit and self._flow_ms < _SAT:
                    self._flow_ms += (dt * self._demand_pm) // 1000
                if self._flow_ms > lim[B.L_FLOW_MAX_MS]:
                    act |= 1 << C.EXCESS_FLOW
        if ph == S.PRECOOL or ph == S.FREEZE or ph == S.THAW or ph == S.TUNE:
            c0 = self.code[B.TISSUE]
            if c0 < lim[B.L_DOSE_THR] and self._dose < _SAT:
                self._dose += ((lim[B.L_DOSE_THR] - c0) >> lim[B.L_Q]) * dt
            if self._dose > lim[B.L_DOSE_MAX]:
                act |= 1 << C.DOSE
        return act

    def _supply(self, ph):
        """Supply pressure window (any phase: also blocks a start)."""
        if not self._has_pressure:
            return 0
        lim = self.lim
        p = self._pressure
        if p < lim[B.L_P_MIN] or p > lim[B.L_P_MAX]:
            if self._p_bad < _CNT_MAX:
                self._p_bad += 1
        else:
            self._p_bad = 0
        return (1 << C.PRESSURE) if self._p_bad >= lim[B.L_DEBOUNCE] else 0

    def _aux_live(self, now):
        return (
            self.fitted & (1 << B.AUX)
            and self._clock.diff(now, self.good_t[B.AUX]) <= self.lim[B.L_STALE_MS]
        )

    def _inputs(self, ph):
        """Operator inputs: the e-stop's NC loop (open now, or opened since
        the last evaluation however briefly: ``estop_isr``), and the
        hold-to-run footswitch and handpiece during a treatment."""
        lim = self.lim
        act = 0
        e = self._estop_edges
        if e != self._estop_seen:
            self._estop_seen = e
            act |= 1 << C.ESTOP
        if self._estop is not None and self._estop.value() != lim[B.L_ESTOP_OK]:
            act |= 1 << C.ESTOP
        if (1 << ph) & S.TREATING:
            foot = self._foot
            hand = self._hand
            if (foot is not None and foot.value() != lim[B.L_FOOT_PRESSED]) or (
                hand is not None and hand.value() != lim[B.L_HAND_HELD]
            ):
                act |= 1 << C.RELEASED
        return act

    def _apply(self, act):
        """Grant or withdraw the permit for ``act``; trip reaction first."""
        newly = act & ~self.active & ~self.latched
        self.active = act
        self.latched |= act & C.LATCHING
        blocking = act | self.latched
        bit = 1 << self.phase
        cooling = not blocking and bit & S.COOLING
        if cooling and self.lim[B.L_NEED_WDT] and not self._wdt_armed:
            cooling = 0  # no valve before the hardware watchdog runs
        if cooling:
            self.permit = True
            self._valve.set_permit(True)
        else:
            self.permit = False
            self._valve.set_permit(False)
            self._valve.force_closed()
        if not cooling:
            if self.master_open or newly:
                self._master.close()
                self.master_open = False
        elif not self.master_open:
            self._master.open()
            self.master_open = True
        if newly:
            self._new |= newly
            self.trips += 1
        return act

    def heartbeat_check(self, now):
        """For a hard timer interrupt beside the loop: if the loop has not
        evaluated within the heartbeat, close both valves and latch OVERRUN
        (Klipper's missed-scheduling shutdown). Allocation-free."""
        if self._clock.diff(now, self._last) > self.lim[B.L_HEARTBEAT_MS]:
            self._valve.set_permit(False)
            self._valve.force_closed()
            self._master.close()
            self.master_open = False
            self.permit = False
            if not (self.latched & (1 << C.OVERRUN)):
                self._new |= 1 << C.OVERRUN
                self.active |= 1 << C.OVERRUN
                self.latched |= 1 << C.OVERRUN
            return True
        return False

    def take_new(self):
        """Conditions tripped since the last call (control path: alarm, log)."""
        n = self._new
        self._new = 0
        return n

    def blocking(self):
        return self.active | self.latched

    def healthy(self):
        """True when every health check passes: only then is the WDT fed."""
        return not ((self.active | self.latched) & C.HEALTH) and not self.corrupt

    def acknowledge(self, role_level):
        """Clear latched conditions whose cause is gone. ``role_level``:
        1 operator, 2 engineer, 3 service. Returns (cleared, still_latched)."""
        clearable = self.latched & ~self.active
        if role_level < 3:
            clearable &= ~C.SERVICE_ACK
        self.latched &= ~clearable
        return clearable, self.latched
