"""Sensor conditions of the interlock: the tissue channels and the supply.

* **Liveness and fault flags** of the required channels: ``debounce`` bad
  samples in a row, or no good sample for ``stale_ms``.
* **Hard floor** on every tissue channel (one sample: over-freeze is
  immediate), and its anticipation while the master valve is open and the
  regulator asks for less than full cooling: the tissue's present fall
  projected ``L_LEAD_MS`` ahead (the line's dead time plus the probe's lag)
  must not pass the floor.
* **Agreement** of the redundant tissue channel and of the independent
  skin probe with channel 0 (debounced each).
* **Supply pressure** window (debounced; any phase, so it also blocks a
  start).

Integer-only and allocation-free (the interlock's safety path). The
channel lists (``code``, ``good_t``, ``bad``) are the interlock's own; this
object reads them and ages ``good_t``.
"""

from micropython import const

from cryo.interlock import block as B
from cryo.interlock import conditions as C

_CNT_MAX = const(1000)  # debounce counters saturate here
_RATE_N = const(4)  # the tissue's fall is measured over this many evaluations


def _apart(c0, c, lim, i_m, i_shift, count):
    """The debounce count after comparing code ``c`` with the code channel
    0's ``c0`` predicts for its channel: B + (M * c0 >> shift), slots
    ``i_m`` (M), ``i_m + 1`` (B), ``i_m + 2`` (the limit), ``i_shift``."""
    d = c - lim[i_m + 1] - ((lim[i_m] * c0) >> lim[i_shift])
    if d < 0:
        d = -d
    if d > lim[i_m + 2]:
        return count + 1 if count < _CNT_MAX else count
    return 0


class SensorCheck:
    def __init__(self, clock, code, good_t, bad):
        self._clock = clock
        self._code = code
        self._good_t = good_t
        self._bad = bad
        now = clock.ticks_ms()
        self._hist = [0] * _RATE_N  # last tissue codes and their times, a ring
        self._hist_t = [now] * _RATE_N
        self._hist_i = 0
        self._hist_n = 0
        self._dis_bad = 0
        self._dis3_bad = 0
        self._p_bad = 0

    def check(self, now, lim, fitted, required, master_open, demand_pm):
        """Condition bits (SENSOR, OVERCOOL, DISAGREE) for this evaluation."""
        code = self._code
        good_t = self._good_t
        act = 0
        stale = lim[B.L_STALE_MS]
        ch = 0
        while ch < B.NCH:
            if self._clock.diff(now, good_t[ch]) > stale:
                # Age the last good sample: after half the tick period (6.2
                # days on a 32-bit board) ``diff`` would wrap and a channel
                # dead that long would look fresh again.
                good_t[ch] = self._clock.add(now, -stale - 1)
                if required & (1 << ch):
                    act |= 1 << C.SENSOR
            elif required & (1 << ch) and self._bad[ch] >= lim[B.L_DEBOUNCE]:
                act |= 1 << C.SENSOR
            ch += 1
        c0 = code[B.TISSUE]
        two = fitted & (1 << B.TISSUE2)
        three = fitted & (1 << B.TISSUE3)
        if (
            c0 < lim[B.L_FLOOR0]
            or (two and code[B.TISSUE2] < lim[B.L_FLOOR1])
            or (three and code[B.TISSUE3] < lim[B.L_FLOOR3])
        ):
            act |= 1 << C.OVERCOOL
        elif (
            master_open
            and demand_pm < lim[B.L_DUTY_FULL]
            and self._ahead(now, c0, lim) < lim[B.L_FLOOR0]
        ):
            # Where the tissue will be once the cryogen already in the line
            # and the probe's lag have caught up: a fast fall the regulator
            # is not asking for (a valve that does not close) trips before
            # the surface passes the floor, not after. At full demand the
            # fall is the one commanded and the regulator turns it round
            # long before the floor (the target is at least floor_margin_c
            # above it).
            act |= 1 << C.OVERCOOL
        # Agreement with channel 0: the redundant probe of the pair, and the
        # independent probe, which alone sees a cause the pair shares (one
        # connector, one cold junction: both drifting warm together).
        if two:
            self._dis_bad = _apart(
                c0, code[B.TISSUE2], lim, B.L_DIS_M, B.L_DIS_SHIFT, self._dis_bad
            )
        if three:
            d3 = self._dis3_bad
            self._dis3_bad = _apart(c0, code[B.TISSUE3], lim, B.L_DIS3_M, B.L_DIS3_SHIFT, d3)
        if self._dis_bad >= lim[B.L_DEBOUNCE] or self._dis3_bad >= lim[B.L_DEBOUNCE]:
            act |= 1 << C.DISAGREE
        return act

    def _ahead(self, now, c0, lim):
        """The tissue code ``B.L_LEAD_MS`` ahead at its present rate of fall
        (measured over the last ``_RATE_N`` evaluations; a rise counts as
        no fall)."""
        i = self._hist_i
        old = self._hist[i]
        span = self._clock.diff(now, self._hist_t[i])
        self._hist[i] = c0
        self._hist_t[i] = now
        self._hist_i = i + 1 if i + 1 < _RATE_N else 0
        if self._hist_n < _RATE_N:
            self._hist_n += 1
            return c0
        fall = old - c0
        if fall <= 0 or span <= 0 or span > 1000:
            return c0
        return c0 - (fall * lim[B.L_LEAD_MS]) // span

    def pressure(self, lim, p):
        """PRESSURE bit: the supply pressure code ``p`` outside its window
        for ``debounce`` evaluations."""
        if p < lim[B.L_P_MIN] or p > lim[B.L_P_MAX]:
            if self._p_bad < _CNT_MAX:
                self._p_bad += 1
        else:
            self._p_bad = 0
        return (1 << C.PRESSURE) if self._p_bad >= lim[B.L_DEBOUNCE] else 0
