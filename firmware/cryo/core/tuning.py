"""The TUNE phase: relay autotune and open-loop step test.

Started from the host (engineer role, hold-to-run like a treatment, every
interlock condition armed, its own hard time limit); stepped from the tick
through ``_tune_demand``. ``cryo.control.autotune.RelayAutotune`` measures the
gains; the step test records the tissue response once a second.
"""

from cryo.core.roles import not_now
from cryo.interlock import conditions as C
from cryo.protocol import states as S


class TuningMixin:
    """Controller methods: autotune and step test (control path)."""

    def _tune_demand(self, now, tissue):
        tu = self._tuner
        if tu is not None:
            d = tu.step(now, tissue)
            if tu.done:
                self.tune_result = tu.result
                self._tuner = None
                self.protocol.end_tune(
                    now, "autotune: " + ("done" if tu.result.get("ok") else str(tu.reason))
                )
                return 0.0
            return d
        sp = self._step
        if sp is not None:
            t = self.clock.diff(now, sp["t0"])
            if t % 1000 < self.period_ms and len(sp["trace"]) < 600:
                sp["trace"].append((t, tissue))
            if t >= sp["ms"]:
                sp["end"] = "done"
                self.step_result = sp
                self._step = None
                self.protocol.end_tune(now, "step test: done")
                return 0.0
            return sp["demand"]
        return 0.0

    def _tune_start_checks(self, now, what):
        st = self.protocol.state
        if not ((1 << st) & S.STARTABLE):
            raise not_now("%s needs an idle controller, state is %s" % (what, S.name(st)))
        if self.il.blocking():
            raise not_now("cannot start %s: %s" % (what, ", ".join(C.names(self.il.blocking()))))
        for role, level in (("footswitch", self._foot_level), ("handpiece", self._hand_level)):
            pin = self.board.footswitch if role == "footswitch" else self.board.handpiece
            if pin is not None and pin.value() != level:
                raise not_now("%s is hold-to-run: %s is not pressed/held" % (what, role))
        why = self._refreeze_refusal(now)
        if why:
            raise not_now("cannot start %s: %s" % (what, why))
        if not self._arm_watchdog(now):
            raise not_now("cannot start %s: no hardware watchdog" % what)

    def start_autotune(self, params=None):
        """Relay autotune (cryo.control.autotune.RelayAutotune) in the TUNE phase.

        ``params``: ``setpoint_c`` (default: target), ``hysteresis_c``,
        ``amplitude`` (relay bias 0.05..0.95). Hold-to-run like a
        treatment; every interlock condition stays armed.
        """
        now = self.clock.ticks_ms()
        params = params or {}
        self._tune_start_checks(now, "autotune")
        from cryo.control.autotune import RelayAutotune

        sp = float(params.get("setpoint_c", self.params["target_c"]))
        if not (self.params["floor_c"] + self.params["floor_margin_c"] <= sp <= 0.0):
            raise ValueError(
                "autotune setpoint_c %r outside %.0f..0 degC (floor + margin)"
                % (sp, self.params["floor_c"] + self.params["floor_margin_c"])
            )
        kw = {"floor_c": self.params["floor_c"] + 5.0}
        if "hysteresis_c" in params:
            kw["hysteresis_c"] = float(params["hysteresis_c"])
        if "amplitude" in params:
            kw["bias"] = float(params["amplitude"])
        kw["timeout_ms"] = int(self.params["tune_max_s"] * 1000) - 1000
        kw["dose_budget_cs"] = min(self._extra["tune.dose_cs"], 0.9 * self.params["dose_max_cs"])
        kw["dose_threshold_c"] = self.params["dose_threshold_c"]
        tuner = RelayAutotune(self.clock, sp, **kw)
        self._tuner = tuner
        self.tune_result = None
        self._set_setpoint(sp, now)
        self._new_site_if_moved(now)
        self.protocol.start_tune(now, "autotune")
        return self.autotune_status()

    def autotune_status(self):
        """docs/link.md: ``{"state": "idle/running/done/aborted", "result",
        "reason"}`` plus ``cycles``, ``demand`` and ``phase``."""
        tu = self._tuner
        res = self.tune_result
        if tu is not None:
            state = "running"
        elif res is None:
            state = "idle"
        else:
            state = "done" if res.get("ok") else "aborted"
        return {
            "state": state,
            "cycles": tu.cycles if tu is not None else None,
            "demand": self.demand if tu is not None else 0.0,
            "result": res,
            "reason": None if (res is None or res.get("ok")) else res.get("reason"),
            "phase": self.protocol.name,
        }

    def _stop_tune(self, label):
        # A stop from outside the tick (command, fault): the valve closes
        # now, not at the next tick's demand 0, then the phase ends.
        self.valve.force_closed()
        self.demand = 0.0
        self.protocol.end_tune(self.clock.ticks_ms(), label)

    def stop_autotune(self, reason="stopped"):
        tu = self._tuner
        if tu is not None:
            tu.abort(reason)
            self.tune_result = tu.result
            self._tuner = None
        self._stop_tune("autotune: " + reason)
        return self.autotune_status()

    def start_step_test(self, params=None):
        """Open-loop step: constant ``demand`` (0..1) for ``duration_s``;
        the tissue response is recorded once a second (bounded)."""
        now = self.clock.ticks_ms()
        params = params or {}
        self._tune_start_checks(now, "step test")
        demand = params.get("demand", 0.5)
        dur = params.get("duration_s", 60.0)
        if (
            isinstance(demand, bool)
            or not isinstance(demand, (int, float))
            or not 0.0 < demand <= 1.0
        ):
            raise ValueError("step demand must be within 0 (exclusive)..1, got %r" % (demand,))
        if (
            isinstance(dur, bool)
            or not isinstance(dur, (int, float))
            or not 1.0 <= dur <= self.params["tune_max_s"]
        ):
            raise ValueError(
                "step duration_s must be within 1..%.0f s, got %r"
                % (self.params["tune_max_s"], dur)
            )
        self._step = {"t0": now, "ms": int(dur * 1000), "demand": float(demand), "trace": []}
        self.step_result = None
        self._new_site_if_moved(now)
        self.protocol.start_tune(now, "step test")
        return self.step_test_status()

    def step_test_status(self):
        """docs/link.md: ``{"state": "idle/running/done/aborted", "reason"}``
        plus ``demand``, ``duration_s``, ``trace_len`` and ``phase``. The
        trace (1 Hz, up to 600 samples) stays on the device
        (``step_trace()``): it would not fit a 2 KB frame, and the host
        records the response from telemetry."""
        sp = self._step if self._step is not None else self.step_result
        if self._step is not None:
            state = "running"
        elif sp is None:
            state = "idle"
        else:
            state = sp.get("end", "done")
        return {
            "state": state,
            "demand": sp["demand"] if sp else None,
            "duration_s": sp["ms"] / 1000.0 if sp else None,
            "trace_len": len(sp["trace"]) if sp else 0,
            "reason": sp.get("reason") if sp else None,
            "phase": self.protocol.name,
        }

    def step_trace(self):
        """The last step test's ``[(t_ms, tissue_c), ...]`` (1 Hz, on the device)."""
        sp = self._step if self._step is not None else self.step_result
        return list(sp["trace"]) if sp else []

    def stop_step_test(self, reason="stopped"):
        if self._step is not None:
            self._step["end"] = "aborted"
            self._step["reason"] = reason
            self.step_result = self._step
            self._step = None
        self._stop_tune("step test: " + reason)
        return self.step_test_status()
