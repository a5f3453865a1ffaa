"""``machine.Timer`` of the virtual board: the firmware's view of a timer.

The object checks and keeps what ``init`` was given; arming it, firing it
and the table of armed timers are the world's (boards/sim/timers.py).
"""

import vboard


class Timer:
    """``machine.Timer``: periodic or one-shot callbacks on virtual time.

    The world keeps the armed timers in a fixed table (timers.py) and fires
    them as time advances: in fast time whenever the runner or a test moves
    the clock (``World.advance_to``, ``sync``, valve sub-ticks), at each
    period boundary crossed, with the clock at that boundary — also while
    no control tick runs; in real time from an interpreter thread. Accepts
    what the ports accept (MicroPython docs, library/machine.Timer.rst):
    ``Timer(id, /, *, mode, period | freq, tick_hz, callback, hard)``; the id
    -1 (virtual timer: rp2, stm32) or 0-3 (the ESP32-S3's hardware timers);
    ``id=`` as a keyword too. ``hard=True``: the callback runs with the heap
    locked (an allocation raises MemoryError, as in a hard ISR).
    """

    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, mode=PERIODIC, period=-1, callback=None, hard=False, **kw):
        if isinstance(id, bool) or not isinstance(id, int) or not -1 <= id <= 3:
            raise ValueError(
                "Timer(%r): no such timer; the virtual board has -1 (virtual) and 0-3 "
                "(hardware, as on the ESP32-S3)" % (id,)
            )
        self._w = vboard.get()
        self._id = id
        self._gen = 0
        self._due = 0
        self._period = 0
        self._periodic = True
        self._cb = None
        self._hard = False
        if callback is not None or period != -1 or kw:
            self.init(mode=mode, period=period, callback=callback, hard=hard, **kw)

    def init(self, mode=PERIODIC, period=-1, callback=None, hard=False, freq=None, tick_hz=1000):
        if mode not in (Timer.ONE_SHOT, Timer.PERIODIC):
            raise ValueError(
                "Timer.init: mode %r; allowed: Timer.PERIODIC (%d), Timer.ONE_SHOT (%d)"
                % (mode, Timer.PERIODIC, Timer.ONE_SHOT)
            )
        if freq is not None:
            if freq <= 0:
                raise ValueError("Timer.init: freq must be > 0 Hz, got %r" % (freq,))
            ms = int(1000 / freq)
        elif isinstance(period, int) and not isinstance(period, bool) and period > 0:
            ms = period * 1000 // tick_hz
        else:
            raise ValueError(
                "Timer.init: give period (int ms > 0) or freq (Hz), got period=%r" % (period,)
            )
        if callback is not None and not callable(callback):
            raise TypeError("Timer.init: callback must be callable, got %r" % (callback,))
        self._w.timers.disarm(self)
        self._period = ms if ms >= 1 else 1  # the ports round up to 1 ms too
        self._periodic = mode == Timer.PERIODIC
        self._hard = bool(hard)
        self._cb = callback
        if callback is not None:  # no callback: nothing to run (extmod/machine_timer.c)
            self._w.timers.arm(self)

    def deinit(self):
        self._w.timers.disarm(self)

    def __repr__(self):
        return "Timer(%d, mode=%s, period=%d)" % (
            self._id,
            "PERIODIC" if self._periodic else "ONE_SHOT",
            self._period,
        )
