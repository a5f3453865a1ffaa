"""Register-level emulation of a MAX31856 (DS56 Rev 0).

Register map 00h-0Fh with factory defaults (CR0 00h, CR1 03h, MASK FFh, CJHF
7Fh, CJLF C0h, LTHFT 7FFFh, LTLFT 8000h, CJTO 00h). First byte after CS falls
is the address (A7 = 1 write); multibyte transfers auto-increment and wrap
(7Fh -> 00h, FFh -> 80h); unused addresses read FFh; writes to read-only
registers are ignored (CJTH/CJTL are writable only with CR0.CJ = 1).

Conversions: writing CR0 with 1SHOT (normally-off mode) starts one CJ + TC
conversion when CS rises; 1SHOT self-clears when it is done. With a ``clock``
it takes the datasheet's typical time: 143 ms (60 Hz) / 169 ms (50 Hz)
+ (samples - 1) x 33/40 ms + the open-circuit test (13/33/113 ms for OCFAULT
01/10/11); without one it completes at once. CMODE = 1 converts continuously
(82/98 ms after the first), with the open test only every 16th conversion.

Linearization like the chip: the thermocouple voltage E(T_hot) - E(T_die)
plus the CJ-equivalent voltage of the *measured* CJ (die + CJTO) is converted
back through the type's table (NIST here; the chip's LUT is within
+/-0.13 °C of it) and clamped to the LUT range (K -200..1372, T -200..400 °C)
with TC Range set. The table is the one CR1 selects, so a wrong type setting
gives the wrong temperature, as on the real chip. Voltage modes (CR1 1xxx)
report code = gain x 1.6 x 2^17 x V.

Faults: OPEN is set only when OCFAULT != 00 (an open input otherwise reads
the cold-junction temperature: V = 0, it looks *warm*); ``short_gnd`` /
``short_vcc`` model an input driven past the OV/UV thresholds: OVUV is set and
conversions are suspended (data stay stale). Comparator mode (CR0.FAULT = 0)
updates SR every conversion with 2 °C hysteresis on threshold bits; interrupt
mode latches until FAULTCLR. ``bus = 'zeros' | 'ones'`` forces MISO.
``fault_pin`` (FAULT, active low, gated by MASK) and ``drdy`` (DRDY, active
low until the result registers are read) model the two output pins.

Everything on the SPI path is integer-only; floats run in ``set_state`` and
when the type or CJ offset changes, so driver reads stay allocation-free.
"""

from cryo import thermocouple

_DEFAULTS = (0x00, 0x03, 0xFF, 0x7F, 0xC0, 0x7F, 0xFF, 0x80, 0x00, 0x00, 0, 0, 0, 0, 0, 0)
_NATIVE = {3: "K", 7: "T"}
_LUT_RANGE = {"K": (-200.0, 1372.0), "T": (-200.0, 400.0)}
_PHYS_RANGE = {"K": (-270.0, 1372.0), "T": (-270.0, 400.0)}
_OC_TEST_MS = (0, 13, 33, 113)
_HYST_TC = 256  # 2 °C in 1/128 °C codes
_HYST_CJ = 128  # 2 °C in 1/64 °C codes


def _round(x):
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


class Max31856Emu:
    SPI_PHASE = 1  # DS56: "CPHA bit polarity must be set to 1"

    def __init__(self, tc_type="K", clock=None):
        if tc_type not in _LUT_RANGE:
            raise ValueError("unknown thermocouple type %r: allowed 'K' or 'T'" % (tc_type,))
        self.tc_type = tc_type  # the probe's wire
        self.clock = clock
        self.regs = bytearray(_DEFAULTS)
        self.open_circuit = False
        self.short_gnd = False
        self.short_vcc = False
        self.bus = None
        self.selected = False
        self.conversions = 0
        self._addr = -1
        self._wrote_cr0 = False
        self._busy = False
        self._t_end = 0
        self._auto = False
        self._auto_n = 0
        self.hot_c = 25.0
        self.cold_c = 25.0
        self._cfg_key = -1
        self.drdy = 1  # DRDY pin, active low: a new result is waiting
        self.set_state(25.0, 25.0)

    # --- physics (floats) ------------------------------------------------
    def set_state(self, hot_c, cold_c):
        """True hot-junction and die temperatures (°C)."""
        self.hot_c = hot_c
        self.cold_c = cold_c
        self._compute()

    def _compute(self):
        r = self.regs
        self._cfg_key = (r[1] << 8) | r[9]
        cjto = r[9] - 256 if r[9] & 0x80 else r[9]
        cj = self.cold_c + cjto / 16.0
        cj = min(max(cj, -64.0), 127.984375)  # CJTH/L clamp
        self._cj_code = _round(cj * 64)
        self._cj_range = not (-55.0 <= self.cold_c + cjto / 16.0 <= 125.0)
        wire = self.tc_type
        plo, phi = _PHYS_RANGE[wire]
        h = min(max(self.hot_c, plo), phi)
        c = min(max(self.cold_c, -55.0), 125.0)
        v = thermocouple.emf_mv(wire, h) - thermocouple.emf_mv(wire, c)
        self._tc_code, self._tc_range = self._linearize(v, cj)
        # Open input: no thermocouple voltage at all.
        self._tc_open, self._tc_open_range = self._linearize(0.0, cj)

    def _linearize(self, v_mv, cj):
        typ = self.regs[1] & 0x0F
        if typ & 0x08:  # voltage mode, gain 8 or 32
            gain = 32 if typ & 0x04 else 8
            code = _round(gain * 1.6 * 131072 * v_mv / 1000.0)
            return min(max(code, -262144), 262143), False
        lut = _NATIVE.get(typ)
        if lut is None:  # B/E/J/N/R/S tables are not emulated
            return 0, True
        plo, phi = _PHYS_RANGE[lut]
        cj_l = min(max(cj, -55.0), 125.0)
        e = v_mv + thermocouple.emf_mv(lut, cj_l)
        elo = thermocouple.emf_mv(lut, plo)
        ehi = thermocouple.emf_mv(lut, phi)
        t = thermocouple.temperature_c(lut, min(max(e, elo), ehi))
        lo, hi = _LUT_RANGE[lut]
        # Judged on the chip's own code (1/128 °C), not on the float: at the
        # table's edge a float32 interpreter's inverse may land a hair
        # outside where a double one lands on it.
        code = _round(t * 128)
        lo, hi = _round(lo * 128), _round(hi * 128)
        out = not (lo <= code <= hi) or not (elo <= e <= ehi)
        return min(max(code, lo), hi), out

    # --- conversions (integer only) --------------------------------------
    def _conv_ms(self, first):
        r = self.regs
        hz50 = r[0] & 0x01
        avg = (r[1] >> 4) & 0x07
        n = 16 if avg >= 4 else (1 << avg)
        if first:
            ms = (169 if hz50 else 143) + (n - 1) * (40 if hz50 else 33)
        else:
            ms = (98 if hz50 else 82) + (n - 1) * (20 if hz50 else 17)
        return ms + _OC_TEST_MS[(r[0] >> 4) & 0x03]

    def _complete(self, oc_test):
        r = self.regs
        self.conversions += 1
        latched = r[0] & 0x04
        sr = r[15] if latched else 0
        if self.short_gnd or self.short_vcc:
            # OV/UV: conversions (and detection/clearing of other faults) suspended.
            r[15] = r[15] | 0x02
            r[0] = r[0] & ~0x40 & 0xFF
            return
        if self._cfg_key != ((r[1] << 8) | r[9]):
            self._compute()  # type or CJ offset changed (floats: not the read path)
        if r[0] & 0x08 == 0:
            cj = self._cj_code
            w = (cj << 2) & 0xFFFF
            r[10] = w >> 8
            r[11] = w & 0xFF
        else:
            cj = (r[10] << 6) | (r[11] >> 2)
            if cj & 0x2000:
                cj -= 0x4000
        if self.open_circuit:
            tc = self._tc_open
            rng = self._tc_open_range
        else:
            tc = self._tc_code
            rng = self._tc_range
        w = (tc << 5) & 0xFFFFFF
        r[12] = w >> 16
        r[13] = (w >> 8) & 0xFF
        r[14] = w & 0xFF
        if rng and (r[1] & 0x08) == 0:
            sr |= 0x40
        if self._cj_range:
            sr |= 0x80
        # Thresholds: LTxFT 0.0625 °C (x8 -> 1/128 codes), CJxF 1 °C (x64).
        hi = (r[5] << 8) | r[6]
        hi = (hi - 0x10000 if hi & 0x8000 else hi) << 3
        lo = (r[7] << 8) | r[8]
        lo = (lo - 0x10000 if lo & 0x8000 else lo) << 3
        cjh = (r[3] - 256 if r[3] & 0x80 else r[3]) << 6
        cjl = (r[4] - 256 if r[4] & 0x80 else r[4]) << 6
        prev = r[15]
        if tc > hi or (not latched and prev & 0x08 and tc > hi - _HYST_TC):
            sr |= 0x08
        if tc < lo or (not latched and prev & 0x04 and tc < lo + _HYST_TC):
            sr |= 0x04
        if cj > cjh or (not latched and prev & 0x20 and cj > cjh - _HYST_CJ):
            sr |= 0x20
        if cj < cjl or (not latched and prev & 0x10 and cj < cjl + _HYST_CJ):
            sr |= 0x10
        if oc_test and self.open_circuit and (r[0] & 0x30):
            sr |= 0x01
        elif not oc_test and not latched:
            sr |= prev & 0x01  # auto mode: OPEN holds until the next test
        r[15] = sr
        r[0] = r[0] & ~0x40 & 0xFF
        self.drdy = 0

    @property
    def fault_pin(self):
        """FAULT output, active low: any unmasked SR bit 5..0 (the range bits
        never drive it, DS56)."""
        return 0 if self.regs[15] & ~self.regs[2] & 0x3F else 1

    def _service(self):
        clk = self.clock
        if clk is None:
            if self._auto:
                self._auto_n += 1
                self._complete(self._auto_n % 16 == 1)
            return
        now = clk.ticks_ms()
        if self._busy and clk.diff(now, self._t_end) >= 0:
            self._busy = False
            self._complete(True)
        if self._auto:
            k = 0
            while clk.diff(now, self._t_end) >= 0 and k < 32:
                self._auto_n += 1
                self._complete(self._auto_n % 16 == 1)
                self._t_end = clk.add(self._t_end, self._conv_ms(False))
                k += 1
            if k == 32:
                self._t_end = clk.add(now, self._conv_ms(False))

    # --- register writes ---------------------------------------------------
    def _write_reg(self, a, v):
        r = self.regs
        if a == 0:
            if v & 0x02:  # FAULTCLR: interrupt mode only; self-clearing
                if r[0] & 0x04 or v & 0x04:
                    r[15] = 0
                v &= ~0x02 & 0xFF
            r[0] = v
            self._wrote_cr0 = True
        elif a <= 9:
            r[a] = v
        elif a <= 11 and r[0] & 0x08:
            r[a] = v & (0xFF if a == 10 else 0xFC)

    # --- SPI side ------------------------------------------------------------
    def select(self):
        self.selected = True
        self._addr = -1
        self._wrote_cr0 = False
        self._service()

    def deselect(self):
        self.selected = False
        if not self._wrote_cr0:
            return
        r = self.regs
        if r[0] & 0x80:  # CMODE: automatic conversions
            if not self._auto:
                self._auto = True
                self._auto_n = 0
                if self.clock is not None:
                    self._t_end = self.clock.add(self.clock.ticks_ms(), self._conv_ms(True))
            return
        self._auto = False
        if r[0] & 0x40:  # 1SHOT, normally-off mode: starts when CS rises
            if self.clock is None:
                self._complete(True)
            else:
                self._busy = True
                self._t_end = self.clock.add(self.clock.ticks_ms(), self._conv_ms(True))

    def transfer(self, wbuf, rbuf):
        n = len(rbuf) if rbuf is not None else len(wbuf)
        bus = self.bus
        i = 0
        while i < n:
            w = wbuf[i] if wbuf is not None else 0
            a = self._addr
            out = 0
            if a < 0:
                self._addr = w
            elif a & 0x80:
                self._write_reg(a & 0x7F, w)
                self._addr = 0x80 | ((a + 1) & 0x7F)
            else:
                out = self.regs[a] if a < 16 else 0xFF
                if 12 <= a <= 14 or (10 <= a <= 11 and not self.regs[0] & 0x08):
                    self.drdy = 1  # reading the result releases DRDY
                self._addr = (a + 1) & 0x7F
            if rbuf is not None:
                if bus == "zeros":
                    out = 0
                elif bus == "ones":
                    out = 0xFF
                rbuf[i] = out
            i += 1
