"""The tissue under the spray: a 1-D stack of finite-volume nodes.

Nodes (epidermis, scar/dermis, subcutis, from the plant file's layers)
above a core held at the arterial temperature. Pennes bioheat with phase
change in the apparent-heat-capacity form (Pennes 1948; Rubinsky 2000,
Annu Rev Biomed Eng): latent heat spread between ``freeze_upper_c``
(−1 °C) and ``freeze_lower_c`` (−8 °C), conductivity and capacity blended
by the liquid fraction, perfusion multiplied by the liquid fraction (stops
when frozen). Integrated implicitly (backward Euler, Thomas algorithm), so
any step is stable; a corrector pass with the enthalpy chord capacity keeps
latent heat exact when a node crosses the mushy zone.

The surface exchanges heat with an environment given per step (room air
and the spray: plant.py): a combined coefficient ``h_tot`` towards
``t_env``. Pure Python for MicroPython and CPython (no numpy).
"""

from native import micropython
from plant_params import num


class Tissue:
    """``depth_c``: node temperatures from the surface down (°C);
    ``node_depth_mm``: each node's centre below the surface."""

    def __init__(self, p):
        self._tu = num(p, "freeze_upper_c")
        self._tl = num(p, "freeze_lower_c")
        self._dT = self._tu - self._tl
        self._lat = num(p, "latent_heat_j_m3")
        self._core = num(p, "core_c")
        rho_c_blood = num(p, "blood_rho_c_j_m3k")
        # Node geometry and properties (per node, SI units).
        d, ku, kf, cu, cf, w, depth = [], [], [], [], [], [], []
        z = 0.0
        for lay in p["layers"]:
            n = lay["nodes"]
            th = num(lay, "thickness_mm") / 1000.0 / n
            for _ in range(n):
                d.append(th)
                ku.append(num(lay, "k_unfrozen"))
                kf.append(num(lay, "k_frozen"))
                cu.append(num(lay, "rho_c_unfrozen"))
                cf.append(num(lay, "rho_c_frozen"))
                w.append(num(lay, "perfusion_1_s") * rho_c_blood)
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
        self.depth_c = [self._core] * n

    def _enthalpy(self, i, t):
        """Volumetric enthalpy (J/m³) relative to the frozen limit."""
        cf, cu, dT, tl = self._cf[i], self._cu[i], self._dT, self._tl
        if t <= tl:
            return cf * (t - tl)
        if t >= self._tu:
            return cf * dT + (cu - cf) * dT * 0.5 + self._lat + cu * (t - self._tu)
        x = t - tl
        return cf * x + (cu - cf) * x * x / (2.0 * dT) + self._lat * x / dT

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
    def step(self, dt, h_tot, t_env):
        """Advance ``dt`` s with the surface coupled by ``h_tot`` (W/m²K) to ``t_env``."""
        self._solve(dt, h_tot, t_env, False)
        if self._crosses_mushy():
            self._solve(dt, h_tot, t_env, True)
        T, new = self.depth_c, self._new
        i = 0
        while i < self.n:
            T[i] = new[i]
            i += 1

    def settle(self, h_air, ambient_c):
        """Start from the steady state with the surface exposed to room air."""
        k = 0
        while k < 60:
            self.step(100.0, h_air, ambient_c)
            k += 1

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
