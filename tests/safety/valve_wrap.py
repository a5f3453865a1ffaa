"""Valve idle across the tick wrap (CPython and MicroPython).

Ticks wrap at 2**30 ms (12.4 days) on a 32-bit board, and a signed tick
difference is only meaningful within half of that (6.2 days). A valve left
idle longer than that, with only sparse ``service()`` calls, must still
open at once for a permitted demand.
"""

from cryo.actuation.valve import SolenoidValve
from cryo.clock import ManualClock

DAY_MS = 86400000
HOUR_MS = 3600000


class Pin:
    def __init__(self):
        self.v = 0

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        return None


def idle_then_open(idle_days, used_before, start_ms=0, sparse_ms=6 * HOUR_MS):
    """Idle ``idle_days`` (service every ``sparse_ms``, no permit), then a
    permitted full demand. Returns ms from the demand until the pin reads
    open (-1: not within two windows)."""
    clock = ManualClock(start_ms)
    pin = Pin()
    v = SolenoidValve(pin, clock, window_ms=200, min_on_ms=30, min_off_ms=30, max_open_ms=1500)
    if used_before:
        v.permit = True
        v.request(1.0)
        v.refresh(clock.ticks_ms())
        k = 0
        while k < 30:
            v.service(clock.ticks_ms())
            clock.advance(10)
            k += 1
        v.request(0.0)
        v.service(clock.ticks_ms())
        v.permit = False
        v.service(clock.ticks_ms())
    idle = int(idle_days * DAY_MS)
    while idle > 0:
        step = sparse_ms if sparse_ms < idle else idle
        clock.advance(step)
        idle -= step
        v.service(clock.ticks_ms())
    v.permit = True
    v.request(1.0)
    t = 0
    while t <= 400:
        now = clock.ticks_ms()
        v.refresh(now)
        v.service(now)
        if pin.v == 1 and v.is_open:
            return t
        clock.advance(10)
        t += 10
    return -1


IDLE_DAYS = (6.3, 7.0, 12.5, 13.0)


def all_cases():
    out = {}
    for d in IDLE_DAYS:
        for used in (False, True):
            for start in (0, (1 << 30) - 5000):
                out["%s/%d/%d" % (d, 1 if used else 0, start)] = idle_then_open(d, used, start)
    return out
