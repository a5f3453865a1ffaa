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

The classes with state of their own live in their own modules and are
imported here, so the firmware sees one ``machine``: Pin and Signal
(machine_pin.py), RTC (machine_rtc.py), Timer (machine_timer.py).
"""

import vboard
from machine_pin import Pin, Signal  # noqa: F401 - machine's API
from machine_rtc import RTC  # noqa: F401 - machine's API
from machine_timer import Timer  # noqa: F401 - machine's API


class SPI:
    """SPI controller; transfers go to the emulated chip whose CS is low.

    With no chip selected MISO floats high: reads give 0xFF.
    """

    MSB = 0
    LSB = 1

    def __init__(self, id=1, baudrate=1000000, polarity=0, phase=0, **kw):
        self._w = vboard.get()
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
    """PWM output (buzzer, LEDs, a proportional valve): records frequency and
    duty in the world; a duty written on the valve's pin drives the plant
    (allocation-free: the firmware's safety path closes the valve with the
    heap locked)."""

    def __init__(self, pin, freq=0, duty_u16=0, **kw):
        self._w = vboard.get()
        self._id = pin._id if isinstance(pin, Pin) else pin
        self._state = [freq, duty_u16]
        self._w.pwm[self._id] = self._state
        self._w.pwm_edge(self._id)

    def init(self, freq=None, duty_u16=None, **kw):
        if freq is not None:
            self._state[0] = freq
        if duty_u16 is not None:
            self._state[1] = duty_u16
            self._w.pwm_edge(self._id)

    def freq(self, f=None):
        if f is None:
            return self._state[0]
        self._state[0] = f

    def duty_u16(self, d=None):
        if d is None:
            return self._state[1]
        self._state[1] = d
        self._w.pwm_edge(self._id)

    def deinit(self):
        self._state[1] = 0
        self._w.pwm_edge(self._id)


class ADC:
    """ADC: the supply-pressure transducer on the board's pressure pin."""

    # esp32's attenuation levels (the other ports have none); the emulated
    # transducer reading does not depend on them.
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3

    def __init__(self, pin, atten=None, **kw):
        self._w = vboard.get()
        self._id = pin._id if isinstance(pin, Pin) else pin
        self.atten = atten

    def read_u16(self):
        w = self._w
        if self._id == w.adc_id:
            return w.adc_u16()
        return 0

    def read_uv(self):
        return self.read_u16() * 3300000 // 65535


class WDT:
    """Watchdog: not fed within ``timeout`` ms resets the virtual board.

    Cannot be stopped or reconfigured once started (as on hardware). Real
    time: the ``cryo sim`` relay times the feeds and restarts the process;
    fast time: the runner checks after every tick.
    """

    def __init__(self, id=0, timeout=5000):
        if timeout <= 0:
            raise ValueError("WDT timeout must be > 0 ms, got %r" % (timeout,))
        self._w = vboard.get()
        if self._w.wdt_timeout_ms == 0:
            self._w.wdt_start(timeout)

    def feed(self):
        self._w.wdt_feed()


PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


def reset():
    vboard.get().hard_reset("reset")


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
    w = vboard.get()
    c = getenv("SIM_RESET_CAUSE") if w.realtime and getenv is not None else w.reset_cause
    return _CAUSE_CODES.get(c, PWRON_RESET)


def unique_id():
    # The id of the board's flash chip, kept in its image (host_tools.sim.sim_uid),
    # so two virtual boards never share a serial: from the environment on the
    # unix port, from the world on the emulated Cortex-M board (no environment)
    import os

    getenv = getattr(os, "getenv", None)
    h = (getenv("SIM_UID") if getenv is not None else None) or vboard.get().uid or ""
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
    return vboard.get().board
