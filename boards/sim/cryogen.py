"""The cryogen side of the plant: dewar, delivery line and spray.

* The valve command (times master valve, supply pressure and "reservoir
  not empty") travels down the line with a transport dead time (``_SLOT_S``
  resolution); the line chills down while cryogen flows and warms back
  when it stops.
* The spray reaches the skin at the line temperature with a film-boiling
  heat-transfer coefficient ``h_spray`` (Leidenfrost regime, far below
  nucleate-boiling maxima; calibrated against Har-Shai 2007, see
  docs/plant.md), rising as the surface cools.
* Reservoir: mass drains with the delivered flow; supply pressure falls
  with the fill level and to zero when empty (``pressure_loss``, a
  scenario's leak: the fraction of the pressure lost, 0..1).
"""

from native import micropython
from plant_params import num

_SLOT_S = 0.01  # dead-time line resolution


class CryogenLine:
    """``flow``: delivered fraction at the nozzle (0..1); ``line_c``: the
    line's temperature; ``reservoir_kg``: cryogen left in the dewar."""

    def __init__(self, p):
        self._amb = num(p, "ambient_c")
        self._h_spray = num(p, "h_spray_w_m2k")
        self._h_gain = num(p, "h_spray_cold_gain")
        self._t_cryo = num(p, "cryogen_c")
        self._chill_tau = num(p, "line_chill_tau_s")
        self._warm_tau = num(p, "line_warm_tau_s")
        self._flow_kg_s = num(p, "flow_kg_s")
        self._p_nom = num(p, "supply_pressure_kpa")
        self.reservoir0_kg = num(p, "reservoir_kg")
        # Dead-time line of the valve command.
        slots = int(num(p, "dead_time_s") / _SLOT_S + 0.5)
        self._line = [0.0] * (slots if slots > 0 else 1)
        self._line_i = 0
        self._line_acc = 0.0
        self._has_delay = slots > 0
        self._cmd = 0.0
        self.line_c = self._amb
        self.reservoir_kg = self.reservoir0_kg
        self.pressure_loss = 0.0
        self.flow = 0.0

    def supply_pressure(self):
        """Supply pressure (kPa gauge) from fill level and scenario leak."""
        if self.reservoir0_kg <= 0:
            return 0.0
        frac = self.reservoir_kg / self.reservoir0_kg
        if frac <= 0:
            p = 0.0
        elif frac < 0.05:
            p = self._p_nom * 0.85 * frac / 0.05
        else:
            p = self._p_nom * (0.85 + 0.15 * frac)
        return p * (1.0 - self.pressure_loss)

    @micropython.native
    def substep(self, dt, cmd):
        """Advance ``dt`` s with the valve command ``cmd`` (0..1) at the valve."""
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

    def spray_h(self, surface_c):
        """Spray heat-transfer coefficient (W/m²K) on a surface at ``surface_c``:
        film boiling, rising as the surface cools."""
        h_s = 0.0
        if self.flow > 0.0:
            h_s = self._h_spray * self.flow * (1.0 + self._h_gain * (self._amb - surface_c) / 100.0)
            if h_s < 0.0:
                h_s = 0.0
        return h_s
