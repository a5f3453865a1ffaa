"""Synthetic first-order-plus-dead-time plant for autotune tests (reverse acting).

``y' = (y_rest - gain·u(t - dead_time) - y) / tau``: more demand cools.
Exact known parameters, so the identified Ku/Tu/FOPDT can be checked
against theory. Pure Python for MicroPython and CPython; fixed-size delay
line (no growing lists).
"""


class Fopdt:
    def __init__(self, gain=100.0, tau=20.0, dead_time=1.0, rest_c=30.0, dt_s=0.05, noise=None):
        self.gain = gain
        self.tau = tau
        self.dt_s = dt_s
        self.y = rest_c
        self.rest_c = rest_c
        n = int(dead_time / dt_s + 0.5)
        self._line = [0.0] * (n if n > 0 else 1)
        self._i = 0
        self._delay = n > 0
        self.noise = noise  # optional callable returning °C

    def step(self, u):
        if self._delay:
            line = self._line
            seen = line[self._i]
            line[self._i] = u
            self._i = (self._i + 1) % len(line)
        else:
            seen = u
        target = self.rest_c - self.gain * seen
        self.y += (target - self.y) * self.dt_s / self.tau
        return self.measured()

    def measured(self):
        if self.noise is None:
            return self.y
        return self.y + self.noise()


def relay_ku_tu(gain, tau, dead_time):
    """Ultimate gain and period of the FOPDT (phase crossover), by bisection."""
    import math

    lo, hi = 1e-6, math.pi / dead_time
    k = 0
    while k < 200:
        w = 0.5 * (lo + hi)
        ph = w * dead_time + math.atan(w * tau)
        if ph < math.pi:
            lo = w
        else:
            hi = w
        k += 1
    w = 0.5 * (lo + hi)
    ku = math.sqrt(1.0 + (w * tau) ** 2) / gain
    return ku, 2.0 * math.pi / w
