"""The loop on hardware: ``Loop(controller).run()`` schedules the tick with
``ticks_add`` deadlines (asyncio), polls the command channel between ticks
(bounded), collects garbage only with slack before the deadline, and
services the valve every ``service_ms`` while it waits.

Timing: a tick, the idle work and the link polls share one period. A
missed deadline is counted (consecutive ones trip OVERRUN at the next
evaluation) and the schedule restarts from now rather than bursting to
catch up. The safety timer (``Controller.safety_isr``) runs beside it from
the controller's construction on, so a loop stuck anywhere here still
closes the valves.
"""

import gc

from micropython import const

_GC_SLACK_MS = const(5)
_LINK_POLLS = const(4)  # link polls per period at most (each bounded, docs/link.md)
_LINK_SLACK_MS = const(20)  # poll again only with this much left before the tick


class Loop:
    def __init__(self, controller):
        self._ctl = controller
        self._tick = controller.ticker

    def run(self, should_stop=None):
        """Until service mode or ``should_stop()``. Always leaves both valves
        closed (finally), whatever escapes."""
        import asyncio

        try:
            asyncio.run(self._loop(should_stop))
        finally:
            self._tick.scheduled(False)
            self._tick.safe()

    async def _loop(self, should_stop=None):
        import asyncio

        ctl = self._ctl
        tk = self._tick
        clock = ctl.clock
        period = tk.period_ms
        now = clock.ticks_ms()
        ctl.il.resync(now)
        deadline = clock.add(now, period)
        tk.scheduled(True)
        while not ctl.service_requested:
            if should_stop is not None and should_stop():
                break
            now = clock.ticks_ms()
            ctl.tick(now)
            ctl.idle(now)
            link = ctl.link
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
                tk.count_overrun(True)
                deadline = clock.add(clock.ticks_ms(), period)
                await asyncio.sleep_ms(0)
            else:
                tk.count_overrun(False)
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

        ctl = self._ctl
        clock = ctl.clock
        while True:
            left = clock.diff(deadline, clock.ticks_ms())
            if left <= 0:
                return
            step = ctl.service_ms
            await asyncio.sleep_ms(step if left > step else left)
            ctl.service_valve(clock.ticks_ms())
