"""Relay autotune for the reverse-acting cryo loop (Åström–Hägglund).

Stepped from the control tick: ``demand = tune.step(now_ms, measured_c)``;
the demand goes to the valve driver like the PID's would, so the interlock
(``valve.permit``), the dead-man and the floor limits stay in force — the
autotune never touches a valve itself.

Method (Åström & Hägglund's relay feedback test, with the pitfalls of the
open-source autotuners noted below avoided):

- **Symmetric relay around a bias**, reverse acting: cool with
  ``bias + d`` while the measurement is above ``setpoint + ε``, back off to
  ``bias - d`` below ``setpoint - ε`` (ε = relay hysteresis, noise band).
  ``d = min(bias, 1 - bias)``: the *half*-swing (Klipper uses the full swing
  and gets Ku ≈ 2×).
- **Power adaptation** (Marlin M303 / Kalico): after each cycle
  ``bias += d·(t_cool − t_warm)/(t_cool + t_warm)`` so the oscillation
  becomes symmetric in time around the setpoint; a cryo plant warms much
  more slowly than it cools, so a 0/1 relay would be badly asymmetric.
- **Identification** (cryo.control.identify): once the cycles agree,
  Ku and Tu from the window, then the FOPDT model and each rule's gains.
  The start-up transient (first ``SKIP`` cycles) is ignored
  (PID_AutoTune_v0 included it).

Robust to probe noise and lag (a relay switched by one noisy sample
moves the bias, over-cools, and never switches again):

- **Noise first**: the valve stays closed for ``noise_ms`` while the
  probe's noise σ is measured from successive differences (immune to a
  slow drift: σ = rms(Δy)/√2); the hysteresis is ``max(hysteresis_c,
  noise_k·σ)`` (2–3 σ: Åström & Hägglund 2006, §2.7 relay with hysteresis
  against noise), the rest temperature the mean of that phase.
- **Minimum half-cycle** ``min_half_ms``: a switch back to cooling needs
  the warm half to have lasted that long (noise crossings are shorter than
  any real half); backing off is never delayed (the safe direction).
- **Bounded bias adaptation**: at most ``bias_step`` per cycle.
- **Stall detection**: a half-cycle four times longer than the mean of the
  completed ones (at least ``stall_ms`` before any) moves the bias one
  ``bias_step`` toward switching (warm level still over-cools: lower;
  cool level too weak: raise); at the bias bound the test aborts.
- **Own budgets**: ``timeout_ms`` and a cold dose ``dose_budget_cs``
  (∫(``dose_threshold_c`` − T)dt below the threshold, the interlock's
  definition), below the treatment's, so a test that takes too long ends
  in a clean abort and never in the interlock's latched dose fault.
  Every abort reason says what happened and what to try.

Converged when the last ``WIN`` (6) cycles agree (cryo.control.relay_cycles): mean bias drift ≤
``tolerance`` per cycle, amplitude and period scatter (std/mean) ≤ 25 %
(statistics, not max-min spreads: a MAX31855 quantum is a third of the
half swing at −35 °C; docs/control.md has the measurements). Aborts
cleanly: demand 0 from then on, ``result = {"ok": False, "reason": ...}``.

Allocation: per-cycle figures live in preallocated ring buffers; no list
grows while tuning.
"""

import math

from micropython import const

from cryo.control.identify import identify
from cryo.control.model import RULES
from cryo.control.relay_cycles import SKIP, WIN, RelayCycles

_COOL = const(1)
_WARM = const(0)


class RelayAutotune:
    """Relay experiment at ``setpoint_c``; see the module docstring.

    ``clock`` is a cryo.clock clock (only ``diff`` is used). ``floor_c``:
    abort if the measurement falls below it (tissue-safe floor; the
    interlock has its own, independent limit). ``timeout_ms``: abort after
    this long. ``max_cycles``: abort if not converged after this many cycles.
    ``rule``: one of :data:`RULES`, the gains recommended in ``result``.
    """

    def __init__(
        self,
        clock,
        setpoint_c,
        hysteresis_c=0.5,
        bias=0.5,
        floor_c=-60.0,
        timeout_ms=1_800_000,
        max_cycles=20,
        tolerance=0.05,
        rule="simc",
        noise_ms=5000,
        noise_k=2.5,
        min_half_ms=1000,
        bias_step=0.1,
        stall_ms=120_000,
        dose_budget_cs=0.0,
        dose_threshold_c=-10.0,
    ):
        if rule not in RULES:
            raise ValueError("rule must be one of %s, got %r" % (", ".join(RULES), rule))
        if not (0.0 < hysteresis_c < 10.0):
            raise ValueError("hysteresis_c must be within 0..10 °C, got %r" % (hysteresis_c,))
        if not (0.05 <= bias <= 0.95):
            raise ValueError("bias must be within 0.05..0.95, got %r" % (bias,))
        if not (floor_c < setpoint_c - hysteresis_c):
            raise ValueError(
                "floor_c (%r) must be below setpoint_c - hysteresis_c (%r)"
                % (floor_c, setpoint_c - hysteresis_c)
            )
        if not (isinstance(timeout_ms, int) and 0 < timeout_ms < (1 << 29)):
            raise ValueError(
                "timeout_ms must be an integer within 1..2**29, got %r" % (timeout_ms,)
            )
        if not (isinstance(max_cycles, int) and SKIP + WIN <= max_cycles <= 200):
            raise ValueError(
                "max_cycles must be an integer within %d..200, got %r" % (SKIP + WIN, max_cycles)
            )
        if not (0.0 < tolerance < 1.0):
            raise ValueError(
                "tolerance must be within 0..1 (bias change per cycle), got %r" % (tolerance,)
            )
        for name, v in (
            ("noise_ms", noise_ms),
            ("min_half_ms", min_half_ms),
            ("stall_ms", stall_ms),
        ):
            if not (isinstance(v, int) and 0 <= v < (1 << 29)):
                raise ValueError("%s must be an integer within 0..2**29 ms, got %r" % (name, v))
        if not (1.0 <= noise_k <= 5.0):
            raise ValueError("noise_k must be within 1..5 (sigmas), got %r" % (noise_k,))
        if not (0.0 < bias_step <= 0.5):
            raise ValueError("bias_step must be within 0..0.5 per cycle, got %r" % (bias_step,))
        if not (dose_budget_cs >= 0.0):
            raise ValueError(
                "dose_budget_cs must be >= 0 degC*s (0 = none), got %r" % (dose_budget_cs,)
            )
        self.noise_ms = noise_ms
        self.noise_k = float(noise_k)
        self.min_half_ms = min_half_ms
        self.bias_step = float(bias_step)
        self.stall_ms = stall_ms
        self.dose_budget_cs = float(dose_budget_cs)
        self.dose_threshold_c = float(dose_threshold_c)
        self.dose_cs = 0.0
        self.noise_c = None  # measured probe noise sigma (degC)
        self.nudges = 0  # stall corrections of the bias
        self._n_noise = 0
        self._sum_y = 0.0
        self._sum_dy2 = 0.0
        self._y_prev = 0.0
        self._t_prev = 0
        self._half_sum = 0
        self._n_half = 0
        self._t_stall = 0
        self._clock = clock
        self.setpoint_c = float(setpoint_c)
        self.hysteresis_c = float(hysteresis_c)
        self.floor_c = float(floor_c)
        self.timeout_ms = timeout_ms
        self.max_cycles = max_cycles
        self.tolerance = float(tolerance)
        self.rule = rule
        self.bias = float(bias)
        self.d = min(self.bias, 1.0 - self.bias)
        self.done = False
        self.result = None
        self.reason = None
        self.cycles = 0
        self.demand = 0.0
        self._start = None
        self.start_c = None  # rest temperature (valve closed) at the start
        self._state = _COOL
        self._t_sw = 0  # ms (since start) of the last relay switch
        self._t_cool_sw = -1  # ms of the last switch to cooling (-1: none yet)
        self._t_cool = 0
        self._peak = 0.0  # extremum in the current half cycle
        self._t_peak = 0
        self._last_max_t = -1
        self._last_min_t = -1
        self._ymax = 0.0
        self._ymin = 0.0
        self._cycles = RelayCycles()

    # -- public ------------------------------------------------------------

    def abort(self, reason):
        """Stop now: demand 0 from here on; ``result`` carries the reason."""
        if not self.done:
            self.done = True
            self.reason = reason
            self.result = {"ok": False, "reason": reason, "cycles": self.cycles}
        self.demand = 0.0
        return 0.0

    def step(self, now_ms, measured_c):
        """Advance the experiment; returns the valve demand (1 = full cooling)."""
        if self.done:
            self.demand = 0.0
            return 0.0
        if not (-300.0 < measured_c < 300.0):
            return self.abort("measurement not finite/plausible: %r" % (measured_c,))
        if self._start is None:
            self._start = now_ms
            self.start_c = measured_c
            self._y_prev = measured_c
        t = self._clock.diff(now_ms, self._start)
        if t >= self.timeout_ms:
            return self.abort(
                "timeout: time budget used up after %d s (%d cycles): try a larger amplitude "
                "(bias) or a setpoint nearer the rest temperature" % (t // 1000, self.cycles)
            )
        if measured_c < self.floor_c:
            return self.abort(
                "floor: %.1f °C below %.1f °C: the relay over-cools; try a smaller "
                "amplitude (bias) or a warmer setpoint" % (measured_c, self.floor_c)
            )
        if self.noise_c is None:
            return self._measure_noise(t, measured_c)
        if measured_c < self.dose_threshold_c:
            self.dose_cs += (self.dose_threshold_c - measured_c) * (t - self._t_prev) * 0.001
        self._t_prev = t
        if self.dose_budget_cs > 0.0 and self.dose_cs > self.dose_budget_cs:
            return self.abort(
                "cold-dose budget %.0f °C·s used up after %d cycles: try a setpoint nearer "
                "%.0f °C or a larger amplitude (shorter cycles)"
                % (self.dose_budget_cs, self.cycles, self.dose_threshold_c)
            )
        sp = self.setpoint_c
        eps = self.hysteresis_c
        ready = t - self._t_sw >= self.min_half_ms
        if self._state == _COOL:
            if self._t_cool_sw >= 0 and measured_c > self._peak:
                self._peak = measured_c
                self._t_peak = t
            if measured_c < sp - eps:  # backing off is never delayed (safe side)
                self._switch_to_warm(t)
        else:
            if measured_c < self._peak:
                self._peak = measured_c
                self._t_peak = t
            if measured_c > sp + eps and ready:
                self._switch_to_cool(t)
                if self.done:
                    return self.demand
        switched = self._state == _WARM or self._t_cool_sw >= 0
        if switched and not self._check_stall(t, measured_c):
            return self.demand
        self.demand = self.bias + self.d if self._state == _COOL else self.bias - self.d
        return self.demand

    # -- internals -----------------------------------------------------------

    def _measure_noise(self, t, y):
        """Valve closed: probe noise from successive differences, rest mean."""
        if self._n_noise > 0:
            d = y - self._y_prev
            self._sum_dy2 += d * d
        self._y_prev = y
        self._sum_y += y
        self._n_noise += 1
        if t < self.noise_ms or self._n_noise < 3:
            self.demand = 0.0
            return 0.0
        sigma = math.sqrt(self._sum_dy2 / (2.0 * (self._n_noise - 1)))
        self.noise_c = sigma
        self.start_c = self._sum_y / self._n_noise
        eps = self.noise_k * sigma
        if eps > self.hysteresis_c:
            self.hysteresis_c = eps
        if not (self.floor_c < self.setpoint_c - self.hysteresis_c) or self.hysteresis_c >= 5.0:
            return self.abort(
                "probe noise σ %.2f °C needs a hysteresis of %.1f °C, too wide for this "
                "setpoint: check the probe contact and shielding" % (sigma, self.hysteresis_c)
            )
        self._t_sw = t
        self._t_prev = t
        self.demand = self.bias + self.d
        return self.demand

    def _check_stall(self, t, y):
        """False (and a bias correction or an abort) when the relay stalls."""
        if self._n_half > 0:
            lim = 4 * (self._half_sum // self._n_half)
        else:
            lim = self.stall_ms
        since = t - (self._t_sw if self._t_sw > self._t_stall else self._t_stall)
        if since <= lim:
            return True
        self._t_stall = t
        self.nudges += 1
        warm = self._state == _WARM  # stuck below sp - eps: the warm level over-cools
        nb = self.bias - self.bias_step if warm else self.bias + self.bias_step
        if nb < 0.05 or nb > 0.95:
            self.abort(
                "relay stalled at %.1f °C (%s) for %d s even at bias %.2f: try a %s setpoint"
                "%s"
                % (
                    y,
                    "too cold at the warm level" if warm else "too warm at the cool level",
                    since // 1000,
                    self.bias,
                    "colder" if warm else "warmer",
                    "" if warm else " or check the delivery line and the dewar",
                )
            )
            return False
        self.bias = nb
        self.d = min(nb, 1.0 - nb)
        self.demand = self.bias + self.d if self._state == _COOL else self.bias - self.d
        return False

    def _half_done(self, t):
        h = t - self._t_sw
        if self._half_sum < (1 << 29):
            self._half_sum += h
            self._n_half += 1

    def _switch_to_warm(self, t):
        if self._t_cool_sw >= 0:
            # maximum of the cooling half: the plant kept warming θ after the switch
            self._ymax = self._peak
            self._cycles.add_delay(self._t_peak - self._t_cool_sw)
            if self._last_max_t >= 0:
                self._cycles.add_period(self._t_peak - self._last_max_t)
            self._last_max_t = self._t_peak
            self._t_cool = t - self._t_cool_sw
            self._half_done(t)
        self._state = _WARM
        self._t_sw = t
        self._peak = 1e9
        self._t_peak = t

    def _switch_to_cool(self, t):
        t_warm_sw = self._t_sw
        self._ymin = self._peak
        self._cycles.add_delay(self._t_peak - t_warm_sw)
        if self._last_min_t >= 0:
            self._cycles.add_period(self._t_peak - self._last_min_t)
        self._last_min_t = self._t_peak
        if self._t_cool_sw >= 0:
            self._half_done(t)
            self._end_cycle(self._t_cool, t - t_warm_sw)
        self._state = _COOL
        self._t_sw = t
        self._t_cool_sw = t
        self._peak = -1e9
        self._t_peak = t

    def _end_cycle(self, t_cool, t_warm):
        self.cycles += 1
        amp = 0.5 * (self._ymax - self._ymin)
        d_used = self.d
        if t_cool + t_warm > 0:
            nb = self.bias + self.d * (t_cool - t_warm) / (t_cool + t_warm)
        else:
            nb = self.bias
        step = self.bias_step
        if nb > self.bias + step:
            nb = self.bias + step
        elif nb < self.bias - step:
            nb = self.bias - step
        if nb < 0.05:
            nb = 0.05
        elif nb > 0.95:
            nb = 0.95
        self._cycles.add_cycle(amp, nb - self.bias, d_used)
        self.bias = nb
        self.d = min(nb, 1.0 - nb)
        if self.cycles >= SKIP + WIN and self._cycles.converged(self.tolerance):
            self._finish()
        elif self.cycles >= self.max_cycles:
            self.abort(
                "no convergence after %d cycles (noise σ %.2f °C, hysteresis %.2f °C): "
                "try a larger hysteresis_c or amplitude, or check the probe"
                % (self.cycles, self.noise_c, self.hysteresis_c)
            )

    def _finish(self):
        res = identify(
            self._cycles.window(),
            self.hysteresis_c,
            self.bias,
            self.start_c,
            self.setpoint_c,
            self.rule,
        )
        if isinstance(res, str):
            self.abort(res)
            return
        res["noise_c"] = self.noise_c
        res["dose_cs"] = self.dose_cs
        res["nudges"] = self.nudges
        res["hold_duty"] = self.bias
        res["bias"] = self.bias
        res["cycles"] = self.cycles
        self.result = res
        self.done = True
        self.demand = 0.0
