"""The engineer's commands: parameters, autotune and the step test.

``Engineer(parts, guard, new_site)`` answers what an engineer (or the
service technician) asks over the link: read and change a parameter within
its hard limits (``get_param``, ``set_param``, ``save_config``) and run an
experiment in the TUNE phase (``start_autotune``, ``start_step_test``,
their status and stop). ``guard(now, what)`` is the controller's check
that an experiment may start (idle, nothing blocking, hold-to-run inputs,
the site thawed, the watchdog armed) and ``new_site(now)`` starts a new
site's cold dose when the handpiece was holstered. The controller
publishes these methods under their own names (``COMMANDS``), which the
link calls.

Every accepted change is audited with role, old and new value; during a
treatment only the PID gains may change, applied bumpless by the
``Regulator``. Control path, between ticks.
"""

from cryo import paths
from cryo.core.roles import denied, not_now, role_level
from cryo.protocol import states as S
from cryo.storage import config as CFG

COMMANDS = (
    "get_param",
    "set_param",
    "save_config",
    "start_autotune",
    "autotune_status",
    "stop_autotune",
    "start_step_test",
    "step_test_status",
    "step_trace",
    "stop_step_test",
)


class Engineer:
    def __init__(self, parts, guard, new_site):
        self._p = parts
        self._tick = parts.ticker
        self._guard = guard
        self._new_site = new_site

    def _proto(self):
        return self._tick.protocol

    # -- parameters ---------------------------------------------------------

    def get_param(self, name):
        """Value in force; stored-schema names (``limits.floor_c``) accepted."""
        return self._p.settings.get(name)

    def set_param(self, name, value, role):
        """Change a parameter within its hard limits; audited (role, old, new).
        During a treatment only the PID gains may change (engineer), applied
        bumpless (``Regulator.set``); anything else raises NotNow."""
        st = self._proto().state
        name = self._p.settings.check(name, value, role, st)
        old = self._p.settings.commit(name, value)
        if name.startswith("pid."):
            self._p.regulator.set(name, value)
        elif name.startswith("valve."):
            x = self._p.settings.extra
            self._p.valve.retime(
                int(x["valve.window_ms"]),
                int(x["valve.min_on_ms"]),
                int(x["valve.min_off_ms"]),
                int(x["valve.max_open_ms"]),
            )
        else:
            self._tick.new_params()
        now = self._p.clock.ticks_ms()
        self._p.journal.audit("set", role, name=name, old=old, new=value, phase=S.name(st))
        self._p.journal.note(now, "set", "%s %s: %r -> %r" % (role, name, old, value))
        return value

    def save_config(self, role, path=None):
        """Store the parameters in force (cryo.storage.config, atomic + CRC,
        and the MAC under the device key of a provisioned device) in
        ``path``, by default the config file under the flash root."""
        if path is None:
            path = paths.on_flash(paths.CONFIG_PATH)
        if role_level(role) < 2:
            raise denied("saving the configuration needs role engineer or higher (got %s)" % role)
        st = self._proto().state
        if (1 << st) & (S.TREATING | (1 << S.SELF_TEST)):
            # As for every configuration write: never during a treatment
            # (the flash write and what it changes at the next start are not
            # what the clinician started with). Live gains stay in force.
            raise not_now(
                "the configuration cannot be saved during %s: save after the treatment" % S.name(st)
            )
        cfg = self._p.settings.stored(self._p.regulator.bands())
        CFG.save(cfg, path, self._p.config_key)
        self._p.journal.audit("save_config", role, path=path)
        return {"path": path, "fields": len(cfg)}

    # -- the TUNE phase -------------------------------------------------------

    def start_autotune(self, params=None):
        """Relay autotune (cryo.control.autotune) in the TUNE phase.

        ``params``: ``setpoint_c`` (default: target), ``hysteresis_c``,
        ``amplitude`` (relay bias 0.05..0.95). Hold-to-run like a
        treatment; every interlock condition stays armed."""
        now = self._p.clock.ticks_ms()
        params = params or {}
        self._guard(now, "autotune")
        p = self._p.settings.params
        sp = float(params.get("setpoint_c", p["target_c"]))
        lowest = p["floor_c"] + p["floor_margin_c"]
        if not (lowest <= sp <= 0.0):
            raise ValueError(
                "autotune setpoint_c %r outside %.0f..0 degC (floor + margin)" % (sp, lowest)
            )
        kw = {
            "floor_c": p["floor_c"] + 5.0,
            "timeout_ms": int(p["tune_max_s"] * 1000) - 1000,
            # The experiment's own cold-dose budget, below the treatment's
            # limit: a tune that over-cools ends in a clean abort, not a FAULT.
            "dose_budget_cs": min(self._p.settings.extra["tune.dose_cs"], 0.9 * p["dose_max_cs"]),
            "dose_threshold_c": p["dose_threshold_c"],
        }
        if "hysteresis_c" in params:
            kw["hysteresis_c"] = float(params["hysteresis_c"])
        if "amplitude" in params:
            kw["bias"] = float(params["amplitude"])
        self._p.tuning.start_autotune(sp, **kw)
        self._tick.set_setpoint(sp, now)
        self._new_site(now)
        self._proto().start_tune(now, "autotune")
        return self.autotune_status()

    def autotune_status(self):
        return self._p.tuning.autotune_status(self._tick.demand, self._proto().name)

    def stop_autotune(self, reason="stopped"):
        self._p.tuning.abort(reason)
        self._end_tune("autotune: " + reason)
        return self.autotune_status()

    def start_step_test(self, params=None):
        """Open-loop step: constant ``demand`` (0..1] for ``duration_s``;
        the tissue response is recorded once a second (bounded)."""
        now = self._p.clock.ticks_ms()
        params = params or {}
        self._guard(now, "step test")
        demand = params.get("demand", 0.5)
        dur = params.get("duration_s", 60.0)
        top = self._p.settings.params["tune_max_s"]
        if (
            isinstance(demand, bool)
            or not isinstance(demand, (int, float))
            or not 0.0 < demand <= 1.0
        ):
            raise ValueError("step demand must be within 0 (exclusive)..1, got %r" % (demand,))
        if isinstance(dur, bool) or not isinstance(dur, (int, float)) or not 1.0 <= dur <= top:
            raise ValueError("step duration_s must be within 1..%.0f s, got %r" % (top, dur))
        self._p.tuning.start_step(now, float(demand), int(dur * 1000))
        self._new_site(now)
        self._proto().start_tune(now, "step test")
        return self.step_test_status()

    def step_test_status(self):
        return self._p.tuning.step_status(self._proto().name)

    def step_trace(self):
        """The last step test's ``[(t_ms, tissue_c), ...]`` (1 Hz, on the device)."""
        return self._p.tuning.trace()

    def stop_step_test(self, reason="stopped"):
        self._p.tuning.abort(reason)
        self._end_tune("step test: " + reason)
        return self.step_test_status()

    def _end_tune(self, label):
        # A stop from outside the tick: the valve closes now, not at the next
        # tick's demand 0, then the phase ends.
        self._tick.quench()
        self._proto().end_tune(self._p.clock.ticks_ms(), label)
