"""The safety path allocates nothing (``micropython.heap_lock``), so it can
run from a hard timer ISR and is never delayed by the garbage collector.

Proved under the real MicroPython unix port, on the virtual board's
register-level hardware: the per-condition trip path (check → permit off →
valve and master de-energised), the steady-state evaluation that grants
the permit, sample recording, phase changes, the heartbeat ISR check and
the valve/board safe-state calls.
"""

import core_scenarios as SC
import pytest

from cryo.interlock import conditions as C

# Conditions whose trip path can be re-evaluated on frozen inputs. (STORAGE
# and WATCHDOG enter through flags the control path sets; their evaluation
# is the same integer test, proved in test_steady_and_flag_paths. INTERNAL
# is latched by the control path after an exception; the valves close
# through ``safe()``, proved there too.)
TRIP_CONDITIONS = [c for c in C.NAMES if c not in ("storage", "watchdog", "internal")]


@pytest.mark.parametrize("cond", TRIP_CONDITIONS)
def test_trip_path_allocation_free(mpy, cond):
    ok, tripped = mpy.run(
        """
import sys
sys.path.append(%r)
import core_scenarios as SC
result(SC.alloc_proof(%r, assert_no_alloc))
"""
        % (SC.CORE, cond)
    )
    assert ok is True
    assert tripped is True, "the proof loop did not trip %s every call" % cond


# A rig regulating in FREEZE (the solenoid proved closed at its entry).
_IN_FREEZE = (
    """
import sys
sys.path.append(%r)
import core_scenarios as SC
from cryo.protocol import states as S
from core_rig import Rig
rig = Rig(seed=4, config=SC.FAST, plant=SC.FAST_PLANT)
SC.goto(rig, "FREEZE")
il = rig.ctl.il
"""
    % SC.CORE
)


def test_steady_and_flag_paths(mpy):
    res = mpy.run(
        _IN_FREEZE
        + """
ctl = rig.ctl
now = rig.now
out = {}
out["permit_before"] = il.permit
def steady():
    il.evaluate(now)
out["steady"] = assert_no_alloc(steady, 100)
out["permit_after"] = il.permit
def rec():
    il.record(0, il.code[0], 0, now)
    il.record(1, il.code[1], 0, now)
out["record"] = assert_no_alloc(rec, 100)
def phases():
    il.set_phase(S.THAW, now)
    il.set_phase(S.FREEZE, now)
out["set_phase"] = assert_no_alloc(phases, 50)
def flags():
    il.active = 0
    il.latched = 0
    il.set_storage_ok(0)
    il.set_wdt_ok(0)
    il.evaluate(now)
    il.set_storage_ok(1)
    il.set_wdt_ok(1)
out["flags"] = assert_no_alloc(flags, 50)
out["flags_tripped"] = bool(il.latched & (1 << 12)) and bool(il.active & (1 << 14))
late = rig.clock.add(now, 2000)
def isr():
    il.latched = 0
    il.active = 0
    il.heartbeat_check(late)
out["isr"] = assert_no_alloc(isr, 50)
rig.clock.advance(2000)  # the loop stalled: the timer callback fires
cb = ctl._isr_ref
def timer_cb():
    il.latched = 0
    il.active = 0
    cb(None)
out["timer_cb"] = assert_no_alloc(timer_cb, 50) and bool(il.latched & (1 << 11))
out["isr_closed"] = rig.valves_closed()
def safe():
    ctl.valve.force_closed()
    ctl.master.close()
    rig.board.safe_outputs()
out["safe"] = assert_no_alloc(safe, 50)
def drivers():
    d = ctl.sensors["tissue"]
    d.poll(now)
    ctl.sensors["tissue2"].poll(now)
out["drivers"] = assert_no_alloc(drivers, 20)
sup = ctl.inputs._sup
def supervise():
    sup[0].update(now)
    sup[1].update(now)
    sup[2].update(now)
out["supervised"] = sup[0] is not None and assert_no_alloc(supervise, 20)
result(out)
"""
    )
    assert res["permit_before"] is True and res["permit_after"] is True
    for k in (
        "steady",
        "record",
        "set_phase",
        "flags",
        "isr",
        "timer_cb",
        "safe",
        "drivers",
        "supervised",
    ):
        assert res[k] is True, k
    assert res["flags_tripped"] is True
    assert res["isr_closed"] is True


def test_solenoid_proof_paths_allocation_free(mpy):
    """The proof of the solenoid at FREEZE entry (cryo.interlock.proof):
    starting it (master open, solenoid held closed), evaluating it while it
    runs, and its stuck verdict — trip, both valves closed — allocate
    nothing."""
    res = mpy.run(
        _IN_FREEZE
        + """
now = rig.now
out = {}
def proving():
    il.set_phase(S.FREEZE, now)
    il.evaluate(now)
out["running"] = assert_no_alloc(proving, 50)
out["held"] = il.master_open and not il.permit
class Trip:
    n = 0
    def run(self):
        il.active = 0
        il.latched = 0
        il._new = 0
        il.set_phase(S.FREEZE, now)
        il.set_demand(0)
        il._proof.arm_for_proof(now, il.code[0] + 1000)
        il.evaluate(now)
        if il._new & (1 << 6):
            self.n += 1
t = Trip()
out["stuck"] = assert_no_alloc(t.run, 50)
out["tripped"] = t.n >= 50 and rig.valves_closed() and not il.master_open
result(out)
"""
    )
    assert res == {"running": True, "held": True, "stuck": True, "tripped": True}, res


def test_heartbeat_isr_closes_valves_while_loop_stalls():
    """A stalled loop: the hard-timer check closes both valves before any
    tick runs again, and records OVERRUN (latched)."""
    from core_rig import Rig

    from cryo.protocol import states as S

    rig = Rig(seed=5, config=SC.FAST, plant=SC.FAST_PLANT)
    SC.goto(rig, "FREEZE")
    il = rig.ctl.il
    assert rig.ctl.valve.is_open or il.permit
    rig.ctl.valve.refresh(rig.now)
    rig.board.valve_pin.value(1)  # valve energised when the loop stalls
    assert not il.heartbeat_check(rig.clock.add(rig.now, 300))  # within heartbeat: nothing
    rig.skip(800)
    assert il.heartbeat_check(rig.now) is True
    assert rig.valves_closed()
    assert il.latched & (1 << C.OVERRUN)
    rig.step(1)
    assert rig.phase() == S.FAULT
