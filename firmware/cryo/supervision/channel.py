"""Supervision of one thermocouple channel.

A channel wraps a driver (MAX31855 or MAX31856) and turns its samples into
the *supervised reading* the rest of the firmware consumes::

    (temperature_c, cold_junction_c, status)

``temperature_c`` is a float only when ``status == ST_OK``; in every other
state it is None, so a failed or implausible sensor can never hand the PID a
number (in particular an open sensor can never look warm and make the
controller cool harder).

Two stages per control tick:

1. :meth:`Channel.update` (safety path, integer-only, allocation-free): polls
   the driver, classifies the raw sample (chip/bus fault bits, cold-junction
   range, hot-junction range and rate of change on raw codes, stuck frames)
   with an N-consecutive debounce, and checks staleness with the injected
   clock (wrap-safe ``clock.diff``).
2. :meth:`Channel.convert` (control path, floats): NIST-corrected temperature,
   two-point calibration, and a refresh of the raw-code limits for the
   present cold junction (the MAX31855's raw code for a given true
   temperature moves with its cold junction).

Status codes (public constants, stable: they go into logs):
"""

from micropython import const

from cryo.storage import schema as _schema

ST_OK = 0  # reading valid
ST_NO_DATA = 1  # no sample yet
ST_SUSPECT = 2  # bad sample(s), fewer than `debounce` in a row: value withheld
ST_SENSOR = 3  # chip fault bits (open, short, OV/UV, chip range/threshold)
ST_BUS = 4  # all-zero/all-one frames, reserved bits, conversion timeout
ST_RANGE = 5  # hot junction outside [t_min_c, t_max_c] (or outside NIST range)
ST_CJ_RANGE = 6  # cold junction outside [cj_min_c, cj_max_c]
ST_RATE = 7  # changed faster than max_rate_c_s since the last good sample
ST_STUCK = 8  # raw frame identical for stuck_ms while change is expected
ST_STALE = 9  # no new sample for stale_ms

REASONS = (
    "ok",
    "no data yet",
    "bad reading (debouncing)",
    "sensor fault reported by the chip",
    "SPI bus fault",
    "temperature out of range",
    "cold junction out of range",
    "rate of change too high",
    "reading stuck",
    "reading stale",
)

# Fault bits that mean "the bus, not the sensor" (cryo.sensing.faults).
_BUS_BITS = const(0x0008 | 0x1000 | 0x2000)  # FAULT_BUS | FAULT_TIMEOUT | FAULT_CONFIG

# Defaults (docs/sensing.md explains each).
DEBOUNCE = 3
RECOVER = 5
T_MIN_C = -210.0
T_MAX_C = 60.0
CJ_MIN_C = -20.0
CJ_MAX_C = 70.0
MAX_RATE_C_S = 50.0
RATE_NOISE_C = 2.0
STUCK_MS = 30000
STALE_MS = 3000

_RATE_DT_CAP = const(60000)
_SMALL = const(1 << 29)


class Calibration:
    """Two-point calibration: readings ``m1``, ``m2`` (°C, as the channel
    measured them) at reference temperatures ``r1``, ``r2`` (e.g. liquid
    nitrogen -195.8 °C and the ice point 0 °C). ``apply`` maps measured to
    true linearly; ``invert`` maps back (used to place raw limits)."""

    MIN_GAIN = _schema.CAL_MIN_GAIN
    MAX_GAIN = _schema.CAL_MAX_GAIN

    def __init__(self, m1, r1, m2, r2):
        if abs(m2 - m1) < 10.0:
            raise ValueError(
                "calibration points %r and %r °C too close: need at least 10 °C apart" % (m1, m2)
            )
        gain = (r2 - r1) / (m2 - m1)
        if not (self.MIN_GAIN <= gain <= self.MAX_GAIN):
            raise ValueError(
                "calibration gain %.3f implausible: allowed %.1f to %.1f (check the points)"
                % (gain, self.MIN_GAIN, self.MAX_GAIN)
            )
        self.m1 = m1
        self.r1 = r1
        self.gain = gain

    @classmethod
    def from_config(cls, cfg):
        """From a config dict ``{"m1":…, "r1":…, "m2":…, "r2":…}`` or None."""
        if cfg is None:
            return None
        return cls(cfg["m1"], cfg["r1"], cfg["m2"], cfg["r2"])

    def apply(self, t):
        return self.r1 + (t - self.m1) * self.gain

    def invert(self, t):
        return self.m1 + (t - self.r1) / self.gain


class Channel:
    """Supervision of one thermocouple channel.

    ``sensor``: a driver with ``poll(now_ms)``, ``tc_code``, ``cj_code``,
    ``faults``, ``temperature``, ``cold_junction``, ``code_for`` and
    ``tc_lsb_c``/``cj_lsb_c``. ``clock``: a cryo.clock clock.
    Limits in °C (true temperature), times in ms; ``calibration`` a
    :class:`Calibration` or None. ``expect_change`` gates stuck detection
    (the controller turns it on for the cooling phases: ``expect_change()``).
    """

    def __init__(
        self,
        name,
        sensor,
        clock,
        debounce=DEBOUNCE,
        recover=RECOVER,
        t_min_c=T_MIN_C,
        t_max_c=T_MAX_C,
        cj_min_c=CJ_MIN_C,
        cj_max_c=CJ_MAX_C,
        max_rate_c_s=MAX_RATE_C_S,
        rate_noise_c=RATE_NOISE_C,
        stuck_ms=STUCK_MS,
        stale_ms=STALE_MS,
        calibration=None,
        expect_change=True,
    ):
        if not (1 <= debounce <= 100):
            raise ValueError("debounce %r not allowed: 1 to 100 readings" % (debounce,))
        if not (1 <= recover <= 100):
            raise ValueError("recover %r not allowed: 1 to 100 readings" % (recover,))
        if not (t_min_c < t_max_c):
            raise ValueError("t_min_c %r must be below t_max_c %r" % (t_min_c, t_max_c))
        if not (cj_min_c < cj_max_c):
            raise ValueError("cj_min_c %r must be below cj_max_c %r" % (cj_min_c, cj_max_c))
        if not (max_rate_c_s > 0):
            raise ValueError("max_rate_c_s %r must be > 0 °C/s" % (max_rate_c_s,))
        if not (stale_ms > 0) or stuck_ms < 0:
            raise ValueError("stale_ms must be > 0 and stuck_ms >= 0 (0 disables)")
        self.name = name
        self.sensor = sensor
        self.clock = clock
        self.debounce = debounce
        self.recover = recover
        self.t_min_c = t_min_c
        self.t_max_c = t_max_c
        self.max_rate_c_s = max_rate_c_s
        self.rate_noise_c = rate_noise_c
        self.stuck_ms = stuck_ms
        self.stale_ms = stale_ms
        self.calibration = calibration
        self._expect_change = expect_change
        lsb = sensor.cj_lsb_c
        self.cj_lo = int(cj_min_c / lsb)
        self.cj_hi = int(cj_max_c / lsb)
        self._cj_resync = int(1.0 / lsb)  # refresh raw limits when the CJ moves 1 °C
        # Public supervised state.
        self.status = ST_NO_DATA
        self.reason = REASONS[ST_NO_DATA]
        self.faults = 0  # chip fault bits of the last bad sample
        self.tc_code = 0
        self.cj_code = 0
        self.temperature_c = None
        self.cold_junction_c = None
        self.samples = 0
        self.trips = 0
        # Internal integer state.
        self._bad = 0
        self._good = 0
        self._cause = ST_NO_DATA
        now = clock.ticks_ms()
        self._t_sample = now
        self._t_changed = now
        self._t_base = now
        self._base = 0
        self._have_base = False
        self._prev_tc = 0
        self._prev_cj = 0
        self._cj_lim = -1 << 20
        self.code_lo = 0
        self.code_hi = 0
        self.rate_codes_s = 0
        self.noise_codes = 0
        self._rate_dt_cap = _RATE_DT_CAP
        self._t_lim = 25.0
        # the rate window [t_lim - 10, t_lim + 10] °C, kept as two floats so
        # the per-reading comparison allocates nothing
        self._t_lim_lo = 15.0
        self._t_lim_hi = 35.0
        self._refresh_limits(25.0, 25.0)

    def expect_change(self, on):
        """Whether the reading should move (cooling): only then is an
        unchanging frame a stuck converter."""
        self._expect_change = bool(on)
        if on:
            self._t_changed = self.clock.ticks_ms()

    # --- safety path (integers only) -------------------------------------
    def update(self, now_ms):
        """Poll the sensor and re-evaluate the status. Allocation-free.
        Returns ``status``."""
        s = self.sensor
        if s.poll(now_ms):
            self._classify(now_ms, s.faults, s.tc_code, s.cj_code)
        elif self.clock.diff(now_ms, self._t_sample) >= self.stale_ms:
            self._set(ST_STALE)
            self._good = 0
        return self.status

    def _classify(self, now, faults, tc, cj):
        self.samples += 1
        self._t_sample = now
        self.tc_code = tc
        self.cj_code = cj
        cause = ST_OK
        if faults:
            cause = ST_BUS if faults & _BUS_BITS else ST_SENSOR
        elif cj < self.cj_lo or cj > self.cj_hi:
            cause = ST_CJ_RANGE
        elif tc < self.code_lo or tc > self.code_hi:
            cause = ST_RANGE
        else:
            if tc != self._prev_tc or cj != self._prev_cj:
                self._t_changed = now
            elif (
                self._expect_change
                and self.stuck_ms
                and self.clock.diff(now, self._t_changed) >= self.stuck_ms
            ):
                cause = ST_STUCK
            if cause == ST_OK and self._have_base:
                dt = self.clock.diff(now, self._t_base)
                # A base older than the cap (or so old that the tick
                # difference wrapped negative, after days without a good
                # sample) says nothing about the rate.
                if 0 <= dt < self._rate_dt_cap:
                    d = tc - self._base
                    if d < 0:
                        d = -d
                    if d * 1000 > self.rate_codes_s * dt + self.noise_codes * 1000:
                        cause = ST_RATE
        if faults:
            self._t_changed = now  # a fault breaks a run of identical frames
        else:
            self._prev_tc = tc
            self._prev_cj = cj
        if cause == ST_OK:
            self.faults = 0
            self._bad = 0
            self._base = tc
            self._t_base = now
            self._have_base = True
            st = self.status
            if st == ST_OK or st == ST_SUSPECT or st == ST_NO_DATA:
                self._good = self.recover
                self._set(ST_OK)
            else:
                self._good += 1
                if self._good >= self.recover:
                    self._set(ST_OK)
            return
        self.faults = faults
        self._good = 0
        self._bad += 1
        self._cause = cause
        if cause == ST_STUCK or self._bad >= self.debounce:
            self._set(cause)
        elif self.status == ST_OK or self.status == ST_NO_DATA:
            self._set(ST_SUSPECT)

    def _set(self, st):
        if st != ST_OK:
            self.temperature_c = None  # never leave an old number behind a fault
        if st != self.status:
            if st > ST_SUSPECT and self.status <= ST_SUSPECT:
                self.trips += 1
            self.status = st
            self.reason = REASONS[st]

    # --- control path (floats) -------------------------------------------
    def convert(self):
        """Compute ``temperature_c`` / ``cold_junction_c`` for the present
        status and refresh raw limits. Returns the supervised reading
        ``(temperature_c, cold_junction_c, status)``."""
        s = self.sensor
        cj = s.cold_junction
        self.cold_junction_c = cj
        if self.status != ST_OK:
            self.temperature_c = None
            return (None, cj, self.status)
        t = s.temperature
        if t is None:  # EMF outside the NIST range: not a thermocouple reading
            self._good = 0
            self._set(ST_RANGE)
            self.temperature_c = None
            return (None, cj, self.status)
        cal = self.calibration
        if cal is not None:
            t = cal.apply(t)
        self.temperature_c = t
        rs = self._cj_resync
        if self._cj_lim - self.cj_code > rs or self.cj_code - self._cj_lim > rs:
            self._refresh_limits(cj, t)
        elif t > self._t_lim_hi or t < self._t_lim_lo:
            self._refresh_rate(cj, t)
        return (t, cj, self.status)

    def reading(self):
        """The last supervised reading without recomputing."""
        return (self.temperature_c, self.cold_junction_c, self.status)

    def _meas(self, t):
        cal = self.calibration
        return cal.invert(t) if cal is not None else t

    def _refresh_limits(self, cj, t):
        s = self.sensor
        self._cj_lim = int(cj / s.cj_lsb_c)
        top = 1372.0 if s.tc_type == "K" else 400.0
        self.code_lo = s.code_for(min(max(self._meas(self.t_min_c), -270.0), top), cj, True)
        self.code_hi = s.code_for(min(max(self._meas(self.t_max_c), -270.0), top), cj, True)
        self._refresh_rate(cj, t)

    def _refresh_rate(self, cj, t):
        """Raw codes per second equivalent to max_rate_c_s near ``t`` (the
        MAX31855's code per true °C shrinks 2.6x at -196 °C)."""
        s = self.sensor
        t = min(max(self._meas(t), -260.0), 390.0)
        slope = abs(s.code_for(t + 5.0, cj) - s.code_for(t - 5.0, cj)) / 10.0
        slope = max(slope, 0.1)
        self.rate_codes_s = int(self.max_rate_c_s * slope) + 1
        self.noise_codes = int(self.rate_noise_c * slope) + 1
        self._rate_dt_cap = min(_RATE_DT_CAP, _SMALL // self.rate_codes_s)
        self._t_lim = t
        self._t_lim_lo = t - 10.0
        self._t_lim_hi = t + 10.0
