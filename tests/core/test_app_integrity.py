"""Firmware integrity from boot's app selection (cryo.app.select_app):
a fallback to the previous slot latches FIRMWARE until the service role
acknowledges it; no authentic app keeps it active for good. Either way no
treatment can start and both valves stay closed. The booted manifest's
SHA-256 is the session header's fw_hash."""

import core_scenarios as SC
import pytest
from core_rig import Rig

from cryo.interlock import conditions as C
from cryo.link.errors import NotNow
from cryo.protocol import states as S

HASH = "ab" * 16 + "cd" * 16


def _app(fault, reason=""):
    return {
        "slot": "b" if fault == 1 else None,
        "path": "app/b" if fault == 1 else None,
        "version": "0.1.0",
        "manifest_sha256": HASH.encode() if fault != 2 else None,
        "fault": fault,
        "reason": reason,
    }


def _try_to_treat(rig, ticks=50):
    """Operator does everything a treatment needs; returns valve-open ticks."""
    rig.hold(True)
    opened = 0
    for _ in range(ticks):
        rig.step(1)
        if not rig.valves_closed():
            opened += 1
    return opened


def test_fallback_slot_latches_firmware_until_service_ack():
    rig = Rig(seed=41, config=SC.FAST, plant=SC.FAST_PLANT, app=_app(1, "slot a: bad hash"))
    ctl = rig.ctl
    assert ctl.app_fault == 1
    assert rig.valves_closed()
    rig.step(2)
    st = ctl.status()
    assert "firmware" in st["latched"] and st["phase"] == "FAULT"
    assert ctl.alarms.priority == C.HIGH
    assert any(e[1] == "firmware" and "slot a: bad hash" in e[2] for e in ctl.journal.events)
    assert any("firmware" in h[1] for h in ctl.journal.fault_history)
    with pytest.raises(NotNow, match="firmware"):
        ctl.start()
    assert _try_to_treat(rig) == 0 and rig.phase() == S.FAULT
    # Operator and engineer cannot clear it: the image must be inspected.
    for role in ("operator", "engineer"):
        r = ctl.ack_fault(role)
        assert "firmware" in r["latched"] and r["needs"] == "service"
    r = ctl.ack_fault("service")
    assert "firmware" in r["cleared"] and rig.phase() == S.IDLE
    rig.hold(False)
    rig.step(3)
    assert ctl.start() is True and rig.phase() == S.READY


def test_no_authentic_app_blocks_treatment_for_good():
    rig = Rig(seed=42, config=SC.FAST, plant=SC.FAST_PLANT, app=_app(2, "no authentic app slot"))
    ctl = rig.ctl
    rig.step(2)
    st = ctl.status()
    assert "firmware" in st["faults"] and "firmware" in st["latched"]
    assert rig.phase() == S.FAULT and rig.valves_closed()
    r = ctl.ack_fault("service")  # the cause is still there: nothing cleared
    assert "firmware" in r["latched"] and rig.phase() == S.FAULT
    with pytest.raises(NotNow, match="firmware"):
        ctl.start()
    assert _try_to_treat(rig, 100) == 0
    assert ctl.fw_hash == b"\x00" * 32  # no verified image to name


def test_healthy_app_no_fault_and_fw_hash_in_session_header():
    rig = Rig(seed=43, config=SC.FAST, plant=SC.FAST_PLANT, app=_app(0))
    ctl = rig.ctl
    assert ctl.app_fault == 0 and ctl.fw_hash == bytes.fromhex(HASH)
    SC.goto(rig, "PRECOOL")
    assert not (ctl.il.active | ctl.il.latched) & (1 << C.FIRMWARE)
    recs = [r for r in rig.log.read_records() if r["type"] == "session"]
    assert recs and recs[0]["fw_hash"] == HASH


def test_no_app_selection_means_zero_hash_and_no_fault():
    rig = Rig(seed=44, config=SC.FAST, plant=SC.FAST_PLANT)
    assert rig.ctl.fw_hash == b"\x00" * 32 and rig.ctl.app_fault == 0


def test_main_passes_boot_app_to_controller_micropython(mpy):
    """main.py picks up boot.py's APP from the shared namespace."""
    res = mpy.run(
        """
import vboard
w = vboard.get()
import main
main.APP = {"slot": None, "path": None, "version": None,
            "manifest_sha256": None, "fault": 2, "reason": "no authentic app slot"}
board, ctl = main.build()
now = board.clock.ticks_ms()
ctl.tick(now)
st = ctl.status()
result([ctl.app_fault, st["faults"], st["phase"], w.levels[w.valve_id], w.levels[w.master_id]])
""",
        timeout=60,
    )
    fault, faults, phase, valve, master = res
    assert fault == 2 and "firmware" in faults and phase == "FAULT"
    assert valve == 0 and master == 0
