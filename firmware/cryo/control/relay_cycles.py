"""What the relay autotune remembers of its cycles, and when they agree.

Per-cycle figures (half peak-to-peak amplitude, bias change, relay
half-swing used) and per-half figures (peak-to-peak periods, apparent dead
time) live in preallocated rings of ``RING`` entries, so a long experiment
grows no list. ``converged`` and ``window`` look at the last ``WIN`` cycles.
"""

from micropython import const

from cryo.control.model import _cv

WIN = const(6)  # cycles the result is taken from (and that must agree)
SKIP = const(2)  # start-up cycles ignored
RING = const(16)  # >= 2 * WIN: the periods are max-to-max and min-to-min


class RelayCycles:
    def __init__(self):
        self._amp = [0.0] * RING
        self._dbias = [0.0] * RING
        self._d_used = [0.0] * RING
        self._i = 0
        self._per = [0.0] * RING  # max-to-max and min-to-min, alternating
        self._ip = 0
        self._np = 0
        self._delay = [0.0] * RING
        self._id = 0

    def add_delay(self, ms):
        """Time from a relay switch to the extremum it caused (dead time)."""
        self._delay[self._id] = ms * 0.001
        self._id = (self._id + 1) % RING

    def add_period(self, ms):
        """One peak-to-peak period (maximum to maximum, or minimum to minimum)."""
        self._per[self._ip] = ms * 0.001
        self._ip = (self._ip + 1) % RING
        self._np += 1

    def add_cycle(self, amplitude, bias_change, d_used):
        i = self._i
        self._amp[i] = amplitude
        self._dbias[i] = bias_change
        self._d_used[i] = d_used
        self._i = (i + 1) % RING

    @staticmethod
    def _last(buf, idx, n):
        """The last ``n`` ring entries (oldest first), as a new list."""
        out = []
        k = n
        while k > 0:
            out.append(buf[(idx - k) % RING])
            k -= 1
        return out

    def converged(self, tolerance):
        """The window agrees: mean bias drift <= ``tolerance`` per cycle,
        amplitude and period scatter (std/mean) <= 25 %."""
        # Statistics over the window, not max-min spreads: at -35 degC a
        # MAX31855 resolves ~0.28 degC, a third of a typical half swing, so
        # single cycles scatter by a quantum; the window mean (dithered by
        # the probe noise) is what settles.
        if self._np < 2 * WIN:
            return False
        dbs = self._last(self._dbias, self._i, WIN)
        if abs(sum(dbs) / WIN) > tolerance:
            return False  # the bias is still drifting
        if _cv(self._last(self._amp, self._i, WIN)) > 0.25:
            return False
        return _cv(self._last(self._per, self._ip, 2 * WIN)) <= 0.25

    def window(self):
        """(amplitudes, half-swings, periods, delays) of the last window."""
        return (
            self._last(self._amp, self._i, WIN),
            self._last(self._d_used, self._i, WIN),
            self._last(self._per, self._ip, 2 * WIN),
            self._last(self._delay, self._id, 2 * WIN),
        )
