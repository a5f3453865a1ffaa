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
4.7, single-fault condition); at every FREEZE entry the solenoid is proved
closed before it may open (:mod:`cryo.interlock.proof`), so a stuck one is
not left latent behind the master valve. In TUNE the experiments are
open-loop (no regulator drives the demand to 0 around a solenoid that
sticks open or leaks), so there the master opens only with the solenoid's
pulses: a failed solenoid delivers the commanded pulses and nothing more,
and the next FREEZE entry's proof finds it.

The checks are objects of their own (sensors, treatment limits, cooling,
stuck-open watch, solenoid proof, operator inputs); the limit block
(:mod:`cryo.interlock.block`, raw codes converted outside the safety path
by :mod:`cryo.interlock.limits`) is check-summed: a corrupted limit in RAM
trips CONFIG.
"""

from micropython import const

from cryo.interlock import block as B
from cryo.interlock import conditions as C
from cryo.interlock.cooling import CoolingWatch
from cryo.interlock.operator import OperatorInputs
from cryo.interlock.proof import STUCK, SolenoidProof
from cryo.interlock.sensors import SensorCheck
from cryo.interlock.stuck import StuckOpenWatch
from cryo.interlock.treatment import TreatmentLimits
from cryo.protocol import states as S

_DT_MAX = const(1000)  # bound for the integration step (ms)
_CNT_MAX = const(1000)  # debounce counters saturate here


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
        self._ops = OperatorInputs(estop, footswitch, handpiece)
        now = clock.ticks_ms()
        self.lim = [0] * B.NL
        self._lim_sum = 0
        # Per-channel inputs (written by record()).
        self.code = [0] * B.NCH
        self.good_t = [now] * B.NCH
        self.bad = [0] * B.NCH
        self.fitted = 1  # bitmask of fitted channels (channel 0 always)
        self._read = 0  # channels that have delivered a good sample
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
        self.corrupt = 0  # the limit block failed its checksum (RAM corruption)
        # Outputs.
        self.active = 0  # conditions true now
        self.latched = 0  # latching conditions not yet acknowledged
        self._new = 0  # conditions that tripped since the controller last took them
        self.permit = False
        self.master_open = False  # the master may open (held, or pulsed in TUNE)
        self.trips = 0
        # Phase bookkeeping.
        self.phase = S.IDLE
        self.phase_t0 = now
        self.reached = 0  # FREEZE: target reached (set by the protocol)
        self.reached_t = now
        self._last = now
        # The checks, one object each (their own state).
        self._sensors = SensorCheck(clock, self.code, self.good_t, self.bad)
        self._limits = TreatmentLimits(clock)
        self._cooling = CoolingWatch(clock)
        self._stuck = StuckOpenWatch(clock)
        self._proof = SolenoidProof(clock)
        self._valve.set_permit(False)

    # ------------------------------------------------------------ limits
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
        self._lim_sum = B.checksum(self.lim)
        self.corrupt = 0

    # ------------------------------------------------------------ inputs
    def fit(self, fitted, has_pressure):
        """Which channels are fitted (bitmask; a fitted tissue2 or tissue3
        becomes required) and whether a supply pressure sensor is
        (construction)."""
        self.fitted = fitted | 1
        self.required = self.fitted & ((1 << B.TISSUE) | (1 << B.TISSUE2) | (1 << B.TISSUE3))
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
            self._read |= 1 << ch
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
        self._limits.restore_dose(dose)
        self._apply(self.active)

    def dose(self):
        """Cold dose of the current site, (code >> B.L_Q) * ms."""
        return self._limits.dose()

    def new_site(self):
        """The operator moved to a new treatment site: its dose starts at 0."""
        self._limits.new_site()

    def estop_isr(self, _pin=None):
        """Pin interrupt on the e-stop loop opening (hard IRQ, allocation-free):
        counts the edge; the next ``evaluate`` trips ESTOP however short the
        opening was. A counter, not a flag, so an edge that arrives while
        ``evaluate`` reads it is never lost."""
        self._ops.edge()

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
            self._limits.start_freeze()
        if phase == S.FREEZE:
            self._proof.start(now)  # the solenoid opens once it is proved closed
        else:
            self._proof.cancel()
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
        lim = self.lim
        code = self.code
        dem = self._demand_pm
        t0 = self.phase_t0
        act |= self._integrity()
        # A channel's reading is compared once it has one; until then its
        # liveness alone is judged (no good sample within stale_ms: SENSOR).
        read = self.fitted & (self._read | 1)
        act |= self._sensors.check(now, lim, read, self.required, self.master_open, dem)
        reached = self.reached_t if self.reached else -1
        act |= self._limits.check(now, ph, dt, lim, code[B.TISSUE], self.permit, dem, t0, reached)
        aux_live = self._aux_live(now)
        if ph == S.PRECOOL or ph == S.FREEZE:
            p = self._pressure if self._has_pressure else -1
            act |= self._cooling.check(now, ph, dt, lim, code, aux_live, dem, t0, p)
        if self._has_pressure:
            act |= self._sensors.pressure(lim, self._pressure)
        proving = self._proof.running
        if proving and self.master_open:
            two = self.fitted & (1 << B.TISSUE2)
            if self._proof.check(now, lim, code, aux_live, two) == STUCK:
                act |= 1 << C.STUCK_OPEN
        # Commanded closed = a zero demand (the valve's sub-ticks then never
        # open it); a sample of ``is_open`` at the tick would miss pulses.
        # While the proof runs it alone judges (its grace follows the line's
        # lag after a PRECOOL).
        closed = self._demand_pm == 0 and not self._valve.is_open and not proving
        if self._stuck.check(now, lim, code, aux_live, closed, self.master_open):
            act |= 1 << C.STUCK_OPEN
        if act & (1 << C.OVERCOOL) and self.master_open and self._demand_pm < lim[B.L_DUTY_FULL]:
            # Past (or about to pass) the floor while the regulator asked for
            # less than full cooling: cryogen arrived that nobody commanded
            # (or both probes read cold). The floor trip closes the master
            # before the stuck-open watch could see it; the valve must be
            # inspected before the next treatment, not just acknowledged.
            act |= 1 << C.STUCK_OPEN
        act |= self._ops.check(ph, lim)
        return self._apply(act)

    def _integrity(self):
        act = 0
        if B.checksum(self.lim) != self._lim_sum:
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

    def _aux_live(self, now):
        return (
            self.fitted & (1 << B.AUX)
            and self._clock.diff(now, self.good_t[B.AUX]) <= self.lim[B.L_STALE_MS]
        )

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
        if cooling and not self._proof.running:
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
            # TUNE runs open-loop experiments: the master opens only with
            # the solenoid's pulses (cryo.actuation.valve.MasterValve). TUNE
            # is entered from and left for phases without cooling, so the
            # master is closed whenever the mode changes.
            self._master.open(self.phase == S.TUNE)
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
