"""``machine.Pin`` and ``machine.Signal`` of the virtual board: digital pins
as levels in the world's table (boards/sim/vboard.py).

A write drives the level (a valve pin drives the plant, a chip-select pin
selects an emulated chip); a read gives the level the scenario set. Both
are allocation-free: the firmware's safety path closes the valves through
them with the heap locked.
"""

import vboard

_IN = 0


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
        self._w = vboard.get()
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
