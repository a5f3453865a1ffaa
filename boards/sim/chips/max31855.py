"""Frame-level emulation of a MAX31855K / MAX31855T (DS55).

What the real chip does, and so what this emulator does:

- It measures its die (cold junction) and the thermocouple voltage
  V = E(T_hot) - E(T_cj) and reports ``T_cj + V / S_nom`` with the *linear*
  nominal sensitivity S_nom = 41.276 µV/°C (K) or 52.18 µV/°C (T), quantised
  to 0.25 °C (signed 14 bit). A K probe in liquid nitrogen (-196 °C) with the
  die at 25 °C therefore reads about -140.5 °C, a T probe about -100 °C.
  (Rounding to the nearest LSB is assumed; the datasheet does not say.)
- The die temperature is reported to 0.0625 °C (signed 12 bit).
- Faults: open input -> OC + FAULT (D16) and the TC field reads 0x1FFF
  (+2047.75 °C); short to GND/VCC -> SCG/SCV + FAULT with a plausible TC
  value (a driver must look at the bits). ``bus = 'zeros' | 'ones'`` models a
  stuck MISO line (0x00000000 / 0xFFFFFFFF frames).
- The frame is latched when CS falls; bits after D0 read 0. With a ``clock``
  new values appear only once per conversion (70 ms typical); without one
  every ``set_state`` is visible at the next read.

Frame building at ``select()`` is integer-only (floats run in ``set_state``),
so driver reads through the emulator can be proved allocation-free.
"""

from cryo import thermocouple

S_NOM_MV = {"K": 0.041276, "T": 0.05218}
T_RANGE = {"K": (-270.0, 1372.0), "T": (-270.0, 400.0)}
CONV_MS = 70  # DS55 t_CONV typical


def _round(x):
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


class Max31855Emu:
    SPI_PHASE = 0  # SPI mode 0: data change on the falling edge

    def __init__(self, tc_type="K", clock=None):
        if tc_type not in S_NOM_MV:
            raise ValueError("unknown MAX31855 variant %r: allowed 'K' or 'T'" % (tc_type,))
        self.tc_type = tc_type
        self.clock = clock
        self.open_circuit = False
        self.short_gnd = False
        self.short_vcc = False
        self.bus = None  # None, 'zeros' or 'ones'
        self._frame = bytearray(4)
        self._pos = 0
        self.selected = False
        self.reads = 0
        self._tc = 0  # latched codes (output)
        self._cj = 0
        self._ptc = 0  # codes of the present state (next conversion)
        self._pcj = 0
        self._t_conv = clock.ticks_ms() if clock is not None else 0
        self.hot_c = 25.0
        self.cold_c = 25.0
        self.set_state(25.0, 25.0)
        self._tc = self._ptc
        self._cj = self._pcj

    def set_state(self, hot_c, cold_c):
        """True hot-junction and die temperatures (°C)."""
        self.hot_c = hot_c
        self.cold_c = cold_c
        lo, hi = T_RANGE[self.tc_type]
        h = min(max(hot_c, lo), hi)
        c = min(max(cold_c, -55.0), 125.0)  # die limits; E(c) needs a valid range
        v = thermocouple.emf_mv(self.tc_type, h) - thermocouple.emf_mv(self.tc_type, c)
        reported = cold_c + v / S_NOM_MV[self.tc_type]
        self._ptc = min(max(_round(reported / 0.25), -8192), 8191)
        self._pcj = min(max(_round(cold_c / 0.0625), -2048), 2047)

    def linear_reading(self):
        """What the chip reports for the present state, °C (quantised)."""
        return self._ptc * 0.25

    # --- SPI side (integer only) -------------------------------------------
    def select(self):
        self.selected = True
        self._pos = 0
        clk = self.clock
        if clk is None:
            self._tc = self._ptc
            self._cj = self._pcj
        else:
            now = clk.ticks_ms()
            if clk.diff(now, self._t_conv) >= CONV_MS:
                self._tc = self._ptc
                self._cj = self._pcj
                self._t_conv = now
        f = self._frame
        if self.bus == "zeros":
            f[0] = f[1] = f[2] = f[3] = 0
            return
        if self.bus == "ones":
            f[0] = f[1] = f[2] = f[3] = 0xFF
            return
        tc = self._tc & 0x3FFF
        low = 0
        if self.open_circuit:
            tc = 0x1FFF
            low |= 0x01
        if self.short_gnd:
            low |= 0x02
        if self.short_vcc:
            low |= 0x04
        cj = self._cj & 0xFFF
        f[0] = tc >> 6
        f[1] = ((tc << 2) & 0xFC) | (1 if low else 0)
        f[2] = cj >> 4
        f[3] = ((cj << 4) & 0xF0) | low

    def deselect(self):
        self.selected = False
        self.reads += 1

    def transfer(self, wbuf, rbuf):
        if rbuf is None:
            return
        n = len(rbuf)
        i = 0
        f = self._frame
        while i < n:
            p = self._pos
            rbuf[i] = f[p] if p < 4 else (0xFF if self.bus == "ones" else 0)
            self._pos = p + 1
            i += 1
