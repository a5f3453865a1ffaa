"""Gains per setpoint band (gain scheduling).

The plant is strongly nonlinear (freezing plateau between −1 and −8 °C,
frozen tissue conducts 4× better), so gains autotuned at −25 °C are not the
right gains at −10 °C. ``GainSchedule`` keeps a small, bounded table of
``(setpoint_c, kp, ki, kd)`` entries — typically one per autotune run — and
picks the entry nearest to the active setpoint if it lies within
``band_c``; otherwise the default gains. ``apply`` hands the choice to the
PID through ``set_gains`` (bumpless), only when it changes.

Control path (floats); the table is preallocated (``capacity`` entries),
``to_list``/``from_list`` give a JSON-friendly form for the config file.
"""


def _num(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi):
        raise ValueError("%s must be a number within %r..%r, got %r" % (name, lo, hi, v))
    return float(v)


def _gains(kp, ki, kd):
    return (_num("kp", kp, 0.0, 1e6), _num("ki", ki, 0.0, 1e6), _num("kd", kd, 0.0, 1e6))


class GainSchedule:
    """Bounded table of gains per setpoint; nearest entry within ``band_c``."""

    def __init__(self, default, band_c=5.0, capacity=8):
        if not (isinstance(capacity, int) and 1 <= capacity <= 32):
            raise ValueError("capacity must be an integer within 1..32, got %r" % (capacity,))
        self.band_c = _num("band_c", band_c, 0.1, 100.0)
        self.default = _gains(default[0], default[1], default[2])
        self.capacity = capacity
        self._sp = [0.0] * capacity
        self._g = [self.default] * capacity
        self.n = 0
        self.active = None  # setpoint of the entry in use (None: default)

    def store(self, setpoint_c, kp, ki, kd):
        """Add gains for ``setpoint_c``, replacing an entry within ``band_c/2``."""
        sp = _num("setpoint_c", setpoint_c, -200.0, 50.0)
        g = _gains(kp, ki, kd)
        i = 0
        while i < self.n:
            if abs(self._sp[i] - sp) <= 0.5 * self.band_c:
                self._sp[i] = sp
                self._g[i] = g
                return i
            i += 1
        if self.n >= self.capacity:
            raise ValueError(
                "gain schedule full (%d bands); replace a band within %.1f °C"
                % (self.capacity, 0.5 * self.band_c)
            )
        self._sp[self.n] = sp
        self._g[self.n] = g
        self.n += 1
        return self.n - 1

    def store_result(self, result):
        """Store the chosen gains of a successful ``RelayAutotune.result``."""
        if not result or not result.get("ok"):
            raise ValueError("only a successful autotune result can be stored")
        return self.store(result["setpoint_c"], result["kp"], result["ki"], result["kd"])

    def lookup(self, setpoint_c):
        """``(kp, ki, kd, band_setpoint_or_None)`` for ``setpoint_c``."""
        best = -1
        best_d = self.band_c
        i = 0
        while i < self.n:
            d = abs(self._sp[i] - setpoint_c)
            if d <= best_d:
                best = i
                best_d = d
            i += 1
        if best < 0:
            g = self.default
            return g[0], g[1], g[2], None
        g = self._g[best]
        return g[0], g[1], g[2], self._sp[best]

    def apply(self, pid, setpoint_c):
        """Give ``pid`` the gains for ``setpoint_c`` (bumpless); True if changed."""
        kp, ki, kd, band = self.lookup(setpoint_c)
        if kp == pid.kp and ki == pid.ki and kd == pid.kd:
            self.active = band
            return False
        pid.set_gains(kp, ki, kd)
        self.active = band
        return True

    def to_list(self):
        out = []
        i = 0
        while i < self.n:
            g = self._g[i]
            out.append([self._sp[i], g[0], g[1], g[2]])
            i += 1
        return out

    def from_list(self, rows):
        """Replace the table with ``[[setpoint_c, kp, ki, kd], ...]`` (validated)."""
        if not isinstance(rows, list) or len(rows) > self.capacity:
            raise ValueError("gain bands must be a list of at most %d rows" % self.capacity)
        old_n = self.n
        old = self.to_list()
        self.n = 0
        try:
            for r in rows:
                if not isinstance(r, (list, tuple)) or len(r) != 4:
                    raise ValueError(
                        "each gain band must be [setpoint_c, kp, ki, kd], got %r" % (r,)
                    )
                self.store(r[0], r[1], r[2], r[3])
        except ValueError:
            self.n = 0
            for r in old:
                self.store(r[0], r[1], r[2], r[3])
            self.n = old_n
            raise
