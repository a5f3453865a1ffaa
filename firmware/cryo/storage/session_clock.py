"""A treatment session's time base: the ms since the session began that its
records carry, and when the next sample is due.

Records carry time relative to the session start, so the reader needs no
clock and a log reads the same whichever board wrote it. With a
``cryo.clock`` clock the ``now_ms`` arguments are its ticks (wrap-safe:
``diff``/``add`` only); without one they already are ms since the session
began, which never wrap. Samples are decimated to ``period_ms``; after
falling behind (a long tick, a flash commit) the cadence restarts from now
instead of recording a burst to catch up. Integer-only and allocation-free:
the log's sample path runs through it every tick.
"""


class _Elapsed:
    """Without a clock ``now_ms`` is ms since the session began: no wrap."""

    def diff(self, a, b):
        return a - b

    def add(self, t, delta):
        return t + delta


class SessionClock:
    def __init__(self, clock, period_ms):
        self._clock = clock
        self._ticks = clock if clock is not None else _Elapsed()
        self.period_ms = period_ms
        self.start(0)

    def start(self, now_ms):
        """A session begins at ``now_ms``; its first sample is due at once."""
        self._t0 = now_ms
        self._next_due = now_ms
        self.last = 0  # the latest time a record of this session carries

    def due(self, now_ms):
        """True if a sample is due at ``now_ms`` (then the next one is scheduled)."""
        c = self._ticks
        if c.diff(now_ms, self._next_due) < 0:
            return False
        self._next_due = c.add(self._next_due, self.period_ms)
        if c.diff(now_ms, self._next_due) >= 0:
            self._next_due = c.add(now_ms, self.period_ms)  # fell behind
        return True

    def at(self, now_ms):
        """ms since the session began at ``now_ms``."""
        if self._clock is None:
            return now_ms
        return self._clock.diff(now_ms, self._t0)

    def note(self, t):
        """A record carrying time ``t`` was written: the latest time so far."""
        self.last = t
