"""Solenoid stuck open: evidence that holds at any tissue temperature.

While the solenoid is commanded closed (zero demand: its sub-ticks then
never open it) and the master valve is open (cryogen could reach it), after
a grace time for the line's dead time and the probes' lag:

* the tissue must not fall by ``L_STUCK_DROP`` and the line (aux) must not
  fall by ``L_AUX_DROP`` — checked at every evaluation, so a stuck valve is
  caught as soon as the fall shows;
* a cold line (below ``L_DEPL_AUX``: liquid at the nozzle) must warm by
  ``L_AUX_RISE`` over each window of ``L_STUCK_MS``.

A cold tissue cannot fall fast, but it does not fall at all once the flow
stops, and the nozzle warms. The absolute cooling rate a warm tissue shows
is not needed.

Both codes are compared through a short integer low-pass (each evaluation
moves it an eighth of the way to the new code; kept in x8 fixed point, so
nothing is lost to rounding), so noisy samples cannot look like a fall:
with probe noise of sigma 0.5 degC a single sample is 1 degC low about
once in 40 samples, the low-pass spreads about 0.13 degC. A real fall
shows about seven evaluations later (0.7 s at 10 Hz). Integer-only and
allocation-free (the interlock's safety path); the x8 codes stay far
below 2**30.
"""

from micropython import const

from cryo.interlock import block as B

_IDLE = const(0)  # solenoid commanded open, or master closed: nothing to watch
_GRACE = const(1)  # closed less than the grace time
_WATCH = const(2)  # watching, references taken
_LP = const(3)  # low-pass: an eighth of the way per evaluation (x8 fixed point)


class StuckOpenWatch:
    def __init__(self, clock):
        self._clock = clock
        self._st = _IDLE
        self._t = clock.ticks_ms()  # grace start, then window start
        self._ref = 0  # tissue low-pass (x8) at the window's start
        self._aux = 0  # line low-pass (x8) at the window's start
        self._ts = 0  # tissue low-pass, x8
        self._as = 0  # line low-pass, x8
        self._seed = True  # the low-passes start from the next codes

    def reset(self):
        self._st = _IDLE

    def check(self, now, lim, code, aux_live, commanded_closed, master_open):
        """True when the solenoid shows as stuck open."""
        if not commanded_closed or not master_open:
            self._st = _IDLE
            return False
        clock = self._clock
        st = self._st
        if st == _IDLE:
            self._st = _GRACE
            self._t = now
            self._seed = True
        if self._seed:
            self._seed = False
            self._ts = code[B.TISSUE] << _LP
            self._as = code[B.AUX] << _LP
        else:
            self._ts += code[B.TISSUE] - (self._ts >> _LP)
            self._as += code[B.AUX] - (self._as >> _LP)
        # Compared in the low-pass's own fixed point (x8): no rounding loss.
        t = self._ts
        a = self._as
        if st != _WATCH:
            if st == _GRACE and clock.diff(now, self._t) >= lim[B.L_STUCK_GRACE_MS]:
                self._st = _WATCH
                self._t = now
                self._ref = t
                self._aux = a
            return False
        stuck = self._ref - t >= lim[B.L_STUCK_DROP] << _LP
        if aux_live and self._aux - a >= lim[B.L_AUX_DROP] << _LP:
            stuck = True
        if clock.diff(now, self._t) < lim[B.L_STUCK_MS]:
            return stuck
        if aux_live and a < lim[B.L_DEPL_AUX] << _LP and a - self._aux < lim[B.L_AUX_RISE] << _LP:
            stuck = True
        # A new window: the references follow a tissue that warms (or
        # holds), so a later fall is measured from where it was.
        self._aux = a
        self._ref = t
        self._t = now
        return stuck

    def arm_for_proof(self, since, ref):
        """Allocation proofs only: a window watched since ``since`` with the
        tissue reference ``ref`` (so every call re-trips)."""
        self._st = _WATCH
        self._t = since
        self._ref = ref << _LP
        self._seed = True  # the low-pass starts at the code under test
