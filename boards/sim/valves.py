"""The cryogen valve and the master valve in series, as the plant sees them.

Cryogen reaches the nozzle only while the cryogen valve AND the master
valve are open, each open as its output drives it unless a scenario fault
sticks it (``solenoid_stuck`` / ``master_stuck``: None, "open", "closed").
The cryogen valve is a solenoid (open while its pin is energised) or a
proportional valve (open by its PWM duty: ``drive`` takes the opening in
per mille, ``OPEN`` = fully open); stuck open means fully open, stuck
closed shut, whatever the drive. ``flow_ms`` counts the full-flow ms the
path delivered with pressure in the dewar (a half-open proportional valve
for 2 s is 1000 ms); ``uncommanded_ms`` the part of it beyond what the
cryogen valve was driven to (a single fault the master valve must
contain); ``cycles`` the cryogen valve's closed->open edges.

Allocation: an output edge (:meth:`drive`) is integer bookkeeping only —
the firmware's safety path closes the valves with the heap locked. Since
the last plant step it keeps the per-mille ms each output was driven open
and both were; :meth:`take_path_ms` turns them into the full-flow ms the
series path delivered, with the stuck faults held for the whole step.
"""

OPEN = 1000  # fully open, per mille


class SeriesValves:
    def __init__(self, clock, t0):
        self._clock = clock
        self.solenoid_stuck = None  # None, 'open' or 'closed' (scenario)
        self.master_stuck = None  # the same for the master valve
        self._t_edge = t0  # the last pin edge counted (ticks ms)
        # per-mille ms driven open since the last plant step: cryogen valve,
        # master, both (the opening of both is the cryogen valve's)
        self._sol_ms = self._mst_ms = self._both_ms = 0
        self._sol_on = self._mst_on = 0  # the openings now (0..OPEN)
        self.cycles = 0
        # per-mille ms the path delivered with pressure in the dewar, and of
        # that beyond the cryogen valve's drive (flow_ms, uncommanded_ms)
        self._flow_pm = self._unc_pm = 0

    def drive(self, solenoid_on, master_on):
        """The outputs now open the cryogen valve / the master valve by
        ``solenoid_on`` / ``master_on`` per mille (a pin: 0 or ``OPEN``).

        An edge written "before" the last one (a timer callback runs with
        the clock set back to its boundary) counts from the last one."""
        self._count_to(self._clock.ticks_ms())
        if solenoid_on and not self._sol_on:
            self.cycles += 1
        self._sol_on = solenoid_on
        self._mst_on = master_on

    def _count_to(self, now):
        d = self._clock.diff(now, self._t_edge)
        if d <= 0:
            return
        sol = self._sol_on
        if sol:
            self._sol_ms += d * sol
            if self._mst_on:
                self._both_ms += d * sol
        if self._mst_on:
            self._mst_ms += d * self._mst_on
        self._t_edge = now

    def solenoid_energised(self):
        return bool(self._sol_on)

    def opening(self):
        """The cryogen valve's drive now, per mille (0..OPEN)."""
        return self._sol_on

    def path_open(self):
        """Solenoid and master valve both open now, each by its pin or stuck
        open by a scenario fault: cryogen flows if the dewar has pressure."""
        return bool(
            _effective(self.solenoid_stuck, self._sol_on)
            and _effective(self.master_stuck, self._mst_on)
        )

    def restart(self, now):
        """Forget the energised times: the world skips ahead to ``now``."""
        self._t_edge = now
        self._sol_ms = self._mst_ms = self._both_ms = 0

    def take_path_ms(self, now, elapsed):
        """(per-mille ms the series path delivered, per-mille ms of that
        beyond the cryogen valve's drive) over the ``elapsed`` ms of the
        plant step ending at ``now`` (``elapsed * OPEN``: fully open
        throughout); the stuck faults hold for the whole step (scenario
        events apply at plant steps)."""
        self._count_to(now)
        sol, mst, both = self._sol_ms, self._mst_ms, self._both_ms
        self._sol_ms = self._mst_ms = self._both_ms = 0
        vs, ms = self.solenoid_stuck, self.master_stuck
        full = elapsed * OPEN
        unc = 0
        if vs == "closed" or ms == "closed":
            path = 0
        elif vs == "open":
            # Only a stuck cryogen valve lets cryogen past what it is driven to.
            path = full if ms == "open" else mst
            unc = full - sol if ms == "open" else mst - both
        elif ms == "open":
            path = sol
        else:
            path = both
        path = min(max(path, 0), full)
        return path, min(max(unc, 0), path)

    def account(self, path, unc, pressurised):
        """Count a step's flow (only with pressure in the dewar)."""
        if pressurised:
            self._flow_pm += path
            self._unc_pm += unc

    flow_ms = property(lambda v: v._flow_pm // OPEN)
    uncommanded_ms = property(lambda v: v._unc_pm // OPEN)


def _effective(stuck, opening):
    """A valve's opening: its drive's, unless a scenario fault sticks it."""
    if stuck is None:
        return opening
    return OPEN if stuck == "open" else 0
