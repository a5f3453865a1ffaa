"""What a fast run measures (fastrun.py): the figures of its summary and
the trace CSV.

The cost figures serve the bench and the emulated Cortex-M board
(boards/qemu-mps2): the time of the controller's tick (there,
instruction-counted virtual time) and, with ``collect_each_tick`` (a
collection before each tick too), the heap in use just before the
collection after each tick (live data + that tick's and its idle point's
garbage) and right after it (live). The collection before the tick keeps
the plant's and the emulated chips' garbage from the sub-ticks out of the
tick: it is the virtual board's, not the firmware's.
"""

import gc
import time

TRACE_HEADER = (
    "t_s,surface_c,probe_c,probe2_c,aux_c,valve,reservoir_fraction,supply_kpa,flow,phase\n"
)


class HoldStats:
    """The treatment's own hold (FREEZE after the target was reached), on
    the true skin surface at every valve sub-tick: error RMS and valve
    cycles (regulation bench)."""

    def __init__(self):
        self.sq = 0.0
        self.n = 0
        self.ms = 0
        self.cycles = 0
        self._c0 = None
        self.t_reach_ms = None

    def add(self, ctrl, world, elapsed, step_ms):
        if ctrl is None:
            return
        proto = ctrl.protocol
        if proto.name != "FREEZE" or not proto.reached:
            self._c0 = None
            return
        if self.t_reach_ms is None:
            self.t_reach_ms = elapsed
        if self._c0 is None:
            self._c0 = world.valve_cycles
        e = world.plant.surface_c - ctrl.ticker.setpoint_c
        self.sq += e * e
        self.n += 1
        self.ms += step_ms
        self.cycles += world.valve_cycles - self._c0
        self._c0 = world.valve_cycles

    def summary(self):
        return {
            "rms_c": (self.sq / self.n) ** 0.5 if self.n else None,
            "s": self.ms / 1000.0,
            "cycles": self.cycles,
            "t_reach_s": self.t_reach_ms / 1000.0 if self.t_reach_ms is not None else None,
        }


def _autotune(ctrl):
    try:
        return ctrl.autotune_status() if ctrl is not None else None
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return {"error": repr(e)}


class RunFigures:
    """The run's figures, sampled by the runner at each tick and step."""

    def __init__(self, collect_each):
        self.collect_each = collect_each
        self._hold = HoldStats()
        self.ticks = 0
        self.min_surface = 1e9
        self.min_probe = 1e9
        self.open_ms = 0
        self.flow_ms = 0
        self.heap_tick_peak = 0
        self.heap_live_peak = 0
        self.tick_us_max = 0
        self.tick_us_sum = 0
        self.tick_max_at = None

    def hold(self, ctrl, world, elapsed, step_ms):
        """After each valve sub-tick and each tick: the treatment's hold."""
        self._hold.add(ctrl, world, elapsed, step_ms)

    def tick(self, ctrl, now, elapsed):
        """``ctrl.tick(now)``, timed (an exception propagates to the runner)."""
        if self.collect_each:
            gc.collect()
        t0 = time.ticks_us()
        ctrl.tick(now)
        dt = time.ticks_diff(time.ticks_us(), t0)
        self.tick_us_sum += dt
        if dt > self.tick_us_max:
            self.tick_us_max = dt
            self.tick_max_at = (elapsed, ctrl.protocol.name)

    def tick_done(self):
        """The tick and its idle point ran: count it, measure the heap."""
        self.ticks += 1
        if self.collect_each:
            used = gc.mem_alloc()
            if used > self.heap_tick_peak:
                self.heap_tick_peak = used
            gc.collect()
            used = gc.mem_alloc()
            if used > self.heap_live_peak:
                self.heap_live_peak = used

    def step(self, world, period):
        """After each control period: the coldest temperatures, valve open
        time (the firmware's command) and cryogen flow time."""
        p = world.plant
        if p.surface_c < self.min_surface:
            self.min_surface = p.surface_c
        if p.probe_c < self.min_probe:
            self.min_probe = p.probe_c
        if world.valve_is_open():
            self.open_ms += period
        if p.flow > 0.0:
            self.flow_ms += period

    def summary(self, ctrl):
        """The summary's figures (``ctrl``: the controller at the end, or None)."""
        collect_each = self.collect_each
        ticks = self.ticks
        return {
            "ticks": ticks,
            "min_surface_c": self.min_surface,
            "min_probe_c": self.min_probe,
            "valve_open_s": self.open_ms / 1000.0,
            "cryogen_flow_s": self.flow_ms / 1000.0,
            # the TUNE phase's outcome (engineer workflow in virtual time: bench)
            "autotune": _autotune(ctrl),
            "hold": self._hold.summary(),
            "heap_tick_peak": self.heap_tick_peak if collect_each else None,
            "heap_live_peak": self.heap_live_peak if collect_each else None,
            "heap_size": gc.mem_alloc() + gc.mem_free(),
            "tick_us_mean": self.tick_us_sum / ticks if ticks else 0,
            "tick_us_max": self.tick_us_max,
            "tick_max_at": self.tick_max_at,
        }


class Trace:
    """The trace CSV: the plant, the valve and the phase every ``every_ms``."""

    def __init__(self, path, every_ms):
        self._f = open(path, "w")
        self._f.write(TRACE_HEADER)
        self._every = every_ms
        self._next = 0

    def sample(self, elapsed, world, ctrl):
        if elapsed < self._next:
            return
        self._next += self._every
        p = world.plant
        self._f.write(
            "%.3f,%.3f,%.3f,%.3f,%.3f,%d,%.4f,%.2f,%.3f,%s\n"
            % (
                elapsed / 1000.0,
                p.surface_c,
                p.probe_c,
                p.probe2_c,
                p.aux_c,
                1 if world.valve_is_open() else 0,
                p.reservoir_fraction,
                p.supply_pressure_kpa,
                p.flow,
                ctrl.protocol.name if ctrl is not None else "OFF",
            )
        )

    def close(self):
        self._f.close()
