"""``machine`` for the virtual board (Pin, Signal, SPI, PWM, ADC, RTC, WDT, Timer).

How firmware gets this module: the unix port's built-in ``machine`` is an
*extensible* module, so a ``machine.py`` found on ``sys.path`` /
``MICROPYPATH`` is imported instead of it (checked on the PyPI unix port,
v1.29.0-preview). ``boards/sim`` is on ``MICROPYPATH`` in the test rig and
on ``sys.path`` in ``cryo sim``; ``import machine`` in the firmware's board
layer therefore resolves here. Under CPython the same file is imported via
``sys.path``.

Every object forwards to the world (:mod:`vboard`): pins are levels in a
table, SPI transfers go to the emulated chip whose CS pin is low, the valve
pins drive the plant, inputs come from the scenario. Pin reads/writes and SPI
transfers are allocation-free (the firmware's safety path runs through them
with the heap locked).
"""

import vboard

_IN = 0
_OUT = 1


def _world():
    w = vboard.world
    if w is None:
        w = vboard.get()
    return w


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2
    DRIVE_0 = 0
    DRIVE_1 = 1
    DRIVE_2 = 2

    def __init__(self, id, mode=-1, pull=-1, value=None, **kw):
        self._id = id
        self._w = _world()
        w = self._w
        if id not in w.levels:
            w.levels[id] = 0
        self._mode = _IN
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None, **kw):
        w = self._w
        if mode != -1:
            self._mode = mode
            w.modes[self._id] = mode
        if pull != -1:
            self._pull = pull
        if value is not None and self._mode != _IN:
            w.write_pin(self._id, 1 if value else 0)

    def value(self, v=None):
        if v is None:
            return self._w.read_pin(self._id)
        if self._mode == _IN:
            return None  # writing an input only sets the output latch on boards
        self._w.write_pin(self._id, 1 if v else 0)
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def high(self):
        self.value(1)

    def low(self):
        self.value(0)

    def toggle(self):
        self.value(1 - self._w.levels[self._id])

    def mode(self, m=None):
        if m is None:
            return self._mode
        self.init(m)

    def irq(self, handler=None, trigger=3, hard=False):
        """Scenario input changes call ``handler(pin)`` at once, on the
        edges in ``trigger``; ``hard=True`` runs it with the heap locked
        (isr.dispatch), as a hard pin interrupt runs on rp2 and stm32."""
        if handler is None:
            self._w.irqs.pop(self._id, None)
        else:
            self._w.irqs[self._id] = (handler, trigger, self, bool(hard))
        return None

    def __repr__(self):
        return "Pin(%r)" % (self._id,)


class Signal:
    """Pin with optional inversion (machine.Signal)."""

    def __init__(self, pin, invert=False):
        self._pin = pin
        self._inv = 1 if invert else 0

    def value(self, v=None):
        if v is None:
            return self._pin.value() ^ self._inv
        self._pin.value((1 if v else 0) ^ self._inv)
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class SPI:
    """SPI controller; transfers go to the emulated chip whose CS is low.

    With no chip selected MISO floats high: reads give 0xFF.
    """

    MSB = 0
    LSB = 1

    def __init__(self, id=1, baudrate=1000000, polarity=0, phase=0, **kw):
        self._w = _world()
        self.id = id
        # Pin keywords as given (tests check that none are passed where a
        # port such as stm32 rejects them).
        self.pins = {}
        self.init(baudrate, polarity, phase, **kw)
        self.transfers = 0

    def init(self, baudrate=1000000, polarity=0, phase=0, **kw):
        self.baudrate = baudrate
        self.polarity = polarity
        self.phase = phase
        for k in ("sck", "mosi", "miso"):
            if k in kw:
                self.pins[k] = kw[k]

    def deinit(self):
        return None

    def readinto(self, buf, write=0):
        self.transfers += 1
        self._w.spi_transfer(None, buf)
        return None

    def read(self, nbytes, write=0):
        buf = bytearray(nbytes)
        self.readinto(buf, write)
        return bytes(buf)

    def write(self, buf):
        self.transfers += 1
        self._w.spi_transfer(buf, None)
        return None

    def write_readinto(self, wbuf, rbuf):
        self.transfers += 1
        self._w.spi_transfer(wbuf, rbuf)
        return None


class SoftSPI(SPI):
    pass


class PWM:
    """PWM output (buzzer, LEDs): records frequency and duty in the world."""

    def __init__(self, pin, freq=0, duty_u16=0, **kw):
        self._w = _world()
        self._id = pin._id if isinstance(pin, Pin) else pin
        self._state = [freq, duty_u16]
        self._w.pwm[self._id] = self._state

    def init(self, freq=None, duty_u16=None, **kw):
        if freq is not None:
            self._state[0] = freq
        if duty_u16 is not None:
            self._state[1] = duty_u16

    def freq(self, f=None):
        if f is None:
            return self._state[0]
        self._state[0] = f

    def duty_u16(self, d=None):
        if d is None:
            return self._state[1]
        self._state[1] = d

    def deinit(self):
        self._state[1] = 0


class ADC:
    """ADC: the supply-pressure transducer on the board's pressure pin."""

    # esp32's attenuation levels (the other ports have none); the emulated
    # transducer reading does not depend on them.
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3

    def __init__(self, pin, atten=None, **kw):
        self._w = _world()
        self._id = pin._id if isinstance(pin, Pin) else pin
        self.atten = atten

    def read_u16(self):
        w = self._w
        if self._id == w.adc_id:
            return w.adc_u16()
        return 0

    def read_uv(self):
        return self.read_u16() * 3300000 // 65535


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

        w = _world()
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


class WDT:
    """Watchdog: not fed within ``timeout`` ms resets the virtual board.

    Cannot be stopped or reconfigured once started (as on hardware). Real
    time: the ``cryo sim`` relay times the feeds and restarts the process;
    fast time: the runner checks after every tick.
    """

    def __init__(self, id=0, timeout=5000):
        if timeout <= 0:
            raise ValueError("WDT timeout must be > 0 ms, got %r" % (timeout,))
        self._w = _world()
        if self._w.wdt_timeout_ms == 0:
            self._w.wdt_start(timeout)

    def feed(self):
        self._w.wdt_feed()


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
        self._w = _world()
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


PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


def reset():
    _world().hard_reset("reset")


def soft_reset():
    raise SystemExit


# The codes reset_cause() returns, by the world's cause name; literal, so a
# test can delete a constant to play a port that lacks it (rp2 has no
# HARD_RESET) and still get the code.
_CAUSE_CODES = {"wdt": 3, "reset": 2, "soft": 5, "raw": 5, "deepsleep": 4}


def reset_cause():
    import os

    # the unix port's relay names the cause in the environment; the emulated
    # Cortex-M board (no environment) sets it on the world at boot
    getenv = getattr(os, "getenv", None)
    w = _world()
    c = getenv("SIM_RESET_CAUSE") if w.realtime and getenv is not None else w.reset_cause
    return _CAUSE_CODES.get(c, PWRON_RESET)


def unique_id():
    # Per flash image (set by the host: host_tools.sim.sim_uid), so two
    # virtual boards never share a serial; a RAM-only board has the fixed one.
    import os

    getenv = getattr(os, "getenv", None)  # none on the emulated Cortex-M board
    h = (getenv("SIM_UID") if getenv is not None else None) or ""
    if len(h) == 12:
        return bytes(int(h[i : i + 2], 16) for i in range(0, 12, 2))
    return b"\x53\x49\x4d\x00\x00\x01"


def freq(f=None):
    return 240000000


def idle():
    return None


def disable_irq():
    return 0


def enable_irq(state=0):
    return None


def lightsleep(ms=0):
    import time

    time.sleep_ms(ms)


def board_definition():
    """The virtual board's board.json (the sim knows its own wiring)."""
    return _world().board
