"""MAX31855K / MAX31855T thermocouple-to-digital converter (read-only SPI).

SPI mode 0 (CPOL=0, CPHA=0), up to 5 MHz, no MOSI. One reading = one 32-bit
frame clocked out while CS is low (DS55 Tables 2/3)::

    D31..D18  TC, signed 14-bit, 0.25 °C/LSB   (chip's *linear* scale)
    D17       reserved (0)      D16  FAULT (any of SCV/SCG/OC)
    D15..D4   CJ, signed 12-bit, 0.0625 °C/LSB (die temperature)
    D3        reserved (0)      D2 SCV   D1 SCG   D0 OC

The chip converts continuously (70 ms typ, 100 ms max per conversion) and only
updates the frame while CS is high; polling faster returns the same frame.

The chip assumes a straight line, V = S_nom (T - T_CJ) with S_nom 41.276 µV/°C
(K) or 52.18 µV/°C (T), so a K probe in liquid nitrogen (-196 °C) reports
about -140 °C. :attr:`temperature` applies the NIST correction with TC and
CJ from the *same* frame: back out V = (T_TC - T_CJ) S_nom, add E(T_CJ), invert
with the NIST ITS-90 function (Newton below -200 °C, so it never raises there).

``read_raw()`` is the safety path: one SPI transfer into a preallocated buffer
and integer decoding, allocation-free. ``temperature_cc`` (integer centi-°C)
applies the NIST correction in integer fixed point (:mod:`cryo.sensing.nist_fixed`,
< 0.005 °C from the float NIST functions) and is allocation-free too, so the
safety path and the log can use it; ``temperature`` is the same figure in
m°C resolution as one float (one boxed float per reading instead of about a
hundred). ``cold_junction`` / ``code_for`` use floats (the control path).
"""

from micropython import const

from cryo import thermocouple
from cryo.sensing import nist_fixed
from cryo.sensing.faults import (  # noqa: F401 - re-exported for callers
    FAULT_BUS,
    FAULT_D16,
    FAULT_NO_DATA,
    FAULT_OC,
    FAULT_SCG,
    FAULT_SCV,
)

TC_LSB_C = 0.25  # °C per tc_code LSB (chip's linear scale)
CJ_LSB_C = 0.0625  # °C per cj_code LSB
TC_CODE_MIN = -8192
TC_CODE_MAX = 8191

# Nominal sensitivities the chip assumes (DS55 Table 1), in mV/°C.
S_NOM_MV = {"K": 0.041276, "T": 0.05218}
# The same in nV per 0.25 °C (one TC LSB; exact integers): the integer path
# computes V_TC = (4 tc_code - cj_code) * S / 4 nV, both codes in 1/16 °C.
S_NOM_NV4 = {"K": 10319, "T": 13045}
# EMF range accepted by the integer path, nV: the NIST table ends (as in
# correct()) and one TC LSB of voltage (0.25 °C x S_nom) beyond them.
_EMF_LO_NV = {"K": -6458000, "T": -6258000}
_EMF_HI_NV = {"K": 54886000, "T": 20872000}

_B1_D16 = const(0x01)
_B1_D17 = const(0x02)  # reserved, reads 0
_B3_OC = const(0x01)
_B3_SCG = const(0x02)
_B3_SCV = const(0x04)
_B3_D3 = const(0x08)  # reserved, reads 0
_B3_CAUSES = const(0x07)
_TC_SIGN = const(0x2000)
_TC_SPAN = const(0x4000)
_CJ_SIGN = const(0x800)
_CJ_SPAN = const(0x1000)
_FAULT_OC = const(0x0001)
_FAULT_SCG = const(0x0002)
_FAULT_SCV = const(0x0004)
_FAULT_BUS = const(0x0008)
_FAULT_D16 = const(0x0010)
_OPEN_CODE = const(0x1FFF)
# code_for's E(T) cache for the temperatures callers ask to keep (the limit
# block's ~11 per driver: limits, setpoint, slope probes; the channel's
# plausibility range): a cold-junction resync then evaluates one NIST
# polynomial per driver instead of ~20. 24 slots leave room for a few
# setpoint changes (4 temperatures each) before round robin replaces one.
_EMF_SLOTS = const(24)


def correct(tc_type, tc_c, cj_c):
    """NIST-corrected hot-junction temperature from the chip's linear reading
    ``tc_c`` and its cold junction ``cj_c`` (both °C, same frame), or None if
    the implied EMF lies more than one LSB outside the NIST range (-270 °C …
    top of range)."""
    e = (tc_c - cj_c) * S_NOM_MV[tc_type] + thermocouple.emf_mv(tc_type, cj_c)
    lo, hi = (
        (thermocouple.K_EMF_MIN, thermocouple.K_EMF_MAX)
        if tc_type == "K"
        else (thermocouple.T_EMF_MIN, thermocouple.T_EMF_MAX)
    )
    # Within one LSB of voltage (0.25 °C x S_nom) of the ends: quantisation,
    # clamp to the end of the range; further out: not a thermocouple reading.
    lsb = 0.25 * S_NOM_MV[tc_type]
    if not (lo - lsb <= e <= hi + lsb):
        return None
    return thermocouple.temperature_c(tc_type, min(max(e, lo), hi))


def correct_mc(tc_type, tc_code, cj_code):
    """Integer twin of :func:`correct` on raw codes: NIST-corrected
    temperature in m°C, or None outside the NIST range by more than one LSB.
    Allocation-free given the looked-up constants (see the driver)."""
    return _correct_mc(
        nist_fixed.TABLES[tc_type],
        S_NOM_NV4[tc_type],
        _EMF_LO_NV[tc_type],
        _EMF_HI_NV[tc_type],
        tc_code,
        cj_code,
        nist_fixed.emf_nv(nist_fixed.TABLES[tc_type], cj_code),
    )


def _correct_mc(table, s4, lo, hi, tc_code, cj_code, e_cj):
    # V_TC = (T_TC - T_CJ) S_nom with both in 1/16 °C: (4 tc - cj) * s4 / 4,
    # |product| < 4.9e8 < 2**30; rounded to the nearest nV.
    e = ((((tc_code << 2) - cj_code) * s4 + 2) >> 2) + e_cj
    lsb = s4  # one TC LSB (0.25 °C of the linear scale) in nV
    if e < lo - lsb or e > hi + lsb:
        return None
    if e < lo:
        e = lo
    elif e > hi:
        e = hi
    return nist_fixed.temp_mc(table, e)


def linear_reading(tc_type, hot_c, cj_c):
    """What the chip's linear model reports (°C, unquantised) for a true
    hot junction ``hot_c`` with its die at ``cj_c``: T_CJ + V_TC / S_nom."""
    v = thermocouple.emf_mv(tc_type, hot_c) - thermocouple.emf_mv(tc_type, cj_c)
    return cj_c + v / S_NOM_MV[tc_type]


class MAX31855:
    """Driver for one MAX31855 on an injected SPI bus and CS pin.

    ``spi`` follows machine.SPI (mode 0, <= 5 MHz, configured by the board);
    ``cs`` follows machine.Pin (output, idles high). ``tc_type`` is the chip
    variant: "K" (MAX31855K) or "T" (MAX31855T). ``spi_mode_switch=True``
    re-inits the bus to mode 0 before every read, for a bus shared with a
    MAX31856 (mode 1); the port's ``SPI.init`` must then keep the baud rate.
    """

    def __init__(self, spi, cs, tc_type="K", spi_mode_switch=False):
        if tc_type not in S_NOM_MV:
            raise ValueError("unknown MAX31855 variant %r: allowed 'K' or 'T'" % (tc_type,))
        self._spi = spi
        self._cs = cs
        self.tc_type = tc_type
        self.tc_lsb_c = TC_LSB_C
        self.cj_lsb_c = CJ_LSB_C
        self._buf = bytearray(4)
        self.tc_code = 0
        self.cj_code = 0
        self.faults = FAULT_NO_DATA
        self._mode_switch = spi_mode_switch
        # Integer correction constants, looked up once (no dict lookups or
        # string hashing per reading), and the cold-junction EMF cache: the
        # die temperature moves slowly, E(T_CJ) is recomputed only when
        # cj_code changes.
        self._table = nist_fixed.TABLES[tc_type]
        self._s4 = S_NOM_NV4[tc_type]
        self._emf_lo = _EMF_LO_NV[tc_type]
        self._emf_hi = _EMF_HI_NV[tc_type]
        self._cj_for_emf = 0
        self._cj_emf = 0  # E(0 °C) = 0
        # Last floats handed out, keyed by the integer they came from.
        self._cj_for_c = 0
        self._cj_c = 0.0
        self._t_for_c = 0
        self._t_c = 0.0
        self._cf_cj = None  # code_for's cached E(T_CJ), keyed by cj_c
        self._cf_e = 0.0
        self._ef_t = [None] * _EMF_SLOTS  # code_for's E(T) cache, keyed by T
        self._ef_e = [0.0] * _EMF_SLOTS
        self._ef_next = 0  # next slot to replace (round robin)
        cs.value(1)

    def read_raw(self):
        """Read one frame; decode ``tc_code``, ``cj_code`` and ``faults``.

        Returns ``faults`` (0 = valid). Allocation-free. All-zero and all-one
        frames (stuck MISO, missing chip), set reserved bits, a FAULT bit
        that disagrees with the cause bits and the open-input code 0x1FFF
        are all faults.
        """
        buf = self._buf
        if self._mode_switch:
            self._spi.init(polarity=0, phase=0)
        self._cs.value(0)
        self._spi.readinto(buf)
        self._cs.value(1)
        b0 = buf[0]
        b1 = buf[1]
        b2 = buf[2]
        b3 = buf[3]
        tc = (b0 << 6) | (b1 >> 2)
        cj = (b2 << 4) | (b3 >> 4)
        f = 0
        if (b0 | b1 | b2 | b3) == 0 or (b0 & b1 & b2 & b3) == 0xFF:
            f = _FAULT_BUS
        else:
            if (b1 & _B1_D17) or (b3 & _B3_D3):
                f = _FAULT_BUS
            if b3 & _B3_OC:
                f |= _FAULT_OC
            if b3 & _B3_SCG:
                f |= _FAULT_SCG
            if b3 & _B3_SCV:
                f |= _FAULT_SCV
            if b1 & _B1_D16:
                f |= _FAULT_D16
                if not (b3 & _B3_CAUSES):
                    f |= _FAULT_BUS
            elif b3 & _B3_CAUSES:
                f |= _FAULT_BUS
            if tc == _OPEN_CODE:
                f |= _FAULT_OC
        if tc & _TC_SIGN:
            tc -= _TC_SPAN
        if cj & _CJ_SIGN:
            cj -= _CJ_SPAN
        self.tc_code = tc
        self.cj_code = cj
        self.faults = f
        return f

    def poll(self, now_ms=0):
        """Supervision hook: read a frame now (the chip always has one).
        Returns True (a new sample is available). Allocation-free."""
        self.read_raw()
        return True

    @property
    def uncorrected(self):
        """The chip's own linear reading in °C (what naive drivers show)."""
        return self.tc_code * TC_LSB_C

    @property
    def cold_junction(self):
        """Cold-junction (die) temperature in °C, or None after a bus fault."""
        if self.faults & (_FAULT_BUS | FAULT_NO_DATA):
            return None
        cj = self.cj_code
        if cj != self._cj_for_c:  # same code: hand back the same float object
            self._cj_c = cj * CJ_LSB_C
            self._cj_for_c = cj
        return self._cj_c

    def temperature_mc(self):
        """NIST-corrected hot-junction temperature in m°C (int) from the last
        frame, or None if that frame carried any fault or the implied EMF is
        outside the NIST range. TC and CJ from the same frame; integer-only,
        allocation-free."""
        if self.faults:
            return None
        cj = self.cj_code
        if cj != self._cj_for_emf:
            self._cj_emf = nist_fixed.emf_nv(self._table, cj)
            self._cj_for_emf = cj
        return _correct_mc(
            self._table, self._s4, self._emf_lo, self._emf_hi, self.tc_code, cj, self._cj_emf
        )

    @property
    def temperature_cc(self):
        """The corrected temperature in centi-°C (int, rounded), or None.
        Allocation-free: for the safety path and the treatment log."""
        t = self.temperature_mc()
        if t is None:
            return None
        return (t + 5) // 10

    @property
    def temperature(self):
        """NIST-corrected hot-junction temperature in °C (0.001 °C
        resolution) from the last frame, or None if that frame carried any
        fault. One float: the integer correction divided once."""
        t = self.temperature_mc()
        if t is None:
            return None
        if t != self._t_for_c:  # unchanged reading: no new float
            self._t_c = t / 1000
            self._t_for_c = t
        return self._t_c

    def code_for(self, temp_c, cj_c, keep=False):
        """The tc_code this chip reports for a true hot junction ``temp_c``
        with its die at ``cj_c`` (nearest LSB, clamped to 14 bits). Used to
        turn a °C limit into a raw code at the present cold junction.
        ``keep``: ``temp_c`` is a standing limit, converted again at every
        cold-junction move: keep its EMF (a one-off probe temperature would
        only push a limit out of the cache)."""
        # linear_reading() with E(T_CJ) and the kept E(T) cached: a limit
        # block places ~20 limits at one cold junction, and rebuilding it
        # after the cold junction moved needs only the new E(T_CJ) (same
        # float operations, same result; the rebuild runs inside a tick).
        if cj_c != self._cf_cj:
            self._cf_e = thermocouple.emf_mv(self.tc_type, cj_c)
            self._cf_cj = cj_c
        if keep:
            e = self._emf(temp_c)
        else:
            e = thermocouple.emf_mv(self.tc_type, temp_c)
        v = e - self._cf_e
        t = cj_c + v / S_NOM_MV[self.tc_type]
        code = int(t / TC_LSB_C + (0.5 if t >= 0 else -0.5))
        return min(max(code, TC_CODE_MIN), TC_CODE_MAX)

    def _emf(self, temp_c):
        # E(temp_c) in mV from the bounded cache (no growth: fixed slots).
        keys = self._ef_t
        i = 0
        while i < _EMF_SLOTS:
            if keys[i] == temp_c:
                return self._ef_e[i]
            i += 1
        e = thermocouple.emf_mv(self.tc_type, temp_c)
        i = self._ef_next
        keys[i] = temp_c
        self._ef_e[i] = e
        self._ef_next = (i + 1) % _EMF_SLOTS
        return e
