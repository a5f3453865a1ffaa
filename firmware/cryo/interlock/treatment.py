"""Hard treatment limits of the interlock, independent of the sequencer's
own timers: the length of a FREEZE (approach and hold) and of a TUNE run,
the cold dose of the treatment site, and the valve-open budget of a FREEZE
before its target.

The dose belongs to the site (it survives a stop, a restart and a reboot:
``restore``); the valve-open budget to one FREEZE. Integer-only and
allocation-free (the interlock's safety path); the sums saturate at
``_SAT``, a small int on a 32-bit board.
"""

from micropython import const

from cryo.interlock import block as B
from cryo.interlock import conditions as C
from cryo.protocol import states as S

_SAT = const(1 << 28)


class TreatmentLimits:
    def __init__(self, clock):
        self._clock = clock
        self._dose = 0  # cold dose of the current treatment site
        self._flow_ms = 0  # valve-open time in this FREEZE before the target

    def dose(self):
        """Cold dose of the current site, (code >> B.L_Q) * ms."""
        return self._dose

    def restore_dose(self, dose):
        self._dose = dose if 0 <= dose < _SAT else _SAT

    def new_site(self):
        self._dose = 0

    def start_freeze(self):
        """A FREEZE (or PRECOOL) begins: its valve-open budget starts."""
        self._flow_ms = 0

    def check(self, now, ph, dt, lim, c0, permit, demand_pm, phase_t0, reached_t):
        """Condition bits (FREEZE_TIME, EXCESS_FLOW, DOSE). ``reached_t``:
        when the FREEZE reached its target, -1 before (ticks are >= 0)."""
        clock = self._clock
        reached = reached_t >= 0
        act = 0
        if ph == S.TUNE and clock.diff(now, phase_t0) > lim[B.L_TUNE_MS]:
            act |= 1 << C.FREEZE_TIME
        if ph == S.FREEZE:
            if clock.diff(now, phase_t0) > lim[B.L_APPROACH_MS]:
                act |= 1 << C.FREEZE_TIME
            elif reached and clock.diff(now, reached_t) > lim[B.L_FREEZE_MAX_MS]:
                act |= 1 << C.FREEZE_TIME
            # Cryogen keeps flowing and the tissue reading does not reach
            # the target: beyond the valve-open time the plant needs to get
            # there, the reading cannot be trusted (both probes drifting
            # warm together, a probe off the skin) while the real tissue
            # under the spray keeps freezing. The demand is what the valve
            # delivered since the last tick (its sub-ticks time-proportion
            # it), so demand x dt is the valve-open time (dt <= 1000,
            # demand <= 1000: a small int).
            if not reached:
                if permit and self._flow_ms < _SAT:
                    self._flow_ms += (dt * demand_pm) // 1000
                if self._flow_ms > lim[B.L_FLOW_MAX_MS]:
                    act |= 1 << C.EXCESS_FLOW
        if ph == S.PRECOOL or ph == S.FREEZE or ph == S.THAW or ph == S.TUNE:
            if c0 < lim[B.L_DOSE_THR] and self._dose < _SAT:
                self._dose += ((lim[B.L_DOSE_THR] - c0) >> lim[B.L_Q]) * dt
            if self._dose > lim[B.L_DOSE_MAX]:
                act |= 1 << C.DOSE
        return act

    def spend_budget_for_proof(self, lim):
        """Allocation proofs only: the valve-open budget is spent."""
        self._flow_ms = lim[B.L_FLOW_MAX_MS] + 1
