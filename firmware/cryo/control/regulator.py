"""The regulator: tissue temperature → cooling demand during FREEZE.

``Regulator(clock, period_ms, gains, d_filter_s, band_c, bands, capacity,
approach)`` owns the
reverse-acting PID (``cryo.pid.PID``), its loop timer (``LoopTimer``: the
real elapsed time, bounded, so a late tick does not inject a large
integral step) and, when the configuration has ``pid.bands``, the gain
schedule (``cryo.control.schedule.GainSchedule``). The controller asks it
for a demand once per FREEZE tick (``demand``), empties it when a cooling
phase starts or the permit goes (``reset``) and passes it an engineer's live
gain change (``set``), which it takes bumpless.

Control path (floats; the interlock, not this object, decides whether the
valve may open).
"""

from cryo.pid import PID, LoopTimer

_GAINS = ("pid.kp", "pid.ki", "pid.kd")
# The approach settings, in ``PID.set_approach``'s order (docs/control.md).
APPROACH = ("pid.i_zone_c", "pid.hold_duty", "pid.beta", "pid.sp_ramp_c_s")


class Regulator:
    def __init__(
        self, clock, period_ms, gains, d_filter_s, band_c, bands=None, capacity=8, approach=None
    ):
        kp, ki, kd = gains
        self.pid = PID(kp, ki, kd, d_filter_s)
        if approach is not None:
            # (i_zone_c, hold_duty, beta, sp_ramp_c_s): docs/control.md, "Approach"
            self.pid.set_approach(*approach)
        # dt from the real elapsed time, bounded to [period/2, 2*period].
        self.timer = LoopTimer(clock, period_ms)
        self.schedule = None
        if bands:
            # Only a configured schedule costs the module's heap.
            from cryo.control.schedule import GainSchedule

            sch = GainSchedule((kp, ki, kd), band_c=band_c, capacity=capacity)
            sch.from_list(bands)  # ValueError names the bad row
            self.schedule = sch

    def reset(self):
        """Fresh regulator: empty integral, dt timer restarted (no stale gap)."""
        self.pid.reset()
        self.timer.restart()

    def demand(self, now, setpoint_c, tissue_c):
        """One FREEZE update: the demand 0..1 for the valve."""
        sch = self.schedule
        if sch is not None:
            sch.apply(self.pid, setpoint_c)  # bumpless, only when the band changes
        d = self.pid.update(setpoint_c, tissue_c, self.timer.dt_s(now))
        return 0.0 if d < 0.0 else (1.0 if d > 1.0 else d)

    def set(self, name, value):
        """A ``pid.*`` setting changed: taken **bumpless**.

        Gains go through ``PID.set_gains`` (the change of the P and D
        contributions moves into the integral, so the demand does not jump);
        the integral, filter state and dt timer are kept — a rebuilt PID
        would restart from an empty integral, a step in the demand in the
        middle of a freeze. With a gain schedule the new gain becomes the
        default and, if a band is in force, that band's (else the schedule
        would put the old one back at the next tick)."""
        pid = self.pid
        sch = self.schedule
        if name == "pid.d_filter_s":
            pid.d_filter_s = float(value)
            return
        if name == "pid.band_c":
            if sch is not None:
                sch.band_c = float(value)
            return
        if name in APPROACH:
            a = [pid.i_zone_c, pid.preload, pid.beta, pid.sp_ramp_c_per_s]
            a[APPROACH.index(name)] = float(value)
            pid.set_approach(a[0], a[1], a[2], a[3])
            return
        i = _GAINS.index(name)
        g = [pid.kp, pid.ki, pid.kd]
        if sch is not None:
            d = list(sch.default)
            d[i] = float(value)
            sch.default = tuple(d)
            if sch.active is None:
                g = d
        g[i] = float(value)
        if sch is not None and sch.active is not None:
            sch.store(sch.active, g[0], g[1], g[2])
        pid.set_gains(g[0], g[1], g[2])

    def terms(self):
        """(p, i, d) contributions of the last update, for telemetry."""
        p = self.pid
        return p.p_term, p.i_term, p.d_term

    def band(self):
        """Setpoint of the scheduled band in force (None: default gains)."""
        return self.schedule.active if self.schedule is not None else None

    def bands(self):
        """The schedule as the config's ``pid.bands`` rows."""
        return self.schedule.to_list() if self.schedule is not None else []
