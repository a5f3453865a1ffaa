"""Two tissue sensors: disagreement check and the combined reading.

Both channels OK and within ``threshold_c`` of each other: the combined
temperature is the *colder* of the two. For a cooling device that is the
conservative choice: the controller stops cooling as soon as either sensor
reaches the target, so a sensor reading too warm cannot make it over-freeze.

A disagreement larger than ``threshold_c`` is tolerated for ``delay_ms``
(fast transients: the two probes sit at different depths of a moving freeze
front) and then becomes ``ST_DISAGREE``; agreement must then hold for
``delay_ms`` again before the pair reports OK. If one channel fails,
``require_both=True`` (default) makes the pair report ``ST_DEGRADED`` with no
temperature; ``require_both=False`` carries on with the survivor and sets
``degraded``. Like a channel, the pair's ``temperature_c`` is None whenever
``status != ST_OK``.

:meth:`update` works on the channels' converted floats (control path);
``status`` is an int the interlock can read without allocating.
"""

from cryo.supervision.channel import REASONS, ST_DEGRADED, ST_DISAGREE, ST_OK

THRESHOLD_C = 10.0
DELAY_MS = 3000


class Redundancy:
    def __init__(self, a, b, clock, threshold_c=THRESHOLD_C, delay_ms=DELAY_MS, require_both=True):
        if not (threshold_c > 0):
            raise ValueError("threshold_c %r must be > 0 °C" % (threshold_c,))
        if not (0 <= delay_ms <= 600000):
            raise ValueError("delay_ms %r not allowed: 0 to 600000 ms" % (delay_ms,))
        self.a = a
        self.b = b
        self.clock = clock
        self.threshold_c = threshold_c
        self.delay_ms = delay_ms
        self.require_both = require_both
        self.status = a.status if a.status != ST_OK else b.status
        self.reason = REASONS[self.status]
        self.temperature_c = None
        self.cold_junction_c = None
        self.degraded = False
        self.difference_c = None
        self._since = None  # ticks when the present (dis)agreement began
        self._disagreeing = False

    def update(self, now_ms):
        """Combine the channels' latest converted readings. Returns the
        supervised reading ``(temperature_c, cold_junction_c, status)``."""
        a = self.a
        b = self.b
        ta = a.temperature_c if a.status == ST_OK else None
        tb = b.temperature_c if b.status == ST_OK else None
        self.cold_junction_c = a.cold_junction_c
        self.degraded = False
        if ta is None or tb is None:
            self.difference_c = None
            self._since = None
            self._disagreeing = False
            if ta is None and tb is None:
                return self._out(None, a.status if a.status != ST_OK else b.status)
            if self.require_both:
                return self._out(None, ST_DEGRADED)
            self.degraded = True
            if ta is None:
                self.cold_junction_c = b.cold_junction_c
                return self._out(tb, ST_OK)
            return self._out(ta, ST_OK)
        d = ta - tb if ta > tb else tb - ta
        self.difference_c = d
        colder = ta if ta < tb else tb
        apart = d > self.threshold_c
        if apart != self._disagreeing:
            # The state we are moving towards started now.
            if self._since is None:
                self._since = now_ms
            if self.clock.diff(now_ms, self._since) >= self.delay_ms:
                self._disagreeing = apart
                self._since = None
        else:
            self._since = None
        if self._disagreeing:
            return self._out(None, ST_DISAGREE)
        return self._out(colder, ST_OK)

    def _out(self, t, st):
        self.temperature_c = t if st == ST_OK else None
        self.status = st
        self.reason = REASONS[st]
        return (self.temperature_c, self.cold_junction_c, st)
