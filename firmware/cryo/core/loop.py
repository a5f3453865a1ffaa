"""The loop on hardware: ``run()`` schedules ``tick`` with ``ticks_add``
deadlines (asyncio), polls the command channel between ticks (bounded),
collects garbage only with slack before the deadline, and services the
valve every ``service_ms`` while it waits. Overruns are counted as missed
deadlines; the safety timer (``safety_isr``) runs beside it from the
controller's construction on.
"""

import gc

from micropython import const

_GC_SLACK_MS = const(5)
_LINK_POLLS = const(4)  # link polls per period at most (each bounded, docs/link.md)
_LINK_SLACK_MS = const(20)  # poll again only with this much left before the tick


class LoopMixin:
    """Controller methods: the asyncio loop (``run``)."""

    def run(self, should_stop=None):
        """Run the loop on hardware until service mode or ``should_stop()``.

        Always leaves both valves closed (finally), whatever escapes. The
        safety timer armed at construction keeps watching the heartbeat.
        """
        import asyncio

        try:
            asyncio.run(self._loop(should_stop))
        finally:
            self._in_loop = False
            self.safe()

    async def _loop(self, should_stop=None):
        import asyncio

        clock = self.clock
        period = self.period_ms
        now = clock.ticks_ms()
        self.il.resync(now)
        deadline = clock.add(now, period)
        self._in_loop = True
        while not self.service_requested:
            if should_stop is not None and should_stop():
                break
            now = clock.ticks_ms()
            self.tick(now)
            self.idle(now)
            link = self.link
            if link is not None:
                # Outside the tick: bounded work, never raises. While it did
                # work and there is slack before the next tick, poll again
                # (at most _LINK_POLLS per period: a request that arrived in
                # pieces, or a queue of requests, is served without waiting
                # a whole tick per frame, and a flood still cannot eat the
                # period).
                n = 0
                while (
                    link.poll()
                    and n < _LINK_POLLS - 1
                    and clock.diff(deadline, clock.ticks_ms()) > _LINK_SLACK_MS
                ):
                    n += 1
            # Planned idle point: collect while there is slack before the deadline.
            if clock.diff(deadline, clock.ticks_ms()) > _GC_SLACK_MS:
                gc.collect()
            late = clock.diff(clock.ticks_ms(), deadline)
            if late > 0:
                # Missed the deadline: count it (consecutive ones trip
                # OVERRUN at the next evaluation), resynchronise (no burst).
                self.count_overrun(True)
                deadline = clock.add(clock.ticks_ms(), period)
                await asyncio.sleep_ms(0)
            else:
                self.count_overrun(False)
                await self._service_until(deadline)
                deadline = clock.add(deadline, period)

    async def _service_until(self, deadline):
        """Sleep until ``deadline`` in ``service_ms`` slices, servicing the valve.

        Why: the time-proportioning resolution is the service period. A
        200 ms window serviced only at the 100 ms tick has three levels
        (0, 100, 200 ms); measured on the default plant at -35 degC
        (docs/safety.md) the hold RMS is 0.54 degC at 100 ms service and
        0.36 degC at 10 ms.
        """
        import asyncio

        clock = self.clock
        step = self.service_ms
        while True:
            left = clock.diff(deadline, clock.ticks_ms())
            if left <= 0:
                return
            await asyncio.sleep_ms(step if left > step else left)
            self.valve.service(clock.ticks_ms())
