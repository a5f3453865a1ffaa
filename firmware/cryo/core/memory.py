"""What the safety layer must remember across a reset or a power cut.

``SafetyMemory`` owns the persistent safety state
(``cryo.storage.safety_state.SafetyState``: latched conditions, the site's
cold dose and frozen flag, whether a valve-capable phase was running, the
boot count and the last reset cause) and the device event log
(``cryo.storage.events.DeviceEventLog``: every fault, acknowledgement,
boot, restored latch and internal error, in and outside treatment
sessions).

Timing: nothing here runs in the safety path. Event records are written in
the tick's control path after ``Interlock.evaluate`` has closed the valves
(a fault: valves, then alarm, then the records); the state is written at
the idle point right after the tick (``Controller.idle``), when the latched
mask or the flags changed, and for a growing dose every ``_DOSE_SAVE_MS``
(4 s), and for the valve's lifetime cycle count (``cryo.core.wear``) at
most once a minute — one small record into the other of two slots, so a
power cut during the write keeps the previous one.

Both stores are optional (a bench setup without flash): without them the
device still works and the missing memory is reported at boot.
"""

from micropython import const

from cryo.storage import records as R
from cryo.storage import safety_state as SS

_DOSE_SAVE_MS = const(4000)
_CYCLES_SAVE_MS = const(60000)
_RETRY_MS = const(1000)  # a failed save is tried again once a second


def reset_code(name):
    """Reset-cause name (``cryo.board.Board.reset_cause``) → record code."""
    i = 0
    names = R.RESET_NAMES
    while i < len(names):
        if names[i] == name:
            return i
        i += 1
    return 0


class SafetyMemory:
    def __init__(self, state, devlog, clock):
        self._state = state
        self._devlog = devlog
        self._clock = clock
        self._saved_latched = -1  # what was last written
        self._saved_flags = -1
        self._dose_saved = 0
        self._dose_t = clock.ticks_ms()
        self._cycles_saved = 0
        self._cycles_t = self._dose_t
        self.boots = 0
        self.reset_cause = "unknown"
        self._reset_code = R.RESET_UNKNOWN
        self.write_failures = 0  # saves and appends that failed, ever
        self._state_failing = False  # the last safety-state save failed
        self._events_failing = False  # the last device-event append failed

    def boot(self, reset_name, now):
        """Load the state at construction. Returns a dict: ``latched``,
        ``dose``, ``flags`` to restore, ``lost`` (a state file that cannot
        be read: the caller latches conservatively) and ``wdt_in_treatment``
        (the watchdog reset the board while a valve-capable phase ran) and
        ``valve_cycles`` (the solenoid's lifetime count saved before)."""
        self.reset_cause = reset_name
        out = {"latched": 0, "dose": 0, "flags": 0, "lost": False, "wdt_in_treatment": False}
        out["valve_cycles"] = 0
        st = self._state.load() if self._state is not None else None
        if st is not None:
            out["latched"] = st["latched"]
            out["dose"] = st["site_dose"]
            out["flags"] = st["flags"]
            out["lost"] = bool(st.get("lost"))
            out["valve_cycles"] = st["valve_cycles"]
            self.boots = st["boots"]
        self.boots += 1
        self._reset_code = reset_code(reset_name)
        self.record(R.DEV_BOOT, self._reset_code, self.boots, now)
        if out["lost"]:
            self.record(R.DEV_STATE_LOST, 0, 0, now)
        if out["flags"] & SS.FLAG_TREATING and reset_name == "wdt":
            out["wdt_in_treatment"] = True
            self.record(R.DEV_WDT_IN_TREATMENT, 0, 0, now)
        if out["latched"]:
            self.record(R.DEV_RESTORED, 0, out["latched"], now)
        self._cycles_saved = out["valve_cycles"]
        self._write(out["latched"], out["dose"], out["flags"], self._cycles_saved)
        return out

    def record(self, kind, code, arg, now):
        """One device event (never raises: a failing flash is counted and
        makes ``healthy`` false, which the controller's storage check turns
        into the STORAGE condition)."""
        d = self._devlog
        if d is None:
            return
        self._events_failing = d.append(kind, code, arg, now) < 0
        if self._events_failing:
            self.write_failures += 1

    def healthy(self):
        """False while the last safety-state save or device-event append
        failed: what a reset would need could be lost."""
        return not (self._state_failing or self._events_failing)

    def update(self, latched, dose, flags, valve_cycles, now):
        """Keep the state current (the controller's idle point after every
        tick): at once when the latched mask or the flags change (a
        treatment's end clears FLAG_TREATING, so its cycles are saved then),
        a growing dose every 4 s, new valve cycles every minute."""
        if self._state is None:
            return
        clk = self._clock
        if self._state_failing and clk.diff(now, self._dose_t) < _RETRY_MS:
            return
        if latched != self._saved_latched or flags != self._saved_flags:
            self._write(latched, dose, flags, valve_cycles)
        elif dose != self._dose_saved and (
            clk.diff(now, self._dose_t) >= _DOSE_SAVE_MS or dose < self._dose_saved
        ):
            self._write(latched, dose, flags, valve_cycles)
        elif valve_cycles != self._cycles_saved and (
            clk.diff(now, self._cycles_t) >= _CYCLES_SAVE_MS
        ):
            self._write(latched, dose, flags, valve_cycles)

    def _write(self, latched, dose, flags, valve_cycles):
        if self._state is None:
            return
        ok = self._state.save(latched, dose, flags, self.boots, self._reset_code, valve_cycles)
        self._dose_t = self._cycles_t = self._clock.ticks_ms()
        self._state_failing = not ok
        if not ok:
            # Not marked saved: ``update`` tries again (once a second) until
            # the values are on flash; the slot choice makes a retry safe.
            self.write_failures += 1
            return
        self._saved_latched = latched
        self._saved_flags = flags
        self._dose_saved = dose
        self._cycles_saved = valve_cycles

    def events(self, since_seq=0):
        """The device event records (for status and tests)."""
        if self._devlog is None:
            return []
        return self._devlog.records(since_seq)
