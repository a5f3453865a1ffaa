"""``machine.RTC`` of the virtual board: an offset on host or virtual time.

The calendar arithmetic is integer-only and written out here so the date
is the same on every interpreter: the emulated Cortex-M board has no
``time.gmtime``, and ``time.mktime`` takes different tuples on MicroPython
and CPython.
"""

import vboard


def _unix_seconds(y, mo, d, h, mi, s):
    """UTC date/time -> seconds since 1970-01-01 (proleptic Gregorian;
    days-from-civil, integer only, same result on every interpreter)."""
    if mo <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (mo + (9 if mo <= 2 else -3)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days * 86400 + h * 3600 + mi * 60 + s


def _civil(secs):
    """Seconds since 1970-01-01 -> gmtime's first 7 fields (civil-from-days,
    the inverse of _unix_seconds), for a port without time.gmtime."""
    days, rem = divmod(int(secs), 86400)
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    mo = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if mo <= 2 else 0)
    return (y, mo, d, rem // 3600, rem // 60 % 60, rem % 60, (days + 3) % 7)


class RTC:
    """Real-time clock: an offset on top of host time (real) or virtual time."""

    _offset_s = 0

    def __init__(self, id=0):
        pass

    def _now_s(self):
        import time

        w = vboard.get()
        if w.realtime and hasattr(time, "time"):
            return time.time() + RTC._offset_s
        # fast time from 2000-01-01; the emulated Cortex-M board (no time.time)
        # from the host's clock at its power-up (boards/qemu-mps2/qemu_rom.py)
        base = getattr(w, "rtc_base_s", 946684800)
        return base + w.clock.ticks_ms() // 1000 + RTC._offset_s

    def datetime(self, dt=None):
        import time

        if dt is None:
            gmtime = getattr(time, "gmtime", None) or _civil
            t = gmtime(self._now_s())
            # (year, month, day, weekday, hours, minutes, seconds, subseconds)
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        # Civil date -> Unix seconds ourselves: time.mktime takes an 8-tuple
        # in local time on MicroPython and a 9-tuple on CPython (TypeError).
        secs = _unix_seconds(dt[0], dt[1], dt[2], dt[4], dt[5], dt[6])
        RTC._offset_s = 0
        RTC._offset_s = secs - self._now_s()

    def init(self, dt):
        self.datetime(dt)
