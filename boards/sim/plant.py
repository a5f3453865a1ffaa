"""Physical plant of the virtual board: tissue, cryogen line, reservoir, probes.

Pure Python for MicroPython and CPython (no numpy). One call of
``step(dt_s, valve_open, master_open)`` advances everything by ``dt_s``:

* Tissue: a 1-D stack of finite-volume nodes (epidermis, scar/dermis,
  subcutis) above a core held at the arterial temperature. Pennes bioheat with
  phase change in the apparent-heat-capacity form (Pennes 1948; Rubinsky 2000, Annu Rev Biomed Eng):
  latent heat spread between ``freeze_upper_c`` (−1 °C) and
  ``freeze_lower_c`` (−8 °C), conductivity and capacity blended by the liquid
  fraction, perfusion multiplied by the liquid fraction (stops when frozen).
  Integrated implicitly (backward Euler, Thomas algorithm), so any step is
  stable; a corrector pass with the enthalpy chord capacity keeps latent heat
  exact when a node crosses the mushy zone.
* Cryogen: the valve command (times master valve, supply pressure and
  "reservoir not empty") travels down the line with a transport dead time; the
  line chills down while cryogen flows and warms back when it stops; the spray
  reaches the skin at the line temperature with a film-boiling heat-transfer
  coefficient ``h_spray`` (Leidenfrost regime, far below nucleate-boiling
  maxima; calibrated against Har-Shai 2007, see docs/plant.md).
* Reservoir: mass drains with the delivered flow; supply pressure falls with
  the fill level and to zero when empty (``pressure_loss`` models a leak).
* Sensors: thermocouple hot junctions with first-order lag and seeded
  Gaussian-ish noise (``probe_c``, ``probe2_c`` on the skin surface, ``aux_c``
  on the nozzle line), the board's cold-junction temperature warming up.

Deterministic for a given seed: the noise generator is an integer LCG.
"""

import sys

import shipped

if sys.implementation.name == "micropython":
    import micropython  # @micropython.native: the hot loops run ~3x faster
else:

    class micropython:  # noqa: N801 - CPython stand-in for the decorator
        @staticmethod
        def native(f):
            return f


_KEYS = {
    "name": "str",
    "description": "str",
    "layers": "list",
    "core_c": "num",
    "ambient_c": "num",
    "h_air_w_m2k": "num",
    "h_spray_w_m2k": "num",
    "h_spray_cold_gain": "num",
    "cryogen_c": "num",
    "latent_heat_j_m3": "num",
    "freeze_upper_c": "num",
    "freeze_lower_c": "num",
    "blood_rho_c_j_m3k": "num",
    "dead_time_s": "num",
    "line_chill_tau_s": "num",
    "line_warm_tau_s": "num",
    "reservoir_kg": "num",
    "flow_kg_s": "num",
    "supply_pressure_kpa": "num",
    "probe_tau_s": "num",
    "probe_noise_c": "num",
    "aux_tau_s": "num",
    "aux_noise_c": "num",
    "cold_junction_start_c": "num",
    "cold_junction_rise_c": "num",
    "cold_junction_tau_s": "num",
    "max_substep_s": "num",
}
_LAYER_KEYS = (
    "name",
    "thickness_mm",
    "nodes",
    "k_unfrozen",
    "k_frozen",
    "rho_c_unfrozen",
    "rho_c_frozen",
    "perfusion_1_s",
)
_SLOT_S = 0.01  # dead-time line resolution


class PlantError(ValueError):
    """A plant file is invalid; the message names the field and what is allowed."""


def _num(params, key):
    v = params[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PlantError("plant field %r must be a number, got %r" % (key, v))
    return float(v)


def validate(params):
    """Raise PlantError naming the first bad field of a plant dict."""
    if not isinstance(params, dict):
        raise PlantError("plant must be a JSON object")
    for k in params:
        if k not in _KEYS:
            raise PlantError("unknown plant field %r; allowed: %s" % (k, ", ".join(sorted(_KEYS))))
    for k in _KEYS:
        if k in ("name", "description"):
            continue
        if k not in params:
            raise PlantError("plant field %r is missing" % k)
        if _KEYS[k] == "num":
            _num(params, k)
    layers = params["layers"]
    if not isinstance(layers, list) or not layers:
        raise PlantError("plant field 'layers' must be a non-empty list")
    for i, lay in enumerate(layers):
        if not isinstance(lay, dict):
            raise PlantError("layers[%d] must be an object" % i)
        for k in _LAYER_KEYS:
            if k not in lay:
                raise PlantError("layers[%d] field %r is missing" % (i, k))
        for k in lay:
            if k not in _LAYER_KEYS:
                raise PlantError(
                    "layers[%d]: unknown field %r; allowed: %s" % (i, k, ", ".join(_LAYER_KEYS))
                )
        if not isinstance(lay["nodes"], int) or lay["nodes"] < 1:
            raise PlantError("layers[%d].nodes must be an integer >= 1" % i)
        for k in _LAYER_KEYS[3:]:
            if _num(lay, k) < 0:
                raise PlantError("layers[%d].%s must be >= 0" % (i, k))
        if _num(lay, "thickness_mm") <= 0:
            raise PlantError("layers[%d].thickness_mm must be > 0" % i)
    if _num(params, "freeze_upper_c") <= _num(params, "freeze_lower_c"):
        raise PlantError("freeze_upper_c must be above freeze_lower_c")
    for k in ("probe_tau_s", "aux_tau_s", "line_chill_tau_s", "line_warm_tau_s", "max_substep_s"):
        if _num(params, k) <= 0:
            raise PlantError("plant field %r must be > 0" % k)
    if _num(params, "reservoir_kg") < 0 or _num(params, "dead_time_s") < 0:
        raise PlantError("reservoir_kg and dead_time_s must be >= 0")


# The plant files of the regulation bench and the plant-aware watch tests
# (docs/plant.md: the default and one change each at the edge of the ranges).
VARIANTS = (
    "default",
    "dead_time_3s",
    "slow_noisy_probe",
    "noisy_probe",
    "weak_spray",
    "spray_1_5x",
    "perfused_6x",
)


def plants_dir():
    """Directory of the shipped plant files (boards/sim/plants)."""
    return shipped.folder("plants")


def load(name_or_path):
    """Plant dict from a shipped name ('default') or a JSON file path."""
    params = shipped.load_json("plant", "plants", name_or_path, PlantError)
    validate(params)
    return params


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

    def __init__(self, params, seed=0):
        validate(params)
        self.params = params
        self.name = params.get("name", "plant")
        self._noise = Noise(seed)
        p = params
        self._tu = _num(p, "freeze_upper_c")
        self._tl = _num(p, "freeze_lower_c")
        self._dT = self._tu - self._tl
        self._lat = _num(p, "latent_heat_j_m3")
        self._core = _num(p, "core_c")
        self._amb = _num(p, "ambient_c")
        self._h_air = _num(p, "h_air_w_m2k")
        self._h_spray = _num(p, "h_spray_w_m2k")
        self._h_gain = _num(p, "h_spray_cold_gain")
        self._t_cryo = _num(p, "cryogen_c")
        self._rho_c_b = _num(p, "blood_rho_c_j_m3k")
        self._chill_tau = _num(p, "line_chill_tau_s")
        self._warm_tau = _num(p, "line_warm_tau_s")
        self._flow_kg_s = _num(p, "flow_kg_s")
        self._p_nom = _num(p, "supply_pressure_kpa")
        self._res0 = _num(p, "reservoir_kg")
        self._probe_tau = _num(p, "probe_tau_s")
        self._probe_noise = _num(p, "probe_noise_c")
        self._aux_tau = _num(p, "aux_tau_s")
        self._aux_noise = _num(p, "aux_noise_c")
        self._cj0 = _num(p, "cold_junction_start_c")
        self._cj_rise = _num(p, "cold_junction_rise_c")
        self._cj_tau = _num(p, "cold_junction_tau_s")
        self._max_dt = _num(p, "max_substep_s")
        # Node geometry and properties (per node, SI units).
        d, ku, kf, cu, cf, w, depth = [], [], [], [], [], [], []
        z = 0.0
        for lay in p["layers"]:
            n = lay["nodes"]
            th = _num(lay, "thickness_mm") / 1000.0 / n
            for _ in range(n):
                d.append(th)
                ku.append(_num(lay, "k_unfrozen"))
                kf.append(_num(lay, "k_frozen"))
                cu.append(_num(lay, "rho_c_unfrozen"))
                cf.append(_num(lay, "rho_c_frozen"))
                w.append(_num(lay, "perfusion_1_s") * self._rho_c_b)
                depth.append((z + th / 2) * 1000.0)
                z += th
        self._d, self._ku, self._kf, self._cu, self._cf, self._w = d, ku, kf, cu, cf, w
        self.node_depth_mm = depth
        self.n = n = len(d)
        # Preallocated work arrays for the tridiagonal solve.
        self._a = [0.0] * n
        self._b = [0.0] * n
        self._c = [0.0] * n
        self._r = [0.0] * n
        self._cap = [0.0] * n
        self._new = [0.0] * n
        self._g = [0.0] * n  # conductance node i -> i+1 (last: to core)
        # Dead-time line of the valve command.
        slots = int(_num(p, "dead_time_s") / _SLOT_S + 0.5)
        self._line = [0.0] * (slots if slots > 0 else 1)
        self._line_i = 0
        self._line_acc = 0.0
        self._has_delay = slots > 0
        # State.
        self.t_s = 0.0
        self.depth_c = [self._core] * n
        self.line_c = self._amb
        self.reservoir_kg = self._res0
        self.pressure_loss = 0.0  # scenario: fraction of pressure lost (0..1)
        self.flow = 0.0  # delivered cryogen fraction at the nozzle (0..1)
        self.heat_flux_w_m2 = 0.0
        self._cmd = 0.0
        self._settle()
        self.surface_c = self.depth_c[0]
        self._probe = self.surface_c
        self._probe2 = self.surface_c
        self._aux = self.line_c
        self.cold_junction_c = self._cj0
        self._update_outputs(0.0)

    # ---------------------------------------------------------------- physics
    def _liquid(self, t):
        if t >= self._tu:
            return 1.0
        if t <= self._tl:
            return 0.0
        return (t - self._tl) / self._dT

    def _enthalpy(self, i, t):
        """Volumetric enthalpy (J/m³) relative to the frozen limit."""
        cf, cu, dT, tl = self._cf[i], self._cu[i], self._dT, self._tl
        if t <= tl:
            return cf * (t - tl)
        if t >= self._tu:
            return cf * dT + (cu - cf) * dT * 0.5 + self._lat + cu * (t - self._tu)
        x = t - tl
        return cf * x + (cu - cf) * x * x / (2.0 * dT) + self._lat * x / dT

    def _capacity(self, i, t):
        """d(enthalpy)/dT: apparent heat capacity (latent heat in the mushy zone)."""
        if t >= self._tu:
            return self._cu[i]
        if t <= self._tl:
            return self._cf[i]
        f = (t - self._tl) / self._dT
        return self._cf[i] + f * (self._cu[i] - self._cf[i]) + self._lat / self._dT

    @micropython.native
    def _solve(self, dt, h_tot, t_env, use_chord):
        """One backward-Euler step of the tissue stack into self._new.

        Written as flat loops with locals (no per-node method calls): this
        is the simulator's hot path under MicroPython.
        """
        n, T, d = self.n, self.depth_c, self._d
        a, b, c, r, cap, g, new = self._a, self._b, self._c, self._r, self._cap, self._g, self._new
        ku, kf, cu, cf, w = self._ku, self._kf, self._cu, self._cf, self._w
        tu, tl, dT, lat = self._tu, self._tl, self._dT, self._lat
        core = self._core
        # liquid fraction, conductivity and capacity per node (reuse r, c as scratch)
        i = 0
        while i < n:
            t = T[i]
            if t >= tu:
                f = 1.0
                cap_i = cu[i]
            elif t <= tl:
                f = 0.0
                cap_i = cf[i]
            else:
                f = (t - tl) / dT
                cap_i = cf[i] + f * (cu[i] - cf[i]) + lat / dT
            if use_chord:
                # enthalpy chord over the step, only where latent heat is involved
                t1 = new[i]
                lo, hi = (t, t1) if t < t1 else (t1, t)
                if hi > tl and lo < tu and hi - lo > 1e-6:
                    cap_i = (self._enthalpy(i, t1) - self._enthalpy(i, t)) / (t1 - t)
            cap[i] = cap_i
            r[i] = f  # liquid fraction
            c[i] = kf[i] + f * (ku[i] - kf[i])  # conductivity
            i += 1
        i = 0
        while i < n - 1:
            g[i] = 1.0 / (d[i] / (2.0 * c[i]) + d[i + 1] / (2.0 * c[i + 1]))
            i += 1
        g[n - 1] = 2.0 * c[n - 1] / d[n - 1]
        i = 0
        gprev = 0.0
        while i < n:
            di = d[i]
            m = cap[i] * di / dt
            perf = w[i] * di * r[i]
            gi = g[i]
            bb = m + perf + gi + gprev
            rr = m * T[i] + perf * core
            if i == 0:
                bb += h_tot
                rr += h_tot * t_env
            if i == n - 1:
                rr += gi * core
            a[i] = -gprev
            c[i] = -gi if i < n - 1 else 0.0
            b[i] = bb
            r[i] = rr
            gprev = gi
            i += 1
        # Thomas algorithm (b and r are overwritten)
        i = 1
        while i < n:
            m = a[i] / b[i - 1]
            b[i] -= m * c[i - 1]
            r[i] -= m * r[i - 1]
            i += 1
        new[n - 1] = r[n - 1] / b[n - 1]
        i = n - 2
        while i >= 0:
            new[i] = (r[i] - c[i] * new[i + 1]) / b[i]
            i -= 1

    @micropython.native
    def _crosses_mushy(self):
        lo, hi = self._tl - 0.5, self._tu + 0.5
        T, new = self.depth_c, self._new
        i = 0
        while i < self.n:
            a, b = T[i], new[i]
            if a > b:
                a, b = b, a
            if b >= lo and a <= hi:
                return True
            i += 1
        return False

    @micropython.native
    def _tissue_step(self, dt, h_tot, t_env):
        self._solve(dt, h_tot, t_env, False)
        if self._crosses_mushy():
            self._solve(dt, h_tot, t_env, True)
        T, new = self.depth_c, self._new
        i = 0
        while i < self.n:
            T[i] = new[i]
            i += 1

    def _settle(self):
        """Start from the steady state with the surface exposed to room air."""
        k = 0
        while k < 60:
            self._tissue_step(100.0, self._h_air, self._amb)
            k += 1

    def supply_pressure(self):
        """Supply pressure (kPa gauge) from fill level and scenario leak."""
        if self._res0 <= 0:
            return 0.0
        frac = self.reservoir_kg / self._res0
        if frac <= 0:
            p = 0.0
        elif frac < 0.05:
            p = self._p_nom * 0.85 * frac / 0.05
        else:
            p = self._p_nom * (0.85 + 0.15 * frac)
        return p * (1.0 - self.pressure_loss)

    @micropython.native
    def _substep(self, dt, cmd):
        # Transport dead time: the command reaches the nozzle late.
        if self._has_delay:
            line = self._line
            self._line_acc += dt
            while self._line_acc >= _SLOT_S:
                self._line_acc -= _SLOT_S
                self._cmd = line[self._line_i]
                line[self._line_i] = cmd
                self._line_i = (self._line_i + 1) % len(line)
            arriving = self._cmd
        else:
            arriving = cmd
        p = self.supply_pressure()
        flow = 0.0
        if arriving > 0.0 and p > 0.0 and self.reservoir_kg > 0.0:
            flow = arriving * (p / self._p_nom) ** 0.5
            if flow > 1.0:
                flow = 1.0
            self.reservoir_kg -= flow * self._flow_kg_s * dt
            if self.reservoir_kg < 0.0:
                self.reservoir_kg = 0.0
        self.flow = flow
        # Line chill-down: flowing cryogen pulls the line to cryogen
        # temperature; without flow it warms towards ambient.
        lc = self.line_c
        rate = flow / self._chill_tau
        lc += (
            dt
            * (rate * (self._t_cryo - lc) + (self._amb - lc) / self._warm_tau)
            / (1.0 + dt * (rate + 1.0 / self._warm_tau))
        )
        self.line_c = lc
        # Spray heat transfer: film boiling, rising as the surface cools.
        ts = self.depth_c[0]
        h_s = 0.0
        if flow > 0.0:
            h_s = self._h_spray * flow * (1.0 + self._h_gain * (self._amb - ts) / 100.0)
            if h_s < 0.0:
                h_s = 0.0
        h_tot = self._h_air + h_s
        t_env = (self._h_air * self._amb + h_s * lc) / h_tot
        self.heat_flux_w_m2 = h_tot * (t_env - ts)
        self._tissue_step(dt, h_tot, t_env)

    def _update_outputs(self, dt):
        self.surface_c = self.depth_c[0]
        nz = self._noise
        if dt > 0.0:
            a = dt / (self._probe_tau + dt)
            self._probe += (self.surface_c - self._probe) * a
            self._probe2 += (self.surface_c - self._probe2) * a
            self._aux += (self.line_c - self._aux) * (dt / (self._aux_tau + dt))
        self.probe_c = self._probe + self._probe_noise * nz.gauss()
        self.probe2_c = self._probe2 + self._probe_noise * nz.gauss()
        self.aux_c = self._aux + self._aux_noise * nz.gauss()
        if self._cj_tau > 0:
            x = self.t_s / self._cj_tau
            self.cold_junction_c = self._cj0 + self._cj_rise * x / (1.0 + x)
        self.supply_pressure_kpa = self.supply_pressure()
        self.reservoir_fraction = self.reservoir_kg / self._res0 if self._res0 > 0 else 0.0

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
            "probe": [self._probe, self._probe2, self._aux],
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
        self.line_c = float(st["line_c"])
        self.reservoir_kg = float(st["reservoir_kg"])
        self.pressure_loss = float(st["pressure_loss"])
        self._probe, self._probe2, self._aux = [float(x) for x in st["probe"]]
        self._update_outputs(0.0)

    def empty_reservoir(self):
        """Scenario: cryogen runs out now."""
        self.reservoir_kg = 0.0
        self._update_outputs(0.0)

    def frozen_depth_mm(self):
        """Depth of the −1 °C isotherm below the surface (0 if not frozen)."""
        T, z = self.depth_c, self.node_depth_mm
        if T[0] > self._tu:
            return 0.0
        i = 1
        while i < self.n:
            if T[i] > self._tu:
                t0, t1 = T[i - 1], T[i]
                return z[i - 1] + (z[i] - z[i - 1]) * (self._tu - t0) / (t1 - t0)
            i += 1
        return z[self.n - 1]
