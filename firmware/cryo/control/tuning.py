"""The TUNE phase's experiments: relay autotune and open-loop step test.

``Tuning(clock, period_ms)`` owns the experiment that runs in the TUNE
phase (at most one) and the result of the last one of each kind. The
controller starts one after its own checks (idle, nothing blocking,
hold-to-run inputs, site thawed, watchdog armed), asks it for the demand
once per tick (``demand``: 0..1, and ``ended`` names the reason on the tick
an experiment finishes by itself) and ends it when the phase ends
(``abort``). Every interlock condition stays armed meanwhile: this object
only proposes a demand.

Control path (floats).
"""

_TRACE_MAX = 600  # step-test samples kept (1 Hz: ten minutes)


class Tuning:
    def __init__(self, clock, period_ms):
        self._clock = clock
        self._period_ms = period_ms
        self._tuner = None  # cryo.control.autotune.RelayAutotune while running
        self._step = None  # step test state (dict) while running
        self.tune_result = None
        self.step_result = None
        self.ended = None  # set by demand() on the tick an experiment finished

    def mode(self):
        """ "autotune", "step" or None (nothing running)."""
        if self._tuner is not None:
            return "autotune"
        if self._step is not None:
            return "step"
        return None

    def start_autotune(self, setpoint_c, **kw):
        """A relay experiment at ``setpoint_c`` (``RelayAutotune`` keywords;
        its constructor names a bad value)."""
        from cryo.control.autotune import RelayAutotune

        self._tuner = RelayAutotune(self._clock, setpoint_c, **kw)
        self.tune_result = None

    def start_step(self, now, demand, duration_ms):
        """A constant ``demand`` for ``duration_ms``; the tissue response is
        recorded once a second (bounded)."""
        self._step = {"t0": now, "ms": duration_ms, "demand": demand, "trace": []}
        self.step_result = None

    def demand(self, now, tissue_c):
        """The running experiment's demand for this tick (0.0 when none).
        On the tick it finishes by itself ``ended`` names how."""
        self.ended = None
        tu = self._tuner
        if tu is not None:
            d = tu.step(now, tissue_c)
            if tu.done:
                self.tune_result = tu.result
                self._tuner = None
                self.ended = "autotune: " + ("done" if tu.result.get("ok") else str(tu.reason))
                return 0.0
            return d
        sp = self._step
        if sp is not None:
            t = self._clock.diff(now, sp["t0"])
            if t % 1000 < self._period_ms and len(sp["trace"]) < _TRACE_MAX:
                sp["trace"].append((t, tissue_c))
            if t >= sp["ms"]:
                sp["end"] = "done"
                self.step_result = sp
                self._step = None
                self.ended = "step test: done"
                return 0.0
            return sp["demand"]
        return 0.0

    def abort(self, reason):
        """End whatever runs (a stop, a trip, the phase ending)."""
        tu = self._tuner
        if tu is not None:
            tu.abort(reason)
            self.tune_result = tu.result
            self._tuner = None
        sp = self._step
        if sp is not None:
            sp["end"] = "aborted"
            sp["reason"] = reason
            self.step_result = sp
            self._step = None

    def autotune_status(self, demand, phase):
        """``{"state": "idle/running/done/aborted", "result", "reason"}``
        plus ``cycles``, ``demand`` and ``phase`` (docs/link.md)."""
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
            "demand": demand if tu is not None else 0.0,
            "result": res,
            "reason": None if (res is None or res.get("ok")) else res.get("reason"),
            "phase": phase,
        }

    def step_status(self, phase):
        """``{"state": "idle/running/done/aborted", "reason"}`` plus
        ``demand``, ``duration_s``, ``trace_len`` and ``phase``
        (docs/link.md). The trace stays on the device (``trace()``): it
        would not fit a reply frame; the host records telemetry instead."""
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
            "phase": phase,
        }

    def trace(self):
        """The last step test's ``[(t_ms, tissue_c), ...]`` (1 Hz)."""
        sp = self._step if self._step is not None else self.step_result
        return list(sp["trace"]) if sp else []
