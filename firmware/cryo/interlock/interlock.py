"""Safety interlock: the only grantor of the valve permit.

Every tick the controller hands the interlock raw integer sensor codes
(``record``), then calls ``evaluate(now_ms)``. ``evaluate`` compares raw
codes, fault flags, counters and ticks against a block of integer limits,
updates the condition bitmasks, grants or withdraws ``valve.permit`` and, on
a trip, de-energises the cryogen valve and the master valve *before it
returns* — the alarm and the log entry follow later in the same tick, in the
control path. The whole of ``record``/``evaluate``/``heartbeat_check`` is
integer-only and allocation-free (``assert_no_alloc`` under MicroPython), so
it never waits for the garbage collector and may run from a hard timer ISR.

Limits are converted from °C to the sensor's raw codes when they are set (and
again when the cold junction moves), outside the safety path, by
:mod:`cryo.interlock.limits` — the way Klipper and Marlin turn min/max
temperatures into raw ADC limits (control.md §1.4, §2). The limit block is
check-summed; a corrupted limit in RAM trips CONFIG.

Channels: 0 = tissue (required), 1 = redundant tissue ("tissue2", required
when fitted), 2 = aux (line/nozzle, used by the protocol, not required).
A lower raw code is a colder temperature on every supported converter.
"""

from micropython import const

from cryo.interlock import conditions as C
from cryo.protocol import states as S

TISSUE = const(0)
TISSUE2 = const(1)
AUX = const(2)
NCH = const(3)

# Limit block indices (all ints; see limits.py for units and conversion).
L_FLOOR0 = const(0)  # hard floor, raw code, channel 0
L_FLOOR1 = const(1)  # hard floor, raw code, channel 1
L_DOSE_THR = const(2)  # dose threshold, raw code, channel 0
L_DOSE_MAX = const(3)  # dose limit, (code >> L_Q) * ms
L_SP = const(4)  # active setpoint, raw code, channel 0
L_HYST = const(5)  # failure-to-cool band above setpoint, codes
L_NOCOOL_MAX = const(6)  # failure-to-cool integral limit, (code >> L_Q) * ms
L_WATCH_DROP = const(7)  # watch: drop required, codes
L_WATCH_MS = const(8)  # watch: within this time, ms
L_PRECOOL_MS = const(9)  # pre-cool timeout, ms
L_FREEZE_MAX_MS = const(10)  # hard maximum of the hold at target in one FREEZE, ms
L_DIS_M = const(11)  # channel-1 code ≈ B + (M * code0 >> L_DIS_SHIFT)
L_DIS_B = const(12)
L_DIS_MAX = const(13)  # disagreement limit, codes of channel 1
L_STUCK_DROP = const(14)  # stuck open: drop over the window, codes
L_STUCK_MS = const(15)  # stuck open: window, ms
L_STUCK_GRACE_MS = const(16)  # stuck open: after closing, ignore this long (dead time + lag)
L_DEPL_DROP = const(17)  # depletion: minimum drop at full duty over the window, codes
L_DEPL_MS = const(18)  # depletion window, ms
L_P_MIN = const(19)  # supply pressure window, raw ADC
L_P_MAX = const(20)
L_P_LOW = const(21)  # below this while cooling: depleted, raw ADC
L_STALE_MS = const(22)  # no good sample for this long: stale
L_DEBOUNCE = const(23)  # consecutive bad samples / out-of-range readings to trip
L_HEARTBEAT_MS = const(24)  # gap between evaluations that counts as a missed heartbeat
L_OVERRUNS = const(25)  # consecutive overruns that trip
L_DUTY_FULL = const(26)  # demand (per mille) counted as "full duty"
L_FOOT_PRESSED = const(27)  # pin level of a pressed footswitch / held handpiece
L_DIS_SHIFT = const(28)  # fixed-point shift of L_DIS_M (chosen so the product stays a small int)
L_Q = const(29)  # channel-0 codes are shifted right by this before integrating (~4 codes/°C)
L_APPROACH_MS = const(30)  # hard maximum of a whole FREEZE phase (approach + hold), ms
L_ZONE_HI = const(31)  # latent-heat zone (raw code, channel 0): a plateau here is
L_ZONE_LO = const(32)  # the phase change, not depletion
L_DEPL_AUX = const(33)  # line (aux, raw code) warmer than this at full duty: no liquid
L_HAND_HELD = const(34)  # pin level of a handpiece in use
L_ESTOP_OK = const(35)  # pin level of a closed (not pressed, not broken) e-stop loop
L_TUNE_MS = const(36)  # hard maximum of a TUNE phase (autotune / step test), ms
NL = const(37)

_DT_MAX = const(1000)  # bound for the integration step (ms)
_SAT = const(1 << 28)  # integrals saturate here (small int on 32-bit boards)
_MASK24 = const(0xFFFFFF)


class Interlock:
    """Evaluates the conditions and grants the valve permit.

    ``valve`` follows cryo.actuation.valve.SolenoidValve (``permit``,
    ``force_closed()``, ``is_open``); ``master`` has ``open()``/``close()``.
    ``estop`` (normally-closed loop: 0 = pressed or wire broken),
    ``footswitch`` and ``handpiece`` are machine.Pin-like inputs (or None).
    """

    def __init__(self, clock, valve, master, estop=None, footswitch=None, handpiece=None):
        self._clock = clock
        self._valve = valve
        self._master = master
        self._estop = estop
        self._foot = footswitch
        self._hand = handpiece
        now = clock.ticks_ms()
        self.lim = [0] * NL
        self._lim_sum = 0
        # Per-channel inputs (written by record()).
        self.code = [0] * NCH
        self.good_t = [now] * NCH
        self.bad = [0] * NCH
        self.fitted = 1  # bitmask of fitted channels (channel 0 always)
        self.required = 1  # bitmask of channels the interlock requires
        # Other inputs, written by the controller each tick.
        self.pressure = 0  # raw ADC code of the supply pressure
        self.has_pressure = 0
        self.demand_pm = 0  # PID demand, per mille
        self.overruns_consec = 0
        self.config_ok = 0  # set by the controller once the config validated
        self.corrupt = 0  # the limit block failed its checksum (RAM corruption)
        self.storage_ok = 0
        self.wdt_ok = 1
        self.fw_ok = 1  # 0: boot found no authentic app (cryo.app FAULT_NO_APP)
        # Outputs.
        self.active = 0  # conditions true now
        self.latched = 0  # latching conditions not yet acknowledged
        self.new = 0  # conditions that tripped since the controller last took them
        self.permit = False
        self.master_open = False
        self.trips = 0
        # Phase bookkeeping.
        self.phase = S.IDLE
        self.phase_t0 = now
        self.reached = 0  # FREEZE: target reached (set by the protocol)
        self.reached_t = now
        self._last = now
        self._dose = 0
        self._nocool = 0
        self._watching = 0
        self._watch_goal = 0
        self._watch_t = now
        self._closed_t0 = now
        self._was_open = 0
        self._stuck_ref_ok = 0
        self._stuck_ref = 0
        self._stuck_t = now
        self._full_ok = 0
        self._full_ref = 0
        self._full_t = now
        self._p_bad = 0
        self._p_low = 0
        self._dis_bad = 0
        self._valve.permit = False

    # ------------------------------------------------------------ limits
    def _sum(self):
        lim = self.lim
        s = 0
        i = 0
        while i < NL:
            s = ((s << 1) ^ (s >> 23) ^ (lim[i] & _MASK24)) & _MASK24
            i += 1
        return s

    def load_limits(self, values):
        """Install a full limit block (control path; ints only) and its checksum."""
        if len(values) != NL:
            raise ValueError("limit block needs %d ints, got %d" % (NL, len(values)))
        i = 0
        while i < NL:
            v = values[i]
            if not isinstance(v, int):
                raise ValueError("limit %d must be an int raw value, got %r" % (i, v))
            self.lim[i] = v
            i += 1
        self._lim_sum = self._sum()
        self.corrupt = 0

    def set_limit(self, index, value):
        """Change one limit (e.g. the setpoint code) and re-seal the block."""
        self.lim[index] = value
        self._lim_sum = self._sum()
        self.corrupt = 0

    # ------------------------------------------------------------ inputs
    def record(self, ch, code, faults, now):
        """One sample of channel ``ch``: raw code and fault flags (0 = ok).

        A good sample refreshes the channel; bad ones are counted so a single
        glitch does not trip (Klipper: 3-4 reads, control.md §1.4).
        """
        if faults == 0:
            self.code[ch] = code
            self.good_t[ch] = now
            self.bad[ch] = 0
        elif self.bad[ch] < 1000:
            self.bad[ch] += 1

    def set_phase(self, phase, now):
        """Protocol phase change (allocation-free). Starts the watch on
        entering PRECOOL/FREEZE (a setpoint decrease) and resets the dose at
        the start of a treatment."""
        prev = self.phase
        self.phase = phase
        self.phase_t0 = now
        self.reached = 0
        if (phase == S.PRECOOL or phase == S.TUNE) and prev != phase:
            self._dose = 0  # a new treatment (or tuning run) starts its own dose
            self._nocool = 0
        if phase == S.PRECOOL or phase == S.FREEZE:
            self.watch_start(now)
        self._full_ok = 0
        self._apply(self.active)  # leaving a cooling phase closes the valve now

    def mark_reached(self, now):
        """The protocol saw the target reached: the hold timer starts."""
        if not self.reached:
            self.reached = 1
            self.reached_t = now

    def watch_start(self, now):
        """Watch after a setpoint decrease (Marlin WATCH_COOLER, control.md §2):
        the tissue must fall by L_WATCH_DROP within L_WATCH_MS, repeatedly,
        until it is inside the band above the setpoint."""
        self._watching = 1
        self._watch_goal = self.code[TISSUE] - self.lim[L_WATCH_DROP]
        self._watch_t = now

    def resync(self, now):
        """Restart the liveness timers (before the first tick of a loop)."""
        self._last = now
        self.phase_t0 = now
        i = 0
        while i < NCH:
            self.good_t[i] = now
            i += 1

    # ------------------------------------------------------------ the check
    def _level(self, pin, want):
        if pin is None:
            return True
        return pin.value() == want

    def evaluate(self, now):
        """Evaluate every condition, grant/withdraw the permit, and on a trip
        de-energise both valves immediately. Returns the active mask."""
        clock = self._clock
        lim = self.lim
        code = self.code
        ph = self.phase
        act = 0
        dt = clock.diff(now, self._last)
        if dt > lim[L_HEARTBEAT_MS]:
            act |= 1 << C.OVERRUN
        if dt < 0:
            dt = 0
        elif dt > _DT_MAX:
            dt = _DT_MAX
        self._last = now
        cooling_phase = ph == S.PRECOOL or ph == S.FREEZE
        treating = cooling_phase or ph == S.THAW or ph == S.TUNE

        # Configuration and limit block integrity.
        if self._sum() != self._lim_sum:
            self.corrupt = 1
            act |= 1 << C.CONFIG
        elif not self.config_ok:
            act |= 1 << C.CONFIG
        if not self.fw_ok:
            act |= 1 << C.FIRMWARE

        # Sensors: debounced fault flags and staleness of required channels.
        req = self.required
        ch = 0
        while ch < NCH:
            if req & (1 << ch):
                if self.bad[ch] >= lim[L_DEBOUNCE]:
                    act |= 1 << C.SENSOR
                elif clock.diff(now, self.good_t[ch]) > lim[L_STALE_MS]:
                    act |= 1 << C.SENSOR
            ch += 1
        c0 = code[TISSUE]
        two = self.fitted & (1 << TISSUE2)

        # Hard floor on every tissue channel (no debounce: over-freeze is immediate).
        if c0 < lim[L_FLOOR0] or (two and code[TISSUE2] < lim[L_FLOOR1]):
            act |= 1 << C.OVERCOOL

        # Redundant tissue sensors disagreeing (debounced).
        if two:
            exp = lim[L_DIS_B] + ((lim[L_DIS_M] * c0) >> lim[L_DIS_SHIFT])
            d = code[TISSUE2] - exp
            if d < 0:
                d = -d
            if d > lim[L_DIS_MAX]:
                if self._dis_bad < 1000:
                    self._dis_bad += 1
            else:
                self._dis_bad = 0
            if self._dis_bad >= lim[L_DEBOUNCE]:
                act |= 1 << C.DISAGREE

        # Treatment limits: freeze time and cumulative cold dose.
        if ph == S.TUNE and clock.diff(now, self.phase_t0) > lim[L_TUNE_MS]:
            act |= 1 << C.FREEZE_TIME
        if ph == S.FREEZE:
            if clock.diff(now, self.phase_t0) > lim[L_APPROACH_MS]:
                act |= 1 << C.FREEZE_TIME
            elif self.reached and clock.diff(now, self.reached_t) > lim[L_FREEZE_MAX_MS]:
                act |= 1 << C.FREEZE_TIME
        q = lim[L_Q]
        if treating:
            if c0 < lim[L_DOSE_THR] and self._dose < _SAT:
                self._dose += ((lim[L_DOSE_THR] - c0) >> q) * dt
            if self._dose > lim[L_DOSE_MAX]:
                act |= 1 << C.DOSE

        band = lim[L_SP] + lim[L_HYST]
        if cooling_phase:
            # Failure to cool: watch after a setpoint decrease, then the
            # integrated error above SP+hyst while cooling is demanded.
            if self._watching:
                if c0 <= band:
                    self._watching = 0
                    self._nocool = 0
                elif c0 <= self._watch_goal:
                    self._watch_goal = c0 - lim[L_WATCH_DROP]
                    self._watch_t = now
                elif (
                    lim[L_ZONE_LO] < c0 < lim[L_ZONE_HI]
                    and self.fitted & (1 << AUX)
                    and code[AUX] < lim[L_DEPL_AUX]
                    and clock.diff(now, self.good_t[AUX]) <= lim[L_STALE_MS]
                ):
                    # Latent-heat plateau while the line delivers liquid:
                    # the tissue is freezing, not failing to cool. The
                    # whole phase stays bounded by FREEZE_TIME (approach).
                    self._watch_t = now
                elif clock.diff(now, self._watch_t) > lim[L_WATCH_MS]:
                    act |= 1 << C.NO_COOL
            elif c0 > band:
                if self.demand_pm > 0 and self._nocool < _SAT:
                    self._nocool += ((c0 - band) >> q) * dt
            else:
                self._nocool = 0
            if self._nocool > lim[L_NOCOOL_MAX]:
                act |= 1 << C.NO_COOL
            if ph == S.PRECOOL and clock.diff(now, self.phase_t0) > lim[L_PRECOOL_MS]:
                act |= 1 << C.NO_COOL
            # Depletion (control.md §7 item 15): at full duty for a whole
            # window the tissue did not fall while above the band and outside
            # the latent-heat zone (a plateau at the freezing point is the
            # phase change, not an empty dewar); or low supply pressure. A
            # line (aux) still warm at full duty is failure to cool.
            if self.demand_pm >= lim[L_DUTY_FULL]:
                if not self._full_ok:
                    self._full_ok = 1
                    self._full_ref = c0
                    self._full_t = now
                elif clock.diff(now, self._full_t) >= lim[L_DEPL_MS]:
                    if c0 > band and self._full_ref - c0 < lim[L_DEPL_DROP]:
                        if c0 > lim[L_ZONE_HI] or c0 < lim[L_ZONE_LO]:
                            act |= 1 << C.DEPLETED
                    if self.fitted & (1 << AUX) and code[AUX] > lim[L_DEPL_AUX]:
                        if clock.diff(now, self.good_t[AUX]) <= lim[L_STALE_MS]:
                            # No liquid at the nozzle although cooling is
                            # demanded: valve stuck closed or line blocked
                            # (an empty dewar shows as low pressure below).
                            act |= 1 << C.NO_COOL
                    self._full_ref = c0
                    self._full_t = now
            else:
                self._full_ok = 0
            if self.has_pressure and self.pressure < lim[L_P_LOW]:
                if self._p_low < 1000:
                    self._p_low += 1
            else:
                self._p_low = 0
            if self._p_low >= lim[L_DEBOUNCE]:
                act |= 1 << C.DEPLETED

        # Supply pressure window (any phase: also blocks a start).
        if self.has_pressure:
            p = self.pressure
            if p < lim[L_P_MIN] or p > lim[L_P_MAX]:
                if self._p_bad < 1000:
                    self._p_bad += 1
            else:
                self._p_bad = 0
            if self._p_bad >= lim[L_DEBOUNCE]:
                act |= 1 << C.PRESSURE

        # Valve stuck open: commanded closed, yet the tissue keeps falling fast.
        if self._valve.is_open:
            self._was_open = 1
            self._stuck_ref_ok = 0
        else:
            if self._was_open:
                self._was_open = 0
                self._closed_t0 = now
                self._stuck_ref_ok = 0
            if not self._stuck_ref_ok:
                if clock.diff(now, self._closed_t0) >= lim[L_STUCK_GRACE_MS]:
                    self._stuck_ref_ok = 1
                    self._stuck_ref = c0
                    self._stuck_t = now
            elif clock.diff(now, self._stuck_t) >= lim[L_STUCK_MS]:
                if self._stuck_ref - c0 >= lim[L_STUCK_DROP]:
                    act |= 1 << C.STUCK_OPEN
                self._stuck_ref = c0
                self._stuck_t = now

        # Operator inputs: e-stop NC loop (0 = pressed or broken wire), and
        # the hold-to-run footswitch and handpiece during a treatment.
        if self._estop is not None and self._estop.value() != lim[L_ESTOP_OK]:
            act |= 1 << C.ESTOP
        if treating and not (
            self._level(self._foot, lim[L_FOOT_PRESSED])
            and self._level(self._hand, lim[L_HAND_HELD])
        ):
            act |= 1 << C.RELEASED

        # Liveness and platform health.
        if self.overruns_consec >= lim[L_OVERRUNS]:
            act |= 1 << C.OVERRUN
        if not self.wdt_ok:
            act |= 1 << C.WATCHDOG
        if not self.storage_ok:
            act |= 1 << C.STORAGE

        return self._apply(act)

    def _apply(self, act):
        """Grant or withdraw the permit for ``act``; trip reaction first."""
        newly = act & ~self.active & ~self.latched
        self.active = act
        self.latched |= act & C.LATCHING
        blocking = act | self.latched
        bit = 1 << self.phase
        if blocking or not (bit & S.COOLING):
            self.permit = False
            self._valve.permit = False
            self._valve.force_closed()
        else:
            self.permit = True
            self._valve.permit = True
        if blocking or not (bit & S.TREATING):
            if self.master_open or newly:
                self._master.close()
                self.master_open = False
        elif not self.master_open:
            self._master.open()
            self.master_open = True
        if newly:
            self.new |= newly
            self.trips += 1
        return act

    def heartbeat_check(self, now):
        """For a hard timer ISR beside the loop: if the loop has not
        evaluated within the heartbeat, close both valves and flag OVERRUN
        (Klipper's missed-scheduling shutdown, control.md §1.4)."""
        if self._clock.diff(now, self._last) > self.lim[L_HEARTBEAT_MS]:
            self._valve.permit = False
            self._valve.force_closed()
            self._master.close()
            self.master_open = False
            self.permit = False
            if not (self.latched & (1 << C.OVERRUN)):
                self.new |= 1 << C.OVERRUN
                self.active |= 1 << C.OVERRUN
                self.latched |= 1 << C.OVERRUN
            return True
        return False

    def take_new(self):
        """Conditions tripped since the last call (control path: alarm, log)."""
        n = self.new
        self.new = 0
        return n

    def blocking(self):
        return self.active | self.latched

    def healthy(self):
        """True when every health check passes: only then is the WDT fed."""
        return not ((self.active | self.latched) & C.HEALTH) and not self.corrupt

    def dose_code_ms(self):
        return self._dose

    def acknowledge(self, role_level):
        """Clear latched conditions whose cause is gone. ``role_level``:
        1 operator, 2 engineer, 3 service. Returns (cleared, still_latched)."""
        clearable = self.latched & ~self.active
        if role_level < 3:
            clearable &= ~C.SERVICE_ACK
        self.latched &= ~clearable
        return clearable, self.latched
