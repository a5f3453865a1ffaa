"""Reverse-acting PID for a cryogen valve (public API).

Cooling is *reverse action*: the valve must open further when the tissue is
warmer than the setpoint, so the error is ``measured - setpoint`` and all
gains stay positive (no negative-gain tricks: the PID_AutoTune / QuickPID /
simple-pid reverse-action bugs come from those).
The output is the valve demand in ``[out_min, out_max]`` (default ``[0, 1]``,
1 = full cooling).

Loop hygiene:

- Derivative on the measurement (a setpoint step gives no derivative kick)
  through a first-order filter (time constant ``d_filter_s``), discretised
  with backward Euler so it is stable for any ``dt``.
- Ki lives inside the sum (``i_term`` is in output units), so changing Ki
  never bumps the output; ``set_gains`` also moves the P and D change into
  the integral, so any gain change is bumpless.
- Anti-windup by **conditional integration**: the integral moves only up
  to the point where the output saturates and never further into
  saturation (so it neither winds up nor sticks a step short of the
  limit), and ``i_term`` is bounded to the output range. Chosen over
  back-calculation because it needs no extra tracking constant (which the
  autotune could not identify), it behaves the same in both directions, it
  is the method Klipper ships for thermal loops, and with the long
  full-cooling pull-down of a freeze it keeps the integral where it was
  instead of dragging it to a bound.
- Proportional-on-measurement weighting ``beta`` (1 = all P on error,
  0 = all P on measurement, PID_v1 P_ON_M style: the measurement part is
  accumulated inside the sum, so it is clamped by the same anti-windup).
- Manual mode tracks the integral (``i_term = manual - p - d``), so the
  return to automatic is bumpless; the ramped setpoint tracks the
  measurement in manual when a ramp limit is set.
- Setpoint ramp limit ``sp_ramp_c_per_s`` (°C/s, 0 = off) to avoid thermal
  shock; ``setpoint_used`` is the ramped value.
- Approach without windup on a long dead time: an **integral zone**
  ``i_zone_c`` (integrate only while ``|e| <= i_zone_c``; outside it only
  while the slow trend would not reach the setpoint within ten minutes, so a
  stall or a crawl can never leave a permanent offset) and an **integrator preload**
  ``preload`` (the holding duty the autotune or step test identified; the
  integral starts there after every ``reset``). Conditional integration
  alone stops windup only while the output saturates; on a slow approach
  through an unsaturated band (``e < (1 - u_hold)/kp``) the integral
  still fills and arrives far above the holding duty (Åström & Hägglund,
  *Advanced PID Control*, ISA 2006, §3.5: conditional integration limited
  to small errors, and the integral initialised at the steady-state
  control signal).

``update`` runs on the control path and allocates boxed floats (MicroPython
floats are heap objects); bytes per update are measured by the tests and by
``make bench``. The integral and the filter state are bounded, so float32
boards keep ~7 significant digits where it matters.

Time: :class:`LoopTimer` turns tick stamps from the injected clock into a
bounded ``dt_s`` (``clock.diff`` only) and counts overruns.
"""

from micropython import const

_NOMINAL_DIV = const(2)  # dt lower bound = period / 2
_OVERRUN_MUL = const(2)  # dt upper bound = period * 2


# Time constant (s) of the slow trend used outside the integral zone: long
# enough that probe noise (sigma 0.5 degC at 5 Hz) does not look like a stall.
_TREND_S = 10.0
# Outside the integral zone the integral still moves unless the trend would
# bring the error to zero within this horizon (s): a stalled or crawling
# approach is integrated away, a normal pull-down is not.
_HORIZON_S = 600.0

_BIG = 1e30  # anything beyond is treated as non-finite (also catches inf/nan)
_NBIG = -1e30


def _is_num(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_gain(name, value):
    if not _is_num(value) or not (0.0 <= value < _BIG):
        raise ValueError(
            "%s must be a finite number >= 0 (reverse action is built in; "
            "never pass negative gains), got %r" % (name, value)
        )
    return float(value)


def _check_nonneg(name, value, unit):
    if not _is_num(value) or not (0.0 <= value < _BIG):
        raise ValueError("%s must be a finite number >= 0 %s, got %r" % (name, unit, value))
    return float(value)


def _check_finite(name, value, allowed):
    if not _is_num(value) or not (_NBIG < value < _BIG):
        raise ValueError("%s must be %s, got %r" % (name, allowed, value))


class PID:
    """Positional PID with explicit reverse action (cooling).

    ``kp`` [demand/°C], ``ki`` [demand/(°C·s)], ``kd`` [demand·s/°C];
    ``d_filter_s`` derivative filter time constant (s, 0 = unfiltered);
    ``beta`` proportional weighting on the error (1 = P on error,
    0 = P on measurement); ``out_min``/``out_max`` demand limits;
    ``sp_ramp_c_per_s`` setpoint slew limit (°C/s, 0 = none).
    """

    def __init__(
        self,
        kp,
        ki,
        kd,
        d_filter_s=1.0,
        beta=1.0,
        out_min=0.0,
        out_max=1.0,
        sp_ramp_c_per_s=0.0,
        i_zone_c=0.0,
        preload=0.0,
    ):
        if not (_is_num(out_min) and _is_num(out_max)) or not (0.0 <= out_min < out_max <= 1.0):
            raise ValueError(
                "demand limits must satisfy 0 <= out_min < out_max <= 1, got %r..%r"
                % (out_min, out_max)
            )
        self.out_min = float(out_min)
        self.out_max = float(out_max)
        self.kp = 0.0
        self.ki = 0.0
        self.kd = 0.0
        self.beta = 1.0
        self._set(kp, ki, kd, beta)
        self.d_filter_s = _check_nonneg("d_filter_s", d_filter_s, "s")
        self.sp_ramp_c_per_s = _check_nonneg("sp_ramp_c_per_s", sp_ramp_c_per_s, "°C/s (0 = off)")
        self.i_zone_c = _check_nonneg("i_zone_c", i_zone_c, "°C (0 = integrate everywhere)")
        self.preload = 0.0
        self.set_preload(preload)
        self.manual = False
        self._manual_out = 0.0
        self.reset()

    # -- configuration -------------------------------------------------

    def _set(self, kp, ki, kd, beta):
        kp = _check_gain("kp", kp)
        ki = _check_gain("ki", ki)
        kd = _check_gain("kd", kd)
        if not _is_num(beta) or not (0.0 <= beta <= 1.0):
            raise ValueError("beta (P-on-error weight) must be within 0..1, got %r" % (beta,))
        self.kp = kp
        self.ki = ki
        self.kd = kd
        self.beta = float(beta)
        self._kpe = kp * self.beta  # P on error
        self._kpm = kp - self._kpe  # P on measurement (accumulated in the sum)

    def set_gains(self, kp, ki, kd, beta=None):
        """Change gains without a bump in the output.

        The change of the P and D contributions at the last operating point
        is moved into the integral, so the next output equals the last one
        for an unchanged measurement (bounded by the integral limits).
        """
        if beta is None:
            beta = self.beta
        old = self._kpe * self._e + self.kd * self._dyf
        self._set(kp, ki, kd, beta)
        new = self._kpe * self._e + self.kd * self._dyf
        self.i_term = self._clamp(self.i_term + old - new)
        self.p_term = self._kpe * self._e
        self.d_term = self.kd * self._dyf

    def set_approach(self, i_zone_c, preload, beta, sp_ramp_c_per_s):
        """Approach settings in one call (configuration): integral zone,
        preload, P-on-error weight (bumpless) and setpoint ramp."""
        zone = _check_nonneg("i_zone_c", i_zone_c, "°C (0 = integrate everywhere)")
        ramp = _check_nonneg("sp_ramp_c_per_s", sp_ramp_c_per_s, "°C/s (0 = off)")
        self.set_preload(preload)
        self.set_gains(self.kp, self.ki, self.kd, beta)
        self.i_zone_c = zone
        self.sp_ramp_c_per_s = ramp

    def set_preload(self, duty):
        """Integral start value after ``reset`` (identified holding duty,
        within the output limits; 0 = none). Takes effect at the next reset."""
        _check_finite("preload", duty, "a demand within the output limits")
        if not (self.out_min <= duty <= self.out_max):
            raise ValueError(
                "preload (holding duty) must be within %r..%r, got %r"
                % (self.out_min, self.out_max, duty)
            )
        self.preload = float(duty)

    def set_manual(self, output):
        """Hold ``output`` (validated demand); the integral tracks it."""
        _check_finite("manual output", output, "a demand within the limits")
        if not (self.out_min <= output <= self.out_max):
            raise ValueError(
                "manual output must be within %r..%r, got %r" % (self.out_min, self.out_max, output)
            )
        self.manual = True
        self._manual_out = float(output)
        self.i_term = self._clamp(self._manual_out - self.p_term - self.d_term)
        self.output = self._manual_out

    def set_auto(self):
        """Return to automatic; bumpless because ``i_term`` was tracked."""
        self.manual = False

    def reset(self):
        """Forget history (integral, filter, ramp, last measurement)."""
        self.p_term = 0.0
        self.i_term = self.preload
        self.d_term = 0.0
        self.output = self.out_min
        self.setpoint_used = None
        self._last = None
        self._e = 0.0
        self._dyf = 0.0
        self._trend = 0.0

    # -- control path ----------------------------------------------------

    def _clamp(self, v):
        if v > self.out_max:
            return self.out_max
        if v < self.out_min:
            return self.out_min
        return v

    def update(self, setpoint, measured, dt_s):
        """One control step; returns the valve demand (1 = full cooling).

        ``dt_s`` is the real elapsed time (use :class:`LoopTimer`); it must
        be > 0. Non-finite inputs raise ValueError (the tick closes the
        valve on any exception), they are never replaced by a default.
        """
        if not (0.0 < dt_s < _BIG):
            raise ValueError("dt_s must be a finite time > 0 s, got %r" % (dt_s,))
        if not (_NBIG < measured < _BIG and _NBIG < setpoint < _BIG):
            raise ValueError(
                "setpoint and measured must be finite temperatures in °C, got %r, %r"
                % (setpoint, measured)
            )
        last = self._last
        if last is None:
            last = measured
        dy = measured - last
        self._last = measured

        sp = self.setpoint_used
        ramp = self.sp_ramp_c_per_s
        if ramp > 0.0 and (sp is None or self.manual):
            sp = measured  # start the ramp where the tissue is
        if ramp > 0.0:
            step = ramp * dt_s
            if setpoint > sp + step:
                sp = sp + step
            elif setpoint < sp - step:
                sp = sp - step
            else:
                sp = setpoint
        else:
            sp = setpoint
        self.setpoint_used = sp

        e = measured - sp  # reverse action: warmer than wanted -> cool more
        self._e = e
        tf = self.d_filter_s
        self._dyf = (tf * self._dyf + dy) / (tf + dt_s)
        p = self._kpe * e
        d = self.kd * self._dyf
        self.p_term = p
        self.d_term = d

        if self.manual:
            self.i_term = self._clamp(self._manual_out - p - d)
            self.output = self._manual_out
            return self._manual_out

        i = self.i_term
        inc = self.ki * e * dt_s
        zone = self.i_zone_c
        if zone > 0.0:  # (only then: the plain PID allocates no extra floats)
            self._trend = (_TREND_S * self._trend + dy) / (_TREND_S + dt_s)
            if (e > zone or e < -zone) and e * (e + _HORIZON_S * self._trend) <= 0.0:
                inc = 0.0  # outside the zone and arriving: leave the integral alone
        if self._kpm > 0.0:
            inc = inc + self._kpm * dy
        pd = p + d
        # Conditional integration: integrate only up to the point where the
        # output saturates; never push further into saturation.
        if inc > 0.0:
            lim = self.out_max - pd
            i = i + inc if i + inc <= lim else (i if i > lim else lim)
        elif inc < 0.0:
            lim = self.out_min - pd
            i = i + inc if i + inc >= lim else (i if i < lim else lim)
        i = self._clamp(i)
        self.i_term = i
        u = pd + i
        u = self._clamp(u)
        self.output = u
        return u


class LoopTimer:
    """Bounded loop ``dt`` from the injected clock, overruns counted.

    ``dt_s(now_ms)`` returns the real time since the previous call, bounded
    to ``[period/2, 2·period]`` (RespiraWorks PR #221):
    a stalled loop must not inject a huge integral step, and a doubled call
    must not divide the derivative by ~0. Calls later than 2·period count
    as ``overruns``, earlier than period/2 as ``underruns``. Only
    ``clock.diff`` is used, so it is correct across the 2**30 tick wrap.
    The first call returns the nominal period.
    """

    def __init__(self, clock, period_ms):
        if not (isinstance(period_ms, int) and period_ms >= 2):
            raise ValueError("period_ms must be an integer >= 2 ms, got %r" % (period_ms,))
        self._clock = clock
        self.period_ms = period_ms
        self._min = period_ms // _NOMINAL_DIV
        self._max = period_ms * _OVERRUN_MUL
        self._last = 0
        self._started = False
        self.elapsed_ms = period_ms  # bounded elapsed of the last call
        self.overruns = 0
        self.underruns = 0

    def restart(self):
        """Forget the previous call: the next one returns the nominal period
        (a regulator restarted after a pause must not integrate the pause)."""
        self._started = False

    def elapsed(self, now_ms):
        """Bounded elapsed ms since the last call (integer, allocation-free)."""
        if not self._started:
            self._started = True
            self._last = now_ms
            self.elapsed_ms = self.period_ms
            return self.period_ms
        el = self._clock.diff(now_ms, self._last)
        self._last = now_ms
        if el > self._max:
            self.overruns += 1
            el = self._max
        elif el < self._min:
            self.underruns += 1
            el = self._min
        self.elapsed_ms = el
        return el

    def dt_s(self, now_ms):
        return self.elapsed(now_ms) * 0.001
