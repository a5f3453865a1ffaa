"""A tiny SPI bus with chip-select pins that route to emulated chips.

The same routing the virtual board's ``machine.SPI`` does, small enough for
unit tests: ``bus = SpiBus(); cs = bus.attach(Max31855Emu())`` gives a
machine.Pin-like CS whose falling edge selects the chip; ``bus`` offers the
machine.SPI transfer methods (``readinto(buf, write=0)``, ``write(buf)``,
``write_readinto(wbuf, rbuf)``). All transfer paths are allocation-free so a
driver's raw read can be proved allocation-free through it.
"""


class CsPin:
    """machine.Pin-like chip select (active low) for one emulated chip."""

    def __init__(self, bus, chip):
        self._bus = bus
        self._chip = chip
        self._v = 1

    def value(self, v=None):
        if v is None:
            return self._v
        v = 1 if v else 0
        if v == self._v:
            return None
        self._v = v
        if v == 0:
            self._bus._sel = self._chip
            self._chip.select()
        else:
            self._chip.deselect()
            if self._bus._sel is self._chip:
                self._bus._sel = None
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class SpiBus:
    """machine.SPI-like bus; transfers go to the selected chip (none: MISO
    floats high, reads 0xFF, which drivers must reject as a bus fault).

    ``phase`` (CPHA) is None until someone calls ``init(phase=...)``; from then
    on a chip whose ``SPI_PHASE`` differs is read on the wrong clock edge and
    every byte arrives shifted by one bit, as on real hardware (MAX31855:
    mode 0, MAX31856: CPHA = 1).
    """

    def __init__(self, phase=None):
        self._sel = None
        self.transfers = 0
        self.phase = phase
        self.polarity = 0
        self.inits = 0

    def attach(self, chip):
        return CsPin(self, chip)

    def readinto(self, buf, write=0):
        self.transfers += 1
        chip = self._sel
        if chip is None:
            _fill(buf, 0xFF)
            return None
        chip.transfer(None, buf)
        self._skew(chip, buf)
        return None

    def write(self, buf):
        self.transfers += 1
        chip = self._sel
        if chip is not None:
            chip.transfer(buf, None)
        return None

    def write_readinto(self, wbuf, rbuf):
        self.transfers += 1
        chip = self._sel
        if chip is None:
            _fill(rbuf, 0xFF)
            return None
        chip.transfer(wbuf, rbuf)
        self._skew(chip, rbuf)
        return None

    def _skew(self, chip, buf):
        # Wrong CPHA: the master samples one edge late -> one bit shift.
        ph = self.phase
        if ph is None or ph == getattr(chip, "SPI_PHASE", ph):
            return
        carry = 1
        i = 0
        n = len(buf)
        while i < n:
            b = buf[i]
            buf[i] = ((b >> 1) | (carry << 7)) & 0xFF
            carry = b & 1
            i += 1

    def read(self, n, write=0):
        buf = bytearray(n)
        self.readinto(buf, write)
        return bytes(buf)

    def init(self, baudrate=None, polarity=None, phase=None):
        # Positional keywords only (no **kw): allocation-free.
        self.inits += 1
        if polarity is not None:
            self.polarity = polarity
        if phase is not None:
            self.phase = phase
        return None

    def deinit(self):
        return None


def _fill(buf, v):
    i = 0
    n = len(buf)
    while i < n:
        buf[i] = v
        i += 1
