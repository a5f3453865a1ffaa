"""The virtual board's armed ``machine.Timer`` objects: a fixed table.

Like a port's alarm pool, at most ``MAX_TIMERS`` are armed at once. In fast
virtual time they fire in :meth:`TimerTable.run` (called by the world as
time advances) for every period boundary crossed, in order, with the clock
set back to the boundary while the callback runs — so they fire even when
a test advances time without running the control loop (a hung loop). In
real time each armed timer has an interpreter thread (``_thread``) that
fires it on the wall clock, whatever the main thread is doing; a unix port
built without threads fires them on each hardware access instead.
``hard=True`` callbacks run with the heap locked (boards/sim/isr.py).

Iterating the table gives its slots: the armed timers, None where free.
"""

import time

from isr import dispatch

try:
    import _thread
except ImportError:  # a unix port built without threads: see docs/virtual-board.md
    _thread = None

MAX_TIMERS = 4  # armed machine.Timer objects at once
_THREAD_NAP_MS = 20  # a timer thread sleeps at most this long between looks


class TimerTable:
    """``step_to(t)``: the world's integration up to ``t`` (fast time: the
    world is stepped to a timer's boundary before its callback runs)."""

    def __init__(self, clock, realtime, step_to):
        self._clock = clock
        self._realtime = realtime
        self._step_to = step_to
        self._slots = [None] * MAX_TIMERS
        self._in_timer = False

    def __iter__(self):
        return iter(self._slots)

    def fire_on_access(self):
        # Fast time fires timers as time advances; real time has a thread
        # per timer, unless the port has no _thread (then on each access).
        return not self._realtime or _thread is None

    def arm(self, t):
        """``machine.Timer.init``: (re)arm ``t``, first due one period from now."""
        self.disarm(t)
        slots = self._slots
        i = 0
        free = -1
        while i < MAX_TIMERS:
            o = slots[i]
            if o is not None and t._id >= 0 and o._id == t._id:
                self.disarm(o)  # a hardware timer id is one peripheral
                o = None
            if o is None and free < 0:
                free = i
            i += 1
        if free < 0:
            raise OSError(
                12, "virtual board: all %d timers are armed; deinit() one first" % MAX_TIMERS
            )
        clock = self._clock
        t._due = clock.add(clock.ticks_ms(), t._period)
        t._gen += 1
        slots[free] = t
        if self._realtime and _thread is not None:
            _thread.start_new_thread(self._thread_main, (t, t._gen))

    def disarm(self, t):
        """``machine.Timer.deinit``: ``t`` no longer fires (its thread ends)."""
        t._gen += 1
        slots = self._slots
        i = 0
        while i < MAX_TIMERS:
            if slots[i] is t:
                slots[i] = None
            i += 1

    def disarm_all(self):
        """A reset stops every timer."""
        i = 0
        while i < MAX_TIMERS:
            if self._slots[i] is not None:
                self.disarm(self._slots[i])
            i += 1

    def _next_due(self, now):
        clock = self._clock
        best = None
        i = 0
        while i < MAX_TIMERS:
            t = self._slots[i]
            if (
                t is not None
                and clock.diff(now, t._due) >= 0
                and (best is None or clock.diff(t._due, best._due) < 0)
            ):
                best = t
            i += 1
        return best

    def run(self, now):
        """Fire every armed timer due by ``now``, earliest boundary first,
        once per boundary crossed. Fast time: the world is stepped to the
        boundary and the clock set back to it while the callback runs, so
        the callback sees the time it would have run at on a board.
        Allocation-free while none is due."""
        if self._in_timer:
            return
        clock = self._clock
        rewind = not self._realtime and hasattr(clock, "advance")
        while True:
            t = self._next_due(now)
            if t is None:
                return
            due = t._due
            if t._periodic:
                t._due = clock.add(due, t._period)
            else:
                self.disarm(t)
            back = 0
            if rewind:
                self._step_to(due)
                back = clock.diff(now, due)
                clock.advance(-back)
            self._in_timer = True
            try:
                dispatch(t._cb, t, t._hard)
            except BaseException:
                # As a port does with an uncaught exception in a timer
                # callback: the timer stops (and the test sees the error).
                self.disarm(t)
                raise
            finally:
                self._in_timer = False
                if back:
                    clock.advance(back)

    def _thread_main(self, t, gen):
        """Real time: fire ``t`` on the wall clock until it is disarmed or
        re-armed, whatever the firmware's main thread is doing."""
        clock = self._clock
        while t._gen == gen:
            wait = clock.diff(t._due, clock.ticks_ms())
            if wait > 0:
                time.sleep_ms(wait if wait < _THREAD_NAP_MS else _THREAD_NAP_MS)
                continue
            if t._periodic:
                t._due = clock.add(t._due, t._period)
            else:
                self.disarm(t)
            try:
                dispatch(t._cb, t, t._hard)
            except Exception as e:  # noqa: BLE001 - a port reports it and stops the timer
                self.disarm(t)
                print("Uncaught exception in Timer callback:", repr(e))
