"""A proportional cryogen valve on the virtual board (boards/sim/
board_proportional.json): the controller builds ``ProportionalValve`` on the
board's PWM, the duty reaches the plant as a fractional opening, and every
way of closing the valve (an interlock trip, the safety timer, the dead-man)
drives the duty to 0. Runs unchanged under CPython and MicroPython
(test_proportional_valve.py)."""

import core_scenarios as SC
import vboard
from core_rig import Rig

from cryo.interlock import conditions as C
from cryo.protocol import states as S


def board_definition():
    f = vboard.__file__
    return vboard.load_board(f[: f.rfind("/")] + "/board_proportional.json")


def _freeze_rig(seed=3):
    rig = Rig(seed=seed, config=SC.FAST, plant=SC.FAST_PLANT, board=board_definition())
    rig.step(3)
    rig.ctl.start()
    rig.hold(True)
    rig.step(2)
    ok = rig.run_until_regulating(300)
    return rig, ok


def treatment():
    """A whole treatment (the fast plant: the valve serviced at the tick,
    core_rig.Rig.step): what the valve and the plant saw."""
    rig, ok = _freeze_rig()
    ctl = rig.ctl
    w = rig.world
    seen = {"partial": 0, "open_ticks": 0, "duties": 0}
    last = [-1]

    def seen_at(now):
        o = w.valve_opening()
        if 0.0 < o < 1.0:
            seen["partial"] += 1
        if ctl.valve.is_open:
            seen["open_ticks"] += 1
        d = rig.board.valve_pwm.duty_u16()
        if d != last[0]:
            seen["duties"] += 1
            last[0] = d

    i = 0
    while ctl.protocol.state != S.DONE and i < 6000:
        rig.step(1)
        seen_at(rig.now)
        i += 1
    rig.step(2)
    return {
        "regulating": ok,
        "valve_type": type(ctl.valve).__name__,
        "state": S.name(ctl.protocol.state),
        "latched": C.names(ctl.il.latched),
        "partial": seen["partial"],
        "duties": seen["duties"],
        "open_ticks": seen["open_ticks"],
        "cycles": ctl.valve.cycles,
        "world_cycles": w.valve_cycles,
        "status_cycles": ctl.status()["valve_cycles"],
        "closed": rig.valves_closed(),
        "duty_end": rig.board.valve_pwm.duty_u16(),
    }


def closes(how):
    """Regulating in FREEZE with the valve open, then ``how``: "estop" (an
    interlock trip), "stall" (the loop stops: the safety timer) or
    "deadman" (sub-ticks go on without a tick's refresh). Returns what the
    valve's PWM and the plant show."""
    rig, ok = _freeze_rig()
    ctl = rig.ctl
    w = rig.world
    rig.step(5)
    before = rig.board.valve_pwm.duty_u16()
    out = {"regulating": ok, "duty_before": before, "open_before": w.valve_is_open()}
    if how == "estop":
        w.set_input("estop", 0)
        rig.step(1)
        out["tripped"] = C.names(ctl.il.latched | ctl.il.active)
    elif how == "stall":
        rig.skip(1000)  # no tick for 1 s: the hard timer's heartbeat check
        out["tripped"] = C.names(ctl.il.latched | ctl.il.active)
    else:
        c = rig.clock
        t = 0
        while t < ctl.valve.max_open_ms + 20:
            c.advance(10)
            t += 10
            ctl.service_valve(c.ticks_ms())  # sub-ticks only: no refresh
        out["expired"] = ctl.valve.expired
    out["duty_after"] = rig.board.valve_pwm.duty_u16()
    out["open_after"] = w.valve_is_open()
    out["is_open"] = ctl.valve.is_open
    return out
