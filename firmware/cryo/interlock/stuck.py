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
is not needed. Integer-only and allocation-free (the interlock's safety
path).
"""

from micropython import const

from cryo.interlock import block as B

_IDLE = const(0)  # solenoid commanded open, or master closed: nothing to watch
_GRACE = const(1)  # closed less than the grace time
_WATCH = const(2)  # watching, references taken


class StuckOpenWatch:
    def __init__(self, clock):
        self._clock = clock
        self._st = _IDLE
        self._t = clock.ticks_ms()  # grace start, then window start
        self._ref = 0  # tissue code at the window's start
        self._aux = 0  # line code at the window's start

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
            return False
        if st == _GRACE:
            if clock.diff(now, self._t) >= lim[B.L_STUCK_GRACE_MS]:
                self._st = _WATCH
                self._t = now
                self._ref = code[B.TISSUE]
                self._aux = code[B.AUX]
            return False
        stuck = self._ref - code[B.TISSUE] >= lim[B.L_STUCK_DROP]
        a = code[B.AUX]
        if aux_live and self._aux - a >= lim[B.L_AUX_DROP]:
            stuck = True
        if clock.diff(now, self._t) < lim[B.L_STUCK_MS]:
            return stuck
        if aux_live and a < lim[B.L_DEPL_AUX] and a - self._aux < lim[B.L_AUX_RISE]:
            stuck = True
        # A new window: the references follow a tissue that warms (or
        # holds), so a later fall is measured from where it was.
        self._aux = a
        self._ref = code[B.TISSUE]
        self._t = now
        return stuck

    def arm_for_proof(self, since, ref):
        """Allocation proofs only: a window watched since ``since`` with the
        tissue reference ``ref`` (so every call re-trips)."""
        self._st = _WATCH
        self._t = since
        self._ref = ref
