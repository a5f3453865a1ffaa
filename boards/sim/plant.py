"""Physical plant of the virtual board: tissue, cryogen line, reservoir, probes.

Pure Python for MicroPython and CPython (no numpy). One call of
``step(dt_s, valve_open, master_open)`` advances everything by ``dt_s``,
in sub-steps of at most ``max_substep_s``:

* Cryogen (cryogen.py): the command down the line with its dead time, the
  line's chill-down, the dewar's mass and pressure, the spray's
  heat-transfer coefficient.
* Tissue (tissue.py): the node stack, cooled through its surface by room
  air and the spray at the line's temperature.
* Sensors (here): thermocouple hot junctions with first-order lag and seeded
  Gaussian-ish noise (``probe_c``, ``probe2_c``, ``probe3_c`` on the skin surface, ``aux_c``
  on the nozzle line), the board's cold-junction temperature warming up.

Plant files (fields, checks, loading) are plant_params.py's; ``load``,
``validate``, ``PlantError``, ``VARIANTS`` and ``plants_dir`` are
re-exported here, where the plant's users look for them.

Deterministic for a given seed: the noise generator is an integer LCG.
"""

from cryogen import CryogenLine
from native import micropython
from plant_params import VARIANTS, PlantError, load, num, plants_dir, validate
from tissue import Tissue

__all__ = ["VARIANTS", "Noise", "Plant", "PlantError", "load", "plants_dir", "validate"]


class Noise:
    """Deterministic noise: 31-bit LCG (same sequence on MicroPython and CPython)."""

    def __init__(self, seed):
        self._s = (seed * 2654435761 + 12345) & 0x7FFFFFFF

    def uniform(self):
        """Uniform in [0, 1)."""
        self._s = (self._s * 1103515245 + 12345) & 0x7FFFFFFF
        return self._s / 2147483648.0

    def gauss(self):
        """Approximately standard normal (Irwin-Hall of 4 uniforms, scaled)."""
        return (self.uniform() + self.uniform() + self.uniform() + self.uniform() - 2.0) * 1.7320508


class Plant:
    """The physical world the virtual board is attached to."""

    # The cryogen side's state under the plant's names (docs/plant.md).
    flow = property(lambda p: p.cryogen.flow)
    line_c = property(lambda p: p.cryogen.line_c)
    reservoir_kg = property(lambda p: p.cryogen.reservoir_kg)
    pressure_loss = property(
        lambda p: p.cryogen.pressure_loss, lambda p, v: setattr(p.cryogen, "pressure_loss", v)
    )

    def __init__(self, params, seed=0):
        validate(params)
        self.params = params
        self.name = params.get("name", "plant")
        self._noise = Noise(seed)
        # The independent skin probe's noise is a stream of its own, so the
        # other probes' sequences do not depend on whether a board fits it.
        self._noise3 = Noise(seed + 1000003)
        p = params
        self._amb = num(p, "ambient_c")
        self._h_air = num(p, "h_air_w_m2k")
        self._probe_tau = num(p, "probe_tau_s")
        self._probe_noise = num(p, "probe_noise_c")
        self._aux_tau = num(p, "aux_tau_s")
        self._aux_noise = num(p, "aux_noise_c")
        self._cj0 = num(p, "cold_junction_start_c")
        self._cj_rise = num(p, "cold_junction_rise_c")
        self._cj_tau = num(p, "cold_junction_tau_s")
        self._max_dt = num(p, "max_substep_s")
        self.tissue = Tissue(p)
        self.cryogen = CryogenLine(p)
        self.depth_c = self.tissue.depth_c  # the same list, updated in place
        self.node_depth_mm = self.tissue.node_depth_mm
        self.n = self.tissue.n
        self.t_s = 0.0
        self.heat_flux_w_m2 = 0.0
        self.tissue.settle(self._h_air, self._amb)
        self.surface_c = self.depth_c[0]
        self._probe = self.surface_c
        self._probe2 = self.surface_c
        self._probe3 = self.surface_c
        self._aux = self.line_c
        self.cold_junction_c = self._cj0
        self._update_outputs(0.0)

    @micropython.native
    def _substep(self, dt, cmd):
        cryo = self.cryogen
        cryo.substep(dt, cmd)
        ts = self.depth_c[0]
        h_s = cryo.spray_h(ts)
        h_tot = self._h_air + h_s
        t_env = (self._h_air * self._amb + h_s * cryo.line_c) / h_tot
        self.heat_flux_w_m2 = h_tot * (t_env - ts)
        self.tissue.step(dt, h_tot, t_env)

    def _update_outputs(self, dt):
        self.surface_c = self.depth_c[0]
        nz = self._noise
        if dt > 0.0:
            a = dt / (self._probe_tau + dt)
            self._probe += (self.surface_c - self._probe) * a
            self._probe2 += (self.surface_c - self._probe2) * a
            self._probe3 += (self.surface_c - self._probe3) * a
            self._aux += (self.line_c - self._aux) * (dt / (self._aux_tau + dt))
        self.probe_c = self._probe + self._probe_noise * nz.gauss()
        self.probe2_c = self._probe2 + self._probe_noise * nz.gauss()
        self.aux_c = self._aux + self._aux_noise * nz.gauss()
        self.probe3_c = self._probe3 + self._probe_noise * self._noise3.gauss()
        if self._cj_tau > 0:
            x = self.t_s / self._cj_tau
            self.cold_junction_c = self._cj0 + self._cj_rise * x / (1.0 + x)
        cryo = self.cryogen
        self.supply_pressure_kpa = cryo.supply_pressure()
        res0 = cryo.reservoir0_kg
        self.reservoir_fraction = cryo.reservoir_kg / res0 if res0 > 0 else 0.0

    # ------------------------------------------------------------------- API
    def step(self, dt_s, valve_open, master_open):
        """Advance by ``dt_s`` seconds with the valve command held constant.

        ``valve_open`` is the cryogen valve opening (0..1, or the duty over the
        step); cryogen only flows if ``master_open`` is true as well.
        """
        if dt_s <= 0:
            return
        cmd = float(valve_open) if master_open else 0.0
        if cmd < 0.0:
            cmd = 0.0
        elif cmd > 1.0:
            cmd = 1.0
        n = int(dt_s / self._max_dt)
        if n * self._max_dt < dt_s * 0.999999:
            n += 1
        h = dt_s / n
        k = 0
        while k < n:
            self._substep(h, cmd)
            k += 1
        self.t_s += dt_s
        self._update_outputs(dt_s)

    def state(self):
        """Physical state as a JSON-able dict (the patient and the dewar
        outlive a reset of the board: the real-time sim restores it)."""
        return {
            "t_s": self.t_s,
            "depth_c": list(self.depth_c),
            "line_c": self.line_c,
            "reservoir_kg": self.reservoir_kg,
            "pressure_loss": self.pressure_loss,
            "probe": [self._probe, self._probe2, self._aux, self._probe3],
        }

    def restore(self, st):
        """Inverse of :meth:`state` (the cryogen in the line has drained)."""
        if len(st["depth_c"]) != self.n:
            raise PlantError(
                "saved plant state has %d nodes, plant has %d" % (len(st["depth_c"]), self.n)
            )
        self.t_s = float(st["t_s"])
        i = 0
        while i < self.n:
            self.depth_c[i] = float(st["depth_c"][i])
            i += 1
        cryo = self.cryogen
        cryo.line_c = float(st["line_c"])
        cryo.reservoir_kg = float(st["reservoir_kg"])
        cryo.pressure_loss = float(st["pressure_loss"])
        pr = [float(x) for x in st["probe"]]
        self._probe, self._probe2, self._aux = pr[0], pr[1], pr[2]
        self._probe3 = pr[3] if len(pr) > 3 else pr[0]  # saved before it was fitted
        self._update_outputs(0.0)

    def empty_reservoir(self):
        """Scenario: cryogen runs out now."""
        self.cryogen.reservoir_kg = 0.0
        self._update_outputs(0.0)

    def frozen_depth_mm(self):
        """Depth of the −1 °C isotherm below the surface (0 if not frozen)."""
        return self.tissue.frozen_depth_mm()
