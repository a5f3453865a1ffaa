"""Scenario files: timed events applied to the virtual board.

A scenario is JSON (boards/sim/scenarios/*.json, schema in
docs/virtual-board.md)::

    {"name": "...", "description": "...",
     "events": [{"t": 2.0, "event": "footswitch", "pressed": true}, ...]}

``t`` is seconds after boot (virtual time in ``cryo sim run``, wall time in
real-time mode). Events are applied by the world when the plant is advanced
past their time (20 ms resolution). Runner-level events (``call``,
``serial``, ``power_cut`` with ``now``, ``wdt_starve``) are queued in
``world.pending`` for the runner (fast mode) or handled in place (real time).
"""

import time

import shipped

# event name -> (required fields, optional fields)
EVENTS = {
    "footswitch": (("pressed",), ()),
    "estop": (("pressed",), ()),
    "estop_wire_break": ((), ("broken",)),
    "handpiece": (("active",), ()),
    "tc_open": (("channel",), ("on",)),
    "tc_short_gnd": (("channel",), ("on",)),
    "tc_short_vcc": (("channel",), ("on",)),
    "tc_bus": (("channel", "mode"), ()),
    "tc_stuck": (("channel",), ("on",)),
    "tc_noisy": (("channel", "noise_c"), ()),
    "tc_drift": (("channel", "c_per_s"), ()),
    "tc_clear": (("channel",), ()),
    "valve_stuck": (("state",), ()),
    "master_stuck": (("state",), ()),
    "cryogen_empty": ((), ()),
    "pressure_loss": (("fraction",), ()),
    "power_cut": ((), ("after_ops", "tear", "off_s")),
    "wdt_starve": (("ms",), ()),
    "serial": ((), ("data", "frame")),
    "call": (("method",), ("args",)),
    "reset": ((), ()),
}
RUNNER_EVENTS = ("call", "serial", "wdt_starve", "reset")
ONE_SHOT = ("call", "serial", "wdt_starve", "reset", "power_cut")


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the event and field."""


def scenarios_dir():
    return shipped.folder("scenarios")


def validate(doc):
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise ScenarioError("scenario must be an object with an 'events' list")
    for k in doc:
        if k not in ("name", "description", "events"):
            raise ScenarioError("unknown scenario field %r; allowed: name, description, events" % k)
    last = -1.0
    for i, ev in enumerate(doc["events"]):
        if not isinstance(ev, dict):
            raise ScenarioError("events[%d] must be an object" % i)
        name = ev.get("event")
        if name not in EVENTS:
            raise ScenarioError(
                "events[%d]: unknown event %r; allowed: %s" % (i, name, ", ".join(sorted(EVENTS)))
            )
        t = ev.get("t")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or t < 0:
            raise ScenarioError("events[%d] (%s): 't' must be seconds >= 0, got %r" % (i, name, t))
        if t < last:
            raise ScenarioError("events[%d] (%s): events must be in time order" % (i, name))
        last = t
        req, opt = EVENTS[name]
        for f in req:
            if f not in ev:
                raise ScenarioError("events[%d] (%s): field %r is missing" % (i, name, f))
        for f in ev:
            if f not in ("t", "event") and f not in req and f not in opt:
                raise ScenarioError(
                    "events[%d] (%s): unknown field %r; allowed: %s"
                    % (i, name, f, ", ".join(req + opt) or "none")
                )
        if name in ("valve_stuck", "master_stuck") and ev["state"] not in ("open", "closed", None):
            raise ScenarioError(
                "events[%d] (%s): state must be 'open', 'closed' or null, got %r"
                % (i, name, ev["state"])
            )
        if name == "serial" and ("data" in ev) == ("frame" in ev):
            raise ScenarioError(
                "events[%d] (serial): give either 'data' (text) or 'frame' (a command "
                "object, framed with cryo.link.framing)" % i
            )
        if name == "tc_bus" and ev["mode"] not in ("zeros", "ones", None):
            raise ScenarioError("events[%d] (tc_bus): mode must be 'zeros', 'ones' or null" % i)


def load(name_or_path):
    doc = shipped.load_json("scenario", "scenarios", name_or_path, ScenarioError)
    validate(doc)
    return doc


class Scenario:
    """Applies a scenario's events to a world as time passes."""

    def __init__(self, doc, start_ms, clock, resumed_at=None):
        """``start_ms``: clock ticks at t = 0. ``resumed_at``: ticks at which a
        board that was reset picks the scenario up again (real time): events
        before it that set physical state are applied again at once (a pressed
        e-stop stays pressed), one-shot events (serial, call, wdt_starve,
        reset, power_cut) are not repeated."""
        validate(doc)
        self.name = doc.get("name", "scenario")
        self.events = doc["events"]
        self._i = 0
        self._start = start_ms
        self._clock = clock
        self._resumed = resumed_at

    def done(self):
        return self._i >= len(self.events)

    def apply_due(self, world, now):
        clock = self._clock
        while self._i < len(self.events):
            ev = self.events[self._i]
            due = clock.add(self._start, int(ev["t"] * 1000))
            if clock.diff(now, due) < 0:
                return
            self._i += 1
            if (
                self._resumed is not None
                and ev["event"] in ONE_SHOT
                and clock.diff(self._resumed, due) > 0
            ):
                continue
            apply(world, ev, now)


def _channel(world, ev):
    name = ev["channel"]
    ch = world.channels.get(name)
    if ch is None:
        raise ScenarioError(
            "event %s: board has no channel %r; channels: %s"
            % (ev["event"], name, ", ".join(world.channels))
        )
    return ch


def apply(world, ev, now):
    """Apply one event to the world (runner events go to world.pending)."""
    name = ev["event"]
    world.log.append((now, name))
    if name == "footswitch":
        world.set_input("footswitch", ev["pressed"])
    elif name == "estop":
        world.set_input("estop", 0 if ev["pressed"] else 1)
    elif name == "estop_wire_break":
        world.set_input("estop", 0 if ev.get("broken", True) else 1)
    elif name == "handpiece":
        world.set_input("handpiece", ev["active"])
    elif name in ("tc_open", "tc_short_gnd", "tc_short_vcc"):
        attr = {"tc_open": "open_circuit", "tc_short_gnd": "short_gnd", "tc_short_vcc": "short_vcc"}
        setattr(_channel(world, ev).chip, attr[name], bool(ev.get("on", True)))
        _channel(world, ev).version = -1
    elif name == "tc_bus":
        _channel(world, ev).chip.bus = ev["mode"]
    elif name == "tc_stuck":
        _channel(world, ev).stuck = bool(ev.get("on", True))
    elif name == "tc_noisy":
        _channel(world, ev).extra_noise_c = float(ev["noise_c"])
    elif name == "tc_drift":
        _channel(world, ev).drift_c_per_s = float(ev["c_per_s"])
    elif name == "tc_clear":
        ch = _channel(world, ev)
        ch.stuck = False
        ch.extra_noise_c = 0.0
        ch.drift_c_per_s = 0.0
        ch.offset_c = 0.0
        chip = ch.chip
        chip.open_circuit = chip.short_gnd = chip.short_vcc = False
        chip.bus = None
        ch.version = -1
    elif name == "valve_stuck":
        world.valve_stuck = ev["state"]
    elif name == "master_stuck":
        world.master_stuck = ev["state"]
    elif name == "cryogen_empty":
        world.plant.empty_reservoir()
    elif name == "pressure_loss":
        world.plant.pressure_loss = float(ev["fraction"])
    elif name == "power_cut":
        if "after_ops" in ev:
            if world.flash is not None:
                world.flash.cut_power_after(int(ev["after_ops"]), bool(ev.get("tear", False)))
        else:
            world.pending.append(ev)
    else:  # call, serial, wdt_starve, reset: the runner's job
        world.pending.append(ev)


def handle_in_place(world):
    """Real time: the runner-level events queued in ``world.pending``."""
    while world.pending:
        ev = world.pending.pop(0)
        name = ev["event"]
        if name == "wdt_starve":
            time.sleep_ms(int(ev["ms"]))  # the firmware hangs here
        elif name == "reset":
            world.hard_reset("reset")
        elif name == "power_cut":
            world.power_cut()
        # serial: injected by the cryo sim relay; call: fast mode only
