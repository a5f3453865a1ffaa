"""Treatment sequencer: IDLE → SELF_TEST → READY → PRECOOL → FREEZE → THAW
→ (FREEZE → THAW …) → DONE, with ABORTED / FAULT from any state.

Control path (°C floats). The sequencer only *decides* phases; it never
drives a valve. Each change is pushed to the interlock (``set_phase``),
which withdraws or grants the permit in the same call, so leaving FREEZE
closes the valve in the tick the decision is made.

Timing rules (contact/spray cryotherapy of keloids: freeze-thaw cycles of
10-30 s at the target, a slow complete thaw before re-freezing):

* PRECOOL is open-loop line chill-down: it ends when the line/nozzle (aux)
  thermocouple is below ``precool_aux_c`` or the tissue has dropped by
  ``precool_drop_c`` (cryogen reaches the skin); the interlock's NO_COOL
  condition enforces the ``precool_s`` timeout.
* FREEZE holds the target for ``freeze_s`` counted from *reaching* the target:
  the tissue reading within ``REACH_BAND_C`` of it and staying there for
  ``REACH_CONFIRM_MS`` (counted from the first sample in the band). A
  visibly frozen surface is not a lethal dose, so time before the target
  does not count; the band is two of the chips' codes at these
  temperatures (≈ 0.25 °C each), so the hold is time *at* the target, as
  the regulator sees it (a 2 °C band counted
  the last ~4 s of the approach at full flow, ~13 % of a 30 s hold, as
  dose). The confirmation keeps one noisy sample from starting the hold
  early. The interlock's FREEZE_TIME caps the whole phase at
  ``freeze_max_s``.
* THAW keeps the valves closed until the tissue is above ``thaw_c`` *and*
  ``min_thaw_s`` has passed ("rapid freeze, slow thaw", complete thaw before
  re-freezing); then the next cycle or DONE.
"""

from cryo.protocol import states as S

REACH_BAND_C = 0.5  # °C above the target that counts as at the target
REACH_CONFIRM_MS = 500  # the reading stays in the band this long


class Protocol:
    def __init__(self, params, clock, interlock, on_change=None):
        self.p = params
        self._clock = clock
        self._il = interlock
        self._on_change = on_change
        now = clock.ticks_ms()
        self.state = S.IDLE
        self.t0 = now
        self.cycle = 0
        self.reached = False
        self.t_reached = now  # FREEZE: the reading's entry into the band
        self._in_band = False
        self.start_c = None
        self.reason = ""
        self.history = []  # (state, t_ms) of the current treatment, bounded

    @property
    def name(self):
        return S.name(self.state)

    def _go(self, state, now, reason=""):
        prev = self.state
        self.state = state
        self.t0 = now
        if reason:
            self.reason = reason
        self._il.set_phase(state, now)
        if len(self.history) < 64:
            self.history.append((state, now))
        if self._on_change is not None:
            self._on_change(prev, state, now, reason)

    def elapsed_ms(self, now):
        return self._clock.diff(now, self.t0)

    # -- commands ------------------------------------------------------
    def start(self, now):
        """IDLE/DONE/ABORTED → SELF_TEST (the controller runs the checks)."""
        if not ((1 << self.state) & S.STARTABLE):
            return False
        self.history = []
        self.cycle = 0
        self.reason = ""
        self._go(S.SELF_TEST, now)
        return True

    def self_test_done(self, ok, now, reason=""):
        if self.state != S.SELF_TEST:
            return False
        if ok:
            self._go(S.READY, now)
        else:
            self._go(S.ABORTED, now, reason or "self-test failed")
        return ok

    def begin(self, now, tissue_c):
        """READY → PRECOOL (footswitch pressed or host command)."""
        if self.state != S.READY:
            return False
        self.cycle = 1
        self.start_c = tissue_c
        self.reached = False
        self._go(S.PRECOOL, now)
        return True

    def abort(self, now, reason):
        if self.state in (S.IDLE, S.DONE, S.ABORTED, S.FAULT):
            return False
        self._go(S.ABORTED, now, reason)
        return True

    def fault(self, now, reason):
        if self.state == S.FAULT:
            return False
        self._go(S.FAULT, now, reason)
        return True

    def clear_fault(self, now):
        """FAULT → IDLE once the interlock has nothing latched or active."""
        if self.state != S.FAULT:
            return False
        self._go(S.IDLE, now, "acknowledged")
        return True

    def start_tune(self, now, what):
        """IDLE/DONE/ABORTED → TUNE (autotune or step test)."""
        if not ((1 << self.state) & S.STARTABLE):
            return False
        self.history = []
        self.cycle = 0
        self._go(S.TUNE, now, what)
        return True

    def end_tune(self, now, reason):
        if self.state != S.TUNE:
            return False
        self._go(S.IDLE, now, reason)
        return True

    # -- the sequencer, once per tick ------------------------------------
    def step(self, now, tissue_c, aux_c):
        """Advance on temperatures (°C, None if unavailable) and time."""
        st = self.state
        p = self.p
        if tissue_c is None:
            return st  # the interlock handles a lost sensor
        if st == S.PRECOOL:
            chilled = aux_c is not None and aux_c <= p["precool_aux_c"]
            dropped = self.start_c is not None and self.start_c - tissue_c >= p["precool_drop_c"]
            if chilled or dropped:
                self._enter_freeze(now)
        elif st == S.FREEZE:
            if not self.reached:
                self._approach(now, tissue_c <= p["target_c"] + REACH_BAND_C)
            elif self._clock.diff(now, self.t_reached) >= int(p["freeze_s"] * 1000):
                self._go(S.THAW, now)
        elif st == S.THAW:
            if tissue_c > p["thaw_c"] and self.elapsed_ms(now) >= int(p["min_thaw_s"] * 1000):
                if self.cycle < p["cycles"]:
                    self.cycle += 1
                    self._enter_freeze(now)
                else:
                    self._go(S.DONE, now)
        return self.state

    def _approach(self, now, in_band):
        """FREEZE before the target: reached once the reading has stayed in
        the band for REACH_CONFIRM_MS; the hold counts from its entry."""
        if not in_band:
            self._in_band = False
            return
        if not self._in_band:
            self._in_band = True
            self.t_reached = now
        if self._clock.diff(now, self.t_reached) >= REACH_CONFIRM_MS:
            self.reached = True
            self._il.mark_reached(self.t_reached)

    def _enter_freeze(self, now):
        self.reached = False
        self._in_band = False
        self._go(S.FREEZE, now)
