"""MAX31856 precision thermocouple-to-digital converter (register SPI).

SPI mode 1 (CPHA=1; the chip detects CPOL at CS fall), up to 5 MHz. First
byte after CS falls is the address: A7=0 read (00h-0Fh), A7=1 write
(80h-8Bh); multibyte transfers auto-increment (DS56 Table 6).

The chip linearizes on chip (LUT: K -0.13/+0.12 °C, T +/-0.07 °C) down to
-200 °C, below which it clamps and sets TC Range. Configuration this driver
always applies (the reasons are in docs/sensing.md):

- normally-off mode with **one-shot** conversions started by :meth:`start`
  and collected later (:meth:`ready` / :meth:`collect`), so the control loop
  never waits the 143-185 ms a conversion takes;
- **open-circuit detection enabled** (OCFAULT 01/10/11, never 00): in one-shot
  mode the test runs on every conversion (in auto mode only every 16th);
- comparator (live) or latched (interrupt) fault mode, 50/60 Hz notch,
  averaging 1/2/4/8/16, TC and CJ fault thresholds, CJ offset trim (CJTO);
- every :meth:`start` rewrites CR0 and CR1 with the 1SHOT bit, and every
  ``verify_every`` collects the whole configuration is read back and
  rewritten if it differs (a brown-out resets CR0 to 00h: OC detection off).

The settings are checked and encoded once, into the CR0..CJTO image, by
``cryo.sensing.max31856_config``, with the conversion times they imply.

Raw codes: ``tc_code`` signed 19-bit, 0.0078125 °C/LSB (1/128 °C);
``cj_code`` signed 14-bit, 0.015625 °C/LSB (1/64 °C). ``start``, ``ready``,
``collect`` and ``poll`` are allocation-free.
"""

from micropython import const

from cryo.sensing.faults import (  # noqa: F401 - re-exported for callers
    FAULT_BUS,
    FAULT_CJ_HIGH,
    FAULT_CJ_LOW,
    FAULT_CJ_RANGE,
    FAULT_CONFIG,
    FAULT_NO_DATA,
    FAULT_OC,
    FAULT_OVUV,
    FAULT_TC_HIGH,
    FAULT_TC_LOW,
    FAULT_TC_RANGE,
    FAULT_TIMEOUT,
)
from cryo.sensing.max31856_config import TC_RANGE_C, conversion_ms, register_image

TC_LSB_C = 0.0078125  # °C per tc_code LSB
CJ_LSB_C = 0.015625  # °C per cj_code LSB
TC_CODES_PER_C = 128

# Registers the conversion cycle uses (read address; write = address | 0x80);
# the configuration registers are cryo.sensing.max31856_config's.
_REG_CR0 = const(0x00)
_REG_CJTH = const(0x0A)  # CJTH CJTL LTCBH LTCBM LTCBL SR: one 6-byte read
_WRITE = const(0x80)

# CR0 bits
_CR0_1SHOT = const(0x40)
_CR0_FAULTCLR = const(0x02)

# SR bits
_SR_CJRANGE = const(0x80)
_SR_TCRANGE = const(0x40)
_SR_CJHIGH = const(0x20)
_SR_CJLOW = const(0x10)
_SR_TCHIGH = const(0x08)
_SR_TCLOW = const(0x04)
_SR_OVUV = const(0x02)
_SR_OPEN = const(0x01)

_F_OC = const(0x0001)
_F_BUS = const(0x0008)
_F_OVUV = const(0x0020)
_F_TC_RANGE = const(0x0040)
_F_CJ_RANGE = const(0x0080)
_F_TC_HIGH = const(0x0100)
_F_TC_LOW = const(0x0200)
_F_CJ_HIGH = const(0x0400)
_F_CJ_LOW = const(0x0800)
_F_TIMEOUT = const(0x1000)
_F_CONFIG = const(0x2000)


class MAX31856:
    """Driver for one MAX31856 on an injected SPI bus (mode 1) and CS pin.

    Parameters (all checked, ValueError names the allowed values):
    ``tc_type`` "K" or "T"; ``averaging`` 1/2/4/8/16 samples; ``mains_hz``
    50 or 60 (notch); ``oc_mode`` 1 (source < 5 kΩ), 2 (5-40 kΩ, tau < 2 ms)
    or 3 (5-40 kΩ, tau > 2 ms) - 0 (disabled) is refused; ``latched``
    False = comparator mode (bits follow the condition, 2 °C hysteresis),
    True = interrupt mode (bits latch until :meth:`clear_faults`);
    ``tc_low_c``/``tc_high_c`` linearized-temperature fault thresholds
    (0.0625 °C steps), ``cj_low_c``/``cj_high_c`` CJ thresholds (1 °C steps),
    ``cj_offset_c`` CJ trim added by the chip (-8 … +7.9375 °C, 0.0625 steps),
    ``fault_mask`` MASK register (1 = that fault does not drive the FAULT pin;
    0x00 = every fault asserts it), ``verify_every`` collects between
    configuration read-backs (0 = never), ``clock`` a cryo.clock clock
    (optional): with it :meth:`ready` does not poll the chip before the
    typical conversion time and reports a conversion that takes twice its
    maximum time. ``spi_mode_switch=True`` re-inits the bus to mode 1
    (CPHA = 1, required) before every transaction, for a bus shared with a
    MAX31855 (mode 0).
    """

    def __init__(
        self,
        spi,
        cs,
        tc_type="K",
        averaging=1,
        mains_hz=50,
        oc_mode=1,
        latched=False,
        tc_low_c=-2048.0,
        tc_high_c=2047.9375,
        cj_low_c=-64,
        cj_high_c=127,
        cj_offset_c=0.0,
        fault_mask=0x00,
        verify_every=16,
        clock=None,
        spi_mode_switch=False,
    ):
        cfg = register_image(
            tc_type=tc_type,
            averaging=averaging,
            mains_hz=mains_hz,
            oc_mode=oc_mode,
            latched=latched,
            tc_low_c=tc_low_c,
            tc_high_c=tc_high_c,
            cj_low_c=cj_low_c,
            cj_high_c=cj_high_c,
            cj_offset_c=cj_offset_c,
            fault_mask=fault_mask,
        )
        self._spi = spi
        self._cs = cs
        self.tc_type = tc_type
        self.tc_lsb_c = TC_LSB_C
        self.cj_lsb_c = CJ_LSB_C
        self.averaging = averaging
        self.mains_hz = mains_hz
        self.oc_mode = oc_mode
        self.latched = bool(latched)
        self.verify_every = verify_every
        self._clock = clock
        self._mode_switch = spi_mode_switch
        self._cfg = cfg  # the whole configuration as one multibyte write
        cr0 = cfg[1]
        self._start_buf = bytearray((_WRITE | _REG_CR0, cr0 | _CR0_1SHOT, cfg[2]))  # CR0, CR1
        self._clr_buf = bytearray((_WRITE | _REG_CR0, cr0 | _CR0_FAULTCLR))
        self._addr = bytearray(1)
        self._rx1 = bytearray(1)
        self._rx6 = bytearray(6)  # CJTH CJTL LTCBH LTCBM LTCBL SR
        self._rxcfg = bytearray(len(cfg) - 1)
        self.conv_typ_ms, self.conv_max_ms = conversion_ms(mains_hz, averaging, oc_mode)
        self._timeout_ms = 2 * self.conv_max_ms
        self.tc_code = 0
        self.cj_code = 0
        self.sr = 0
        self.faults = FAULT_NO_DATA
        self.busy = False
        # Last floats handed out, keyed by the code they came from (an
        # unchanged reading allocates nothing on a port that boxes floats).
        self._tc_for_c = 0
        self._tc_c = 0.0
        self._cj_for_c = 0
        self._cj_c = 0.0
        self._t0 = 0
        self._n = 0
        cs.value(1)
        self.configure()

    # --- bus primitives (allocation-free) --------------------------------
    def _read(self, reg, buf):
        self._addr[0] = reg
        if self._mode_switch:
            self._spi.init(polarity=0, phase=1)
        self._cs.value(0)
        self._spi.write(self._addr)
        self._spi.readinto(buf)
        self._cs.value(1)

    def _write(self, buf):
        if self._mode_switch:
            self._spi.init(polarity=0, phase=1)
        self._cs.value(0)
        self._spi.write(buf)
        self._cs.value(1)

    # --- configuration ---------------------------------------------------
    def configure(self):
        """Write CR0..CJTO in one multibyte transfer (normally-off mode)."""
        self._write(self._cfg)
        self.busy = False

    def verify_config(self):
        """Read CR0..CJTO back; rewrite and return False if any differs
        (1SHOT/FAULTCLR ignored). Allocation-free."""
        rx = self._rxcfg
        self._read(_REG_CR0, rx)
        cfg = self._cfg
        ok = (rx[0] & ~(_CR0_1SHOT | _CR0_FAULTCLR)) & 0xFF == cfg[1]
        i = 1
        while i < len(rx):
            if rx[i] != cfg[1 + i]:
                ok = False
            i += 1
        if not ok:
            self._write(cfg)
        return ok

    def clear_faults(self):
        """Latched mode: write FAULTCLR (clears SR; a persisting fault
        reasserts at the next conversion)."""
        self._write(self._clr_buf)

    # --- non-blocking conversion -----------------------------------------
    def start(self, now_ms=None):
        """Start a one-shot conversion (CR0 and CR1 rewritten, 1SHOT set; the
        chip starts when CS rises). Returns at once."""
        self._write(self._start_buf)
        self.busy = True
        clk = self._clock
        if clk is not None:
            self._t0 = clk.ticks_ms() if now_ms is None else now_ms

    def ready(self, now_ms=None):
        """True once the conversion started by :meth:`start` can be
        collected: the chip cleared 1SHOT (one register read), or, with a
        clock, the conversion has taken twice its maximum time (``collect``
        then reports FAULT_TIMEOUT). With a clock the chip is not polled
        before the typical conversion time. Allocation-free."""
        if not self.busy:
            return False
        clk = self._clock
        if clk is not None:
            if now_ms is None:
                now_ms = clk.ticks_ms()
            el = clk.diff(now_ms, self._t0)
            if el < self.conv_typ_ms:
                return False
            if el >= self._timeout_ms:
                return True
        self._read(_REG_CR0, self._rx1)
        return not (self._rx1[0] & _CR0_1SHOT)

    def collect(self):
        """Read CJTH..SR in one 6-byte transfer and decode ``cj_code``,
        ``tc_code``, ``sr`` and ``faults``. Returns ``faults``."""
        timeout = False
        if self.busy:
            self._read(_REG_CR0, self._rx1)
            timeout = bool(self._rx1[0] & _CR0_1SHOT)
        self.busy = False
        rx = self._rx6
        self._read(_REG_CJTH, rx)
        b0 = rx[0]
        b1 = rx[1]
        b2 = rx[2]
        b3 = rx[3]
        b4 = rx[4]
        sr = rx[5]
        cj = (b0 << 6) | (b1 >> 2)
        if cj & 0x2000:
            cj -= 0x4000
        tc = (b2 << 11) | (b3 << 3) | (b4 >> 5)
        if tc & 0x40000:
            tc -= 0x80000
        f = 0
        if (b0 | b1 | b2 | b3 | b4 | sr) == 0 or (b0 & b1 & b2 & b3 & b4 & sr) == 0xFF:
            f = _F_BUS
        else:
            if b1 & 0x03:  # CJTL bits 1..0 always read 0
                f = _F_BUS
            if sr & _SR_OPEN:
                f |= _F_OC
            if sr & _SR_OVUV:
                f |= _F_OVUV
            if sr & _SR_TCRANGE:
                f |= _F_TC_RANGE
            if sr & _SR_CJRANGE:
                f |= _F_CJ_RANGE
            if sr & _SR_TCHIGH:
                f |= _F_TC_HIGH
            if sr & _SR_TCLOW:
                f |= _F_TC_LOW
            if sr & _SR_CJHIGH:
                f |= _F_CJ_HIGH
            if sr & _SR_CJLOW:
                f |= _F_CJ_LOW
        if timeout:
            f |= _F_TIMEOUT
        if self.verify_every:
            self._n += 1
            if self._n >= self.verify_every:
                self._n = 0
                if not self.verify_config():
                    f |= _F_CONFIG
        self.tc_code = tc
        self.cj_code = cj
        self.sr = sr
        self.faults = f
        return f

    def poll(self, now_ms=None):
        """Supervision hook: keep one conversion in flight. Returns True when
        a new sample was collected (then the next conversion is started).
        Allocation-free."""
        if not self.busy:
            self.start(now_ms)
            return False
        if not self.ready(now_ms):
            return False
        self.collect()
        self.start(now_ms)
        return True

    # --- float path -------------------------------------------------------
    @property
    def temperature(self):
        """Linearized hot-junction temperature in °C, or None if the last
        reading carried a fault."""
        if self.faults:
            return None
        tc = self.tc_code
        if tc != self._tc_for_c:  # same code: hand back the same float object
            self._tc_c = tc * TC_LSB_C
            self._tc_for_c = tc
        return self._tc_c

    @property
    def temperature_cc(self):
        """Linearized temperature in centi-°C (int, rounded), or None on a
        fault. Allocation-free: for the safety path and the treatment log."""
        if self.faults:
            return None
        return (self.tc_code * 100 + 64) >> 7

    @property
    def cold_junction(self):
        """Cold-junction temperature in °C (includes the CJTO trim), or None
        after a bus fault."""
        if self.faults & (_F_BUS | FAULT_NO_DATA):
            return None
        cj = self.cj_code
        if cj != self._cj_for_c:
            self._cj_c = cj * CJ_LSB_C
            self._cj_for_c = cj
        return self._cj_c

    def code_for(self, temp_c, cj_c=None, keep=False):
        """tc_code the chip reports for a true temperature ``temp_c``. The chip
        linearizes, so the cold junction does not enter and there is nothing
        to keep (arguments kept for the same signature as the MAX31855).
        Clamped to the LUT range."""
        lo, hi = TC_RANGE_C[self.tc_type]
        t = min(max(temp_c, lo), hi)
        return int(t * TC_CODES_PER_C + (0.5 if t >= 0 else -0.5))
