"""Autotune and step-test sessions a controller embeds for the link.

``TuningRunner(clock)`` holds at most one experiment: ``cryo.control.autotune.RelayAutotune``
or an open-loop step (constant demand for ``duration_s``). The controller's
tick asks ``runner.demand(now_ms, measured_c)`` while ``runner.active`` and
sends that demand to the valve in place of the PID's, so the interlock,
permit and dead-man stay in force (the runner never touches a valve).
Control path (floats); nothing here runs in the safety path.

The channel calls ``start_autotune(params)``, ``stop_autotune(reason)``,
``autotune_status()`` and the ``*_step_test`` trio on the controller, or on
``controller.tuning`` when the controller does not define them (docs/link.md).
"""

from cryo.link.errors import NotNow

_IDLE = "idle"
_RUNNING = "running"
_DONE = "done"
_ABORTED = "aborted"


class TuningRunner:
    def __init__(self, clock, setpoint_c=-30.0, floor_c=-60.0, max_step_s=600):
        self._clock = clock
        self.setpoint_c = setpoint_c  # default relay setpoint (the controller updates it)
        self.floor_c = floor_c
        self.max_step_s = max_step_s
        self.mode = None  # "autotune" / "step" while active
        self.tune = None
        self._at = {"state": _IDLE}
        self._st = {"state": _IDLE}
        self._step_demand = 0.0
        self._step_ms = 0
        self._step_t0 = None

    @property
    def active(self):
        return self.mode is not None

    # ---- autotune --------------------------------------------------------
    def start_autotune(self, params):
        if self.mode is not None:
            raise NotNow("a %s is already running; stop it first" % self.mode)
        from cryo.control.autotune import RelayAutotune

        sp = params.get("setpoint_c", self.setpoint_c)
        self.tune = RelayAutotune(
            self._clock,
            sp,
            hysteresis_c=params.get("hysteresis_c", 0.5),
            bias=params.get("amplitude", 0.5),
            floor_c=self.floor_c,
        )
        self.mode = "autotune"
        self._at = {"state": _RUNNING, "setpoint_c": sp, "cycles": 0}

    def stop_autotune(self, reason):
        if self.mode == "autotune":
            self.tune.abort(reason)
            self._finish_autotune()

    def autotune_status(self):
        if self.mode == "autotune":
            self._at["cycles"] = self.tune.cycles
        return self._at

    def _finish_autotune(self):
        r = self.tune.result or {"ok": False, "reason": "no result"}
        self._at = {"state": _DONE if r.get("ok") else _ABORTED, "result": r}
        if not r.get("ok"):
            self._at["reason"] = r.get("reason")
        self.mode = None

    # ---- step test -------------------------------------------------------
    def start_step_test(self, params):
        if self.mode is not None:
            raise NotNow("a %s is already running; stop it first" % self.mode)
        d = params.get("demand", 0.3)
        dur = params.get("duration_s", 60)
        if not (0.0 < d <= 1.0):
            raise ValueError("step demand must be within 0 < demand <= 1, got %r" % (d,))
        if not (1 <= dur <= self.max_step_s):
            raise ValueError(
                "step duration_s must be within 1..%d s, got %r" % (self.max_step_s, dur)
            )
        self._step_demand = float(d)
        self._step_ms = int(dur * 1000)
        self._step_t0 = None
        self.mode = "step"
        self._st = {"state": _RUNNING, "demand": self._step_demand, "duration_s": dur}

    def stop_step_test(self, reason):
        if self.mode == "step":
            self.mode = None
            self._st = {"state": _ABORTED, "reason": reason}

    def step_test_status(self):
        return self._st

    # ---- from the tick ----------------------------------------------------
    def abort(self, reason):
        """The controller stops any experiment (fault, stop, phase change)."""
        self.stop_autotune(reason)
        self.stop_step_test(reason)

    def demand(self, now_ms, measured_c):
        """Valve demand for this tick while ``active`` (0 when idle)."""
        if self.mode == "autotune":
            d = self.tune.step(now_ms, measured_c)
            if self.tune.done:
                self._finish_autotune()
                return 0.0
            return d
        if self.mode == "step":
            if self._step_t0 is None:
                self._step_t0 = now_ms
            if not (self.floor_c < measured_c < 300.0):
                self.stop_step_test("floor: %.1f C" % measured_c)
                return 0.0
            if self._clock.diff(now_ms, self._step_t0) >= self._step_ms:
                self.mode = None
                self._st = {"state": _DONE, "demand": self._step_demand}
                return 0.0
            return self._step_demand
        return 0.0
