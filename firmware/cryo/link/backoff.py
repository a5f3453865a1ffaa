"""Exponential back-off on failed authentications, persisted across resets.

Every attempt is counted on flash *before* it is evaluated
(:meth:`Backoff.count`, written as a temp file and renamed: atomic on
littlefs), so pulling the power after a wrong guess never gives a free
one. A success clears the count. The first ``FREE`` failures cost nothing
(typing errors); after that the device refuses every attempt for
``BASE_MS << (fails - FREE)`` ms, capped at ``CAP_MS``. An attempt made
while refusing is counted too: hammering the device only lengthens the wait.

The wait is measured with the board's tick clock, which restarts at every
reset, so after a reset the full wait for the stored count starts again:
a reboot never shortens it. Not on the safety path: the command channel
calls this between ticks.
"""

import os

from micropython import const

FREE = const(3)  # failures without a wait
BASE_MS = const(1000)  # wait after the first counted failure
CAP_MS = const(900000)  # 15 min: the longest wait
_MAX_SHIFT = const(10)  # BASE_MS << 10 > CAP_MS


def delay_ms(fails):
    """The wait after ``fails`` consecutive failures."""
    if fails < FREE:
        return 0
    shift = fails - FREE
    if shift >= _MAX_SHIFT:
        return CAP_MS
    return min(BASE_MS << shift, CAP_MS)


class Backoff:
    """The failure count in the file ``path`` and the wait it imposes."""

    def __init__(self, path, clock):
        self._path = path
        self._clock = clock
        self.fails = self._load()
        self._until = clock.add(clock.ticks_ms(), delay_ms(self.fails))

    def _load(self):
        try:
            with open(self._path, "rb") as f:
                text = f.read().decode().strip()
        except OSError:
            return 0
        try:
            n = int(text)
        except ValueError:
            n = -1
        if n < 0:
            # Unreadable count (damaged or edited): refuse as after FREE
            # failures rather than grant fresh attempts.
            return FREE
        return n

    def _store(self):
        tmp = self._path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(b"%d\n" % self.fails)
        os.rename(tmp, self._path)

    def wait_ms(self):
        """Milliseconds until an attempt will be evaluated (0: now)."""
        left = self._clock.diff(self._until, self._clock.ticks_ms())
        return left if left > 0 else 0

    def count(self):
        """Record one more attempt on flash before it is evaluated."""
        self.fails += 1
        self._store()

    def failed(self):
        """The attempt counted by :meth:`count` failed: start the wait."""
        self._until = self._clock.add(self._clock.ticks_ms(), delay_ms(self.fails))

    def succeeded(self):
        self.fails = 0
        self._store()
        self._until = self._clock.ticks_ms()
