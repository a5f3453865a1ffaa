"""The technician starts a treatment with the footswitch.

Without a host: a footswitch press (edge) with the handpiece out of its
holder in IDLE/DONE/ABORTED runs the pre-treatment self-test and begins.
A pedal already down at power-up is not a press; a press with the handpiece
holstered starts nothing (that is how an engineer holds hold-to-run inputs
for TUNE); nothing starts in FAULT. docs/safety.md "Treatment protocol".
"""

import core_scenarios as SC
from core_rig import Rig

from cryo.protocol import states as S


def test_press_with_handpiece_out_self_tests_and_begins():
    rig = Rig(seed=71, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.step(3)
    assert rig.phase() == S.IDLE and not rig.ctl.watchdog.running
    rig.world.set_input("handpiece", 1)
    rig.step(2)
    assert rig.phase() == S.IDLE  # lifting the handpiece alone starts nothing
    rig.world.set_input("footswitch", 1)
    rig.step(1)
    assert rig.phase() == S.PRECOOL and rig.ctl.watchdog.running  # self-test armed the WDT
    assert rig.run_until(S.FREEZE, 3000)
    while not rig.ctl.il.reached:  # into the hold: the tissue is frozen
        rig.step(1)
    rig.step(5)
    # released: ABORTED (hold-to-run)
    rig.world.set_input("footswitch", 0)
    rig.step(1)
    assert rig.phase() == S.ABORTED and rig.valves_closed()
    dose = rig.ctl.il.dose()
    assert dose > 0
    # Pressed again 2 s later on frozen tissue: refused, nothing opens.
    rig.step(19)
    rig.world.set_input("footswitch", 1)
    rig.step(1)
    assert rig.phase() == S.ABORTED and rig.valves_closed()
    assert "thaw" in rig.ctl.protocol.reason
    # Once the site has thawed long enough a press starts again, and the
    # site's cold dose carries on from where the stop left it (the
    # handpiece never went back to its holder: the same site).
    rig.world.set_input("footswitch", 0)
    assert rig.wait_thawed()
    rig.world.set_input("footswitch", 1)
    rig.step(1)
    assert rig.phase() == S.PRECOOL
    assert rig.ctl.il.dose() >= dose


def test_handpiece_holstered_starts_a_new_site():
    """Holstering the handpiece between treatments ends the site: the next
    treatment's cold dose starts from 0."""
    rig = Rig(seed=74, config=SC.FAST, plant=SC.FAST_PLANT)
    assert SC.goto(rig, "FREEZE")
    while not rig.ctl.il.reached:
        rig.step(1)
    rig.step(5)
    rig.hold(False)  # released and holstered
    rig.step(1)
    assert rig.phase() == S.ABORTED and rig.ctl.il.dose() > 0
    assert rig.wait_thawed()
    rig.world.set_input("handpiece", 1)
    rig.world.set_input("footswitch", 1)
    rig.step(1)
    assert rig.phase() == S.PRECOOL and rig.ctl.il.dose() == 0


def test_pedal_held_at_power_up_is_not_a_press():
    rig = Rig(seed=72, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.world.set_input("handpiece", 1)
    rig.world.set_input("footswitch", 1)
    from cryo.controller import Controller

    ctl = Controller(rig.board, dict(SC.FAST, require_wdt=True), log=rig.log)
    rig.ctl = ctl
    rig.step(20)
    assert rig.phase() == S.IDLE and rig.valves_closed()
    rig.world.set_input("footswitch", 0)
    rig.step(1)
    rig.world.set_input("footswitch", 1)
    rig.step(1)
    assert rig.phase() == S.PRECOOL


def test_press_with_handpiece_holstered_or_in_fault_starts_nothing():
    rig = Rig(seed=73, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.step(3)
    rig.world.set_input("footswitch", 1)  # handpiece still in its holder
    rig.step(2)
    rig.world.set_input("handpiece", 1)  # now lifted: no new edge
    rig.step(2)
    assert rig.phase() == S.IDLE and not rig.ctl.watchdog.running
    rig.ctl.start_autotune({"setpoint_c": -30.0})  # the engineer's hold-to-run TUNE
    rig.step(2)
    assert rig.phase() == S.TUNE
    rig.world.set_input("estop", 0)
    rig.step(1)
    assert rig.phase() == S.FAULT
    rig.world.set_input("estop", 1)
    rig.world.set_input("footswitch", 0)
    rig.step(1)
    rig.world.set_input("footswitch", 1)
    rig.step(2)
    assert rig.phase() == S.FAULT and rig.valves_closed()
