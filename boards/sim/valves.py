"""The solenoid and the master valve in series, as the plant sees them.

Cryogen reaches the nozzle only while the solenoid AND the master valve
are open, each open when its pin is energised unless a scenario fault
sticks it (``solenoid_stuck`` / ``master_stuck``: None, "open", "closed").
``flow_ms`` counts the ms the path was open with pressure in the dewar;
``uncommanded_ms`` the part of it with the solenoid pin de-energised (a
single fault the master valve must contain); ``cycles`` the solenoid's
openings.

Allocation: a pin edge (:meth:`drive`) is integer bookkeeping only — the
firmware's safety path closes the valves with the heap locked. Since the
last plant step it keeps the ms each pin was energised and the ms both
were; :meth:`take_path_ms` turns them into the ms the series path was
open, with the stuck faults held for the whole step.
"""


class SeriesValves:
    def __init__(self, clock, t0):
        self._clock = clock
        self.solenoid_stuck = None  # None, 'open' or 'closed' (scenario)
        self.master_stuck = None  # the same for the master valve
        self._t_edge = t0  # the last pin edge counted (ticks ms)
        # ms energised since the last plant step: solenoid, master, both
        self._sol_ms = self._mst_ms = self._both_ms = 0
        self._sol_on = self._mst_on = 0  # the pins now
        self.cycles = 0
        self.flow_ms = 0  # path open (both valves) with pressure in the dewar
        self.uncommanded_ms = 0  # ... of which with the solenoid pin de-energised

    def drive(self, solenoid_on, master_on):
        """The pins now energise the solenoid / the master valve (0 or 1).

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
        if self._sol_on:
            self._sol_ms += d
            if self._mst_on:
                self._both_ms += d
        if self._mst_on:
            self._mst_ms += d
        self._t_edge = now

    def solenoid_energised(self):
        return bool(self._sol_on)

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
        """(ms the series path was open, ms of that with the solenoid pin
        de-energised) over the ``elapsed`` ms of the plant step ending at
        ``now``; the stuck faults hold for the whole step (scenario events
        apply at plant steps)."""
        self._count_to(now)
        sol, mst, both = self._sol_ms, self._mst_ms, self._both_ms
        self._sol_ms = self._mst_ms = self._both_ms = 0
        vs, ms = self.solenoid_stuck, self.master_stuck
        unc = 0
        if vs == "closed" or ms == "closed":
            path = 0
        elif vs == "open":
            # Only a stuck solenoid lets cryogen past a de-energised pin.
            path = elapsed if ms == "open" else mst
            unc = elapsed - sol if ms == "open" else mst - both
        elif ms == "open":
            path = sol
        else:
            path = both
        path = min(max(path, 0), elapsed)
        return path, min(max(unc, 0), path)

    def account(self, path, unc, pressurised):
        """Count a step's flow (only with pressure in the dewar)."""
        if pressurised:
            self.flow_ms += path
            self.uncommanded_ms += unc


def _effective(stuck, energised):
    """A valve's state: its pin's, unless a scenario fault sticks it."""
    if stuck is None:
        return energised
    return 1 if stuck == "open" else 0
