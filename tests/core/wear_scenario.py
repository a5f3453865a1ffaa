"""Valve wear across a treatment and a power cut (cryo.core.wear): runs
unchanged under CPython and MicroPython (test_valve_wear.py)."""

import core_scenarios as SC
import vboard
from core_rig import Rig

from cryo.protocol import states as S
from cryo.storage import records as R


def _wear_events(rig):
    # One record at a time: a list of every sample of two treatments does
    # not fit a 32-bit board's heap beside the firmware.
    out = []
    for r, session in rig.log.iter_records():
        if r["type"] == "event" and r["code"] == R.EV_VALVE_CYCLES:
            out.append([session, r["arg"], r["arg2"]])
    return out


def treatment_then_power_cut(service_cycles):
    """Two treatments with a power cut between them, on a board whose
    definition sets ``valve.service_cycles``."""
    defn = vboard.load_board()
    defn["valve"]["service_cycles"] = service_cycles
    rig = Rig(seed=41, config=SC.FAST, plant=SC.FAST_PLANT, board=defn)
    out = {"status0": rig.ctl.status()["valve_cycles"]}
    SC.goto(rig, "FREEZE")
    rig.run_until(S.DONE, 6000)
    rig.step(2)  # the session is closed at the idle point after DONE
    out["valve_cycles_1"] = rig.ctl.valve.cycles
    out["status1"] = rig.ctl.status()["valve_cycles"]
    out["due1"] = rig.ctl.status()["valve_service_due"]
    rig.hold(False)
    rig.reboot("power")
    rig.step(3)
    out["after_reboot"] = rig.ctl.status()["valve_cycles"]
    out["due_after_reboot"] = rig.ctl.status()["valve_service_due"]
    out["notes"] = [e[2] for e in rig.ctl.journal.events if e[1] == "wear"]
    rig.wait_thawed()
    SC.goto(rig, "FREEZE")
    rig.run_until(S.DONE, 6000)
    rig.step(2)
    out["valve_cycles_2"] = rig.ctl.valve.cycles
    out["status2"] = rig.ctl.status()["valve_cycles"]
    out["events"] = _wear_events(rig)
    return out
