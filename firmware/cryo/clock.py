"""Tick clocks with wrap-safe arithmetic.

Logic never calls ``time`` directly: it is handed a clock and uses
``clock.diff``/``clock.add``. On 32-bit boards ticks wrap at 2**30
(``ticks_ms`` every ~12.4 days); the 64-bit unix port wraps at 2**62 and
never shows a wrap bug, so tests use :class:`ManualClock`, which wraps at
2**30 and can start just before the wrap.

All methods are integer-only and allocation-free (small ints), so the
safety path may call them with the heap locked.
"""

from micropython import const

TICKS_PERIOD = const(1 << 30)  # 32-bit boards: MICROPY_PY_TIME_TICKS_PERIOD
_HALF = const(1 << 29)
_MASK = const((1 << 30) - 1)


class BoardClock:
    """The board's own millisecond tick counter (``time.ticks_ms``)."""

    def __init__(self):
        import time

        self._time = time
        self._ms = time.ticks_ms
        self._us = time.ticks_us

    def ticks_ms(self):
        return self._ms()

    def ticks_us(self):
        return self._us()

    def diff(self, a, b):
        """Signed ``a - b`` in ticks, correct across the wrap."""
        return self._time.ticks_diff(a, b)

    def add(self, t, delta):
        return self._time.ticks_add(t, delta)


class ManualClock:
    """Virtual time that wraps at ``TICKS_PERIOD``, like a 32-bit board.

    ``advance(ms)`` moves time forward; the simulator and tests own it.
    Microsecond ticks are derived from the same virtual time and wrap at the
    same period (as ``ticks_us`` does on a board, every ~17.9 min).
    """

    def __init__(self, start_ms=0):
        self._ms = start_ms & _MASK
        self._us = (start_ms * 1000) & _MASK

    def ticks_ms(self):
        return self._ms

    def ticks_us(self):
        return self._us

    def advance(self, ms):
        self._ms = self.add(self._ms, ms)
        self._us = self.add(self._us, ms * 1000)

    # Wrap arithmetic that stays within 31-bit small ints on a 32-bit board:
    # ``a - b + 2**29`` or ``t + delta`` could reach 2**30 and become a heap
    # integer there (an allocation in the safety path), so the wrap is
    # applied in steps that never leave -(2**30 - 1) .. 2**30 - 1.
    def diff(self, a, b):
        d = a - b
        if d >= _HALF:
            d -= _MASK
            d -= 1
        elif d < -_HALF:
            d += _MASK
            d += 1
        return d

    def add(self, t, delta):
        d = delta & _MASK
        room = _MASK - t
        if d > room:
            return d - room - 1
        return t + d
