"""Single faults beyond the sensors, on the virtual board in virtual time:
a defect in the tick, a reset or power cut with faults latched, a watchdog
reset during a treatment, the operator pressing again on frozen tissue, a
short e-stop opening between ticks, a step test without a prior self-test,
the master valve as the series barrier, faults outside a treatment session.

Each scenario returns a dict of observations, so the same code runs under
CPython and the real MicroPython unix port (test_single_fault.py asserts).
"""

import core_scenarios as SC
from core_rig import Rig

from cryo.interlock import conditions as C
from cryo.protocol import states as S
from cryo.storage import device_records as D


def _kinds(ctl, kind):
    return [r for r in ctl.memory.events() if r[3] == kind]


def tick_exception(phase):
    """An exception out of the tick's control path in ``phase``."""
    rig = Rig(seed=31, config=SC.FAST, plant=SC.FAST_PLANT)
    SC.goto(rig, phase)
    ctl = rig.ctl
    open_before = rig.board.valve_pin.value() == 1 or ctl.il.master_open
    SC.inject(rig, "internal")
    rig.step(1)
    out = {
        "open_before": open_before,
        "closed": rig.valves_closed(),
        "latched": C.names(ctl.il.latched),
        "state": S.name(rig.phase()),
        "error": ctl.ticker.internal_error,
        "dev_internal": len(_kinds(ctl, D.DEV_INTERNAL)),
        "dev_fault": [r[4] for r in _kinds(ctl, D.DEV_FAULT)],
    }
    rig.step(5)  # still raising every tick: no new trip records, valves closed
    out["closed_after"] = rig.valves_closed()
    out["dev_fault_after"] = len(_kinds(ctl, D.DEV_FAULT))
    out["operator_ack"] = ctl.ack_fault("operator")["latched"]
    return out


def latches_survive(cause, reboots=3):
    """Stuck solenoid in FREEZE (a service latch), then ``reboots`` resets."""
    rig = Rig(seed=32, config=dict(SC.FAST, **SC.EXTRA_CONFIG["stuck_open"]), plant=SC.FAST_PLANT)
    SC.goto(rig, "FREEZE")
    rig.world.valve_stuck = "open"
    n = 0
    while n < 300 and not rig.ctl.il.latched & (1 << C.STUCK_OPEN):
        rig.step(1)
        n += 1
    rig.world.valve_stuck = None
    out = {"tripped": bool(rig.ctl.il.latched & (1 << C.STUCK_OPEN)), "after": []}
    k = 0
    while k < reboots:
        rig.reboot(cause)
        rig.step(3)
        ctl = rig.ctl
        out["after"].append(
            {
                "latched": C.names(ctl.il.latched),
                "state": S.name(rig.phase()),
                "closed": rig.valves_closed(),
                "start_refused": _refused(ctl.start),
                "restored": len(_kinds(ctl, D.DEV_RESTORED)),
            }
        )
        k += 1
    ctl = rig.ctl
    out["operator_ack"] = ctl.ack_fault("operator")["latched"]
    out["service_ack"] = ctl.ack_fault("service")
    # Acknowledged: the next power-up starts clean (a watchdog reset would
    # latch OVERRUN again: the loop stopped).
    rig.reboot("power")
    rig.step(2)
    out["after_ack_reboot"] = C.names(rig.ctl.il.latched)
    return out


def _refused(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - a refusal names its reason
        return str(e)
    return None


def watchdog_reset_in_treatment():
    """The watchdog resets the board mid-FREEZE (a hung loop)."""
    rig = Rig(seed=33, config=SC.FAST, plant=SC.FAST_PLANT)
    SC.goto(rig, "FREEZE")
    rig.reboot("wdt")
    rig.step(2)
    ctl = rig.ctl
    return {
        "latched": C.names(ctl.il.latched),
        "state": S.name(rig.phase()),
        "closed": rig.valves_closed(),
        "dev": len(_kinds(ctl, D.DEV_WDT_IN_TREATMENT)),
        "operator_ack": ctl.ack_fault("operator")["latched"],
    }


def frozen_site_across_reboot():
    """A power cut mid-hold: after the reboot the site is still frozen (no
    new treatment until it thawed) and its cold dose is kept."""
    rig = Rig(seed=34, config=SC.FAST, plant=SC.FAST_PLANT)
    SC.goto(rig, "FREEZE")
    while not rig.ctl.il.reached:
        rig.step(1)
    rig.step(60)  # 6 s into the hold: the dose was written at least once
    dose = rig.ctl.il.dose()
    rig.reboot("power")
    rig.step(3)
    ctl = rig.ctl
    out = {
        "dose_before": dose,
        "dose_after": ctl.il.dose(),
        "frozen": ctl.site.frozen,
        "start": ctl.start(),
        "reason": ctl.protocol.reason,
        "refused_records": len(_kinds(ctl, D.DEV_REFUSED)),
    }
    out["thawed"] = rig.wait_thawed()
    rig.hold(False)
    rig.step(1)
    out["start_after_thaw"] = ctl.start()
    return out


def estop_pulse_between_ticks():
    """The e-stop loop opens for 40 ms between two 100 ms ticks."""
    rig = Rig(seed=35, config=SC.FAST, plant=SC.FAST_PLANT)
    SC.goto(rig, "FREEZE")
    w = rig.world
    w.set_input("estop", 0)
    rig.clock.advance(40)
    w.set_input("estop", 1)
    rig.clock.advance(-40)  # the next tick is on time
    rig.step(1)
    ctl = rig.ctl
    return {
        "latched": C.names(ctl.il.latched),
        "state": S.name(rig.phase()),
        "closed": rig.valves_closed(),
    }


def step_test_arms_watchdog(can_arm=True):
    """A step test started with no self-test since power-up."""
    rig = Rig(seed=36, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.step(3)
    if not can_arm:
        rig.board.start_watchdog = _no_watchdog
    rig.hold_for_tuning()
    ctl = rig.ctl
    out = {"wdt_before": ctl.watchdog.running}
    out["refused"] = _refused(lambda: ctl.start_step_test({"demand": 0.5, "duration_s": 5.0}))
    rig.step(3)
    out["wdt_after"] = ctl.watchdog.running
    out["state"] = S.name(rig.phase())
    out["valve_opened"] = rig.board.valve_pin.value() == 1 or rig.world.valve_is_open()
    return out


def _no_watchdog(timeout_ms=None):
    return None


def master_follows_cooling():
    """The master valve (series barrier) is open exactly in the cooling
    phases: closed in READY, THAW and between cycles, open in PRECOOL and
    FREEZE."""
    rig = Rig(seed=37, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.start()
    seen = {}
    n = 0
    while n < 4000 and rig.phase() not in (S.DONE, S.FAULT, S.ABORTED):
        rig.step(1)
        st = S.name(rig.phase())
        m = seen.setdefault(st, [0, 0])
        m[1 if rig.board.master_pin.value() else 0] += 1
        n += 1
    seen["end"] = S.name(rig.phase())
    return seen


def fault_outside_session():
    """A probe opens while the device idles (no log session): the fault is
    in the device event log, with the phase."""
    rig = Rig(seed=38, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.step(3)
    SC.inject(rig, "sensor")
    rig.step(5)
    ctl = rig.ctl
    return {
        "latched": C.names(ctl.il.latched),
        "faults": [(r[4], r[5]) for r in _kinds(ctl, D.DEV_FAULT)],
        "boots": len(_kinds(ctl, D.DEV_BOOT)),
    }


def hang_in_step_test():
    """The loop hangs 3 s during a step test started without a self-test:
    the safety timer closes both valves within the heartbeat, while no tick
    runs; the watchdog (armed by the step test) would bite after that."""
    rig = Rig(seed=39, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.step(3)
    rig.hold_for_tuning()
    ctl = rig.ctl
    ctl.start_step_test({"demand": 1.0, "duration_s": 20.0})
    rig.step(10)
    out = {"open_before": rig.board.valve_pin.value() == 1, "wdt": ctl.watchdog.running}
    t0 = rig.now
    closed_at = None
    k = 0
    while k < 300:  # 3 s without a tick, 10 ms at a time
        rig.skip(10)
        k += 1
        if closed_at is None and rig.valves_closed():
            closed_at = rig.clock.diff(rig.now, t0)
    out["closed_after_ms"] = closed_at
    out["latched"] = C.names(ctl.il.latched)
    out["wdt_expired"] = rig.world.wdt_expired(rig.now)
    return out
