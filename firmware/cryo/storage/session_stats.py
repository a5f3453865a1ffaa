"""A session's summary statistics: one set of rules for the log that keeps
them while it writes (``TreatmentLog``) and for the reader that recomputes
them from the flash after a power cut (``segments.session_stats``).

Integer-only at sample resolution: every logged sample stands for one
sample period; a sample at or below the session's target adds a period to
the time below target, a sample with the valve open to the valve-open time.
"""

from cryo.storage import records as R

PHASE_FREEZE = 4  # cryo.protocol.states.FREEZE (not imported: the host reads logs too)
NO_MIN = 32767  # "no sample yet" for a running minimum of tissue_cc
UNKNOWN = 0xFFFFFFFF  # a count the summary cannot give (its session's header is gone)


class SessionStats:
    """Counts for one session; ``begin`` starts them again."""

    def __init__(self, period_ms=100, target_cc=0):
        self.begin(period_ms, target_cc)

    def begin(self, period_ms, target_cc):
        self.period_ms = period_ms
        self.target_cc = target_cc
        self.samples = 0
        self.events = 0
        self.cycles = 0  # FREEZE phase entries
        self.min_cc = NO_MIN
        self.below_target_ms = 0
        self.valve_open_ms = 0

    def sample(self, tissue_cc, valve):
        """One logged sample (allocation-free)."""
        self.samples += 1
        if tissue_cc != R.NO_READING16:
            if tissue_cc < self.min_cc:
                self.min_cc = tissue_cc
            if tissue_cc <= self.target_cc:
                self.below_target_ms += self.period_ms
        if valve:
            self.valve_open_ms += self.period_ms

    def event(self, code, arg):
        self.events += 1
        if code == R.EV_PHASE and arg == PHASE_FREEZE:
            self.cycles += 1

    def summary(self, session, duration_ms):
        """The summary record's computed fields (outcome not included)."""
        return {
            "session": session,
            "duration_ms": duration_ms,
            "min_cc": self.min_cc if self.min_cc != NO_MIN else R.NO_READING16,
            "below_target_ms": self.below_target_ms,
            "valve_open_ms": self.valve_open_ms,
            "cycles_done": self.cycles,
            "samples": self.samples,
            "events": self.events,
        }


def unknown_summary(session, duration_ms):
    """The summary of a session whose header rotated away: only its number
    and how long it ran are known."""
    return {
        "session": session,
        "duration_ms": duration_ms,
        "min_cc": R.NO_READING16,
        "below_target_ms": UNKNOWN,
        "valve_open_ms": UNKNOWN,
        "cycles_done": 255,
        "samples": UNKNOWN,
        "events": UNKNOWN,
    }
