"""Failure to cool and depletion, while cooling is asked for (PRECOOL,
FREEZE).

* **Watch** after a setpoint decrease (Marlin's WATCH_COOLER): the tissue
  must fall by ``L_WATCH_DROP`` within ``L_WATCH_MS``, repeatedly, until it
  is inside the band above the setpoint; paused on the latent-heat plateau
  while the line delivers liquid (the tissue is freezing, not failing).
  Below the plateau a weak spray or a strongly perfused lesion cools
  slowly through the frozen zone (down to about -14 degC at full flow on
  a 0.7x spray or a 6x perfusion): there, while the valve is at full duty
  and the line delivers liquid, the watch asks for the depletion check's
  drop (``L_DEPL_DROP`` per ``L_WATCH_MS``) instead of ``L_WATCH_DROP``.
  A valve stuck closed or a blocked line leaves the line warm (no liquid),
  so the full watch and the warm-line check still apply to them; without a
  line sensor the watch is never relaxed.
* **Integral** of the error above SP + band while cooling is demanded,
  against ``L_NOCOOL_MAX``; the pre-cool timeout.
* **Depletion**: at full duty for a whole window the tissue did not fall
  while above the band and outside the latent-heat zone; a line still warm
  at full duty (valve stuck closed, line blocked); low supply pressure.

Integer-only and allocation-free (the interlock's safety path). Returns
condition bits for the interlock to apply.
"""

from micropython import const

from cryo.interlock import block as B
from cryo.interlock import conditions as C
from cryo.protocol import states as S

_SAT = const(1 << 28)  # the integral saturates here (small int on 32-bit boards)
_CNT_MAX = const(1000)


class CoolingWatch:
    def __init__(self, clock):
        self._clock = clock
        now = clock.ticks_ms()
        self._watching = 0
        self._goal = 0
        self._slow_goal = 0  # the relaxed goal under full liquid flow
        self._watch_t = now
        self._nocool = 0
        self._full_ok = 0
        self._full_ref = 0
        self._full_t = now
        self._p_low = 0

    def start(self, c0, lim, now):
        """A setpoint decrease (PRECOOL, FREEZE entry): the watch starts."""
        self._watching = 1
        self._goal = c0 - lim[B.L_WATCH_DROP]
        self._slow_goal = c0 - lim[B.L_DEPL_DROP]
        self._watch_t = now
        self._full_ok = 0

    def restart_integral(self):
        """A new treatment (or tuning run): no failure-to-cool carried over."""
        self._nocool = 0

    def expire_watch(self, now):
        """Allocation proofs only: the watch ran out long ago."""
        self._watching = 1
        self._watch_t = self._clock.add(now, -100000)

    def check(self, now, ph, dt, lim, code, aux_live, demand_pm, phase_t0, pressure):
        """Condition bits (NO_COOL, DEPLETED). ``pressure``: raw supply
        pressure code, or -1 without a sensor."""
        clock = self._clock
        c0 = code[B.TISSUE]
        act = 0
        band = lim[B.L_SP] + lim[B.L_HYST]
        if self._watching:
            liquid = aux_live and code[B.AUX] < lim[B.L_DEPL_AUX]
            if c0 <= band:
                self._watching = 0
                self._nocool = 0
            elif c0 <= self._goal:
                self._goal = c0 - lim[B.L_WATCH_DROP]
                self._slow_goal = c0 - lim[B.L_DEPL_DROP]
                self._watch_t = now
            elif lim[B.L_ZONE_LO] < c0 < lim[B.L_ZONE_HI] and liquid:
                # Latent-heat plateau while the line delivers liquid. The
                # whole phase stays bounded by FREEZE_TIME and the
                # valve-open budget.
                self._slow_goal = c0 - lim[B.L_DEPL_DROP]
                self._watch_t = now
            elif c0 <= self._slow_goal and liquid and demand_pm >= lim[B.L_DUTY_FULL]:
                # Slow frozen zone under full liquid flow: still cooling.
                self._slow_goal = c0 - lim[B.L_DEPL_DROP]
                self._watch_t = now
            elif clock.diff(now, self._watch_t) > lim[B.L_WATCH_MS]:
                act |= 1 << C.NO_COOL
        elif c0 > band:
            if demand_pm > 0 and self._nocool < _SAT:
                self._nocool += ((c0 - band) >> lim[B.L_Q]) * dt
        else:
            self._nocool = 0
        if self._nocool > lim[B.L_NOCOOL_MAX]:
            act |= 1 << C.NO_COOL
        if ph == S.PRECOOL and clock.diff(now, phase_t0) > lim[B.L_PRECOOL_MS]:
            act |= 1 << C.NO_COOL
        if demand_pm >= lim[B.L_DUTY_FULL]:
            if not self._full_ok:
                self._full_ok = 1
                self._full_ref = c0
                self._full_t = now
            elif clock.diff(now, self._full_t) >= lim[B.L_DEPL_MS]:
                if c0 > band and self._full_ref - c0 < lim[B.L_DEPL_DROP]:
                    if c0 > lim[B.L_ZONE_HI] or c0 < lim[B.L_ZONE_LO]:
                        act |= 1 << C.DEPLETED
                if aux_live and code[B.AUX] > lim[B.L_DEPL_AUX]:
                    act |= 1 << C.NO_COOL
                self._full_ref = c0
                self._full_t = now
        else:
            self._full_ok = 0
        if 0 <= pressure < lim[B.L_P_LOW]:
            if self._p_low < _CNT_MAX:
                self._p_low += 1
        else:
            self._p_low = 0
        if self._p_low >= lim[B.L_DEBOUNCE]:
            act |= 1 << C.DEPLETED
        return act
