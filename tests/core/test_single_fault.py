"""Single faults beyond the sensors (IEC 60601-1 4.7): a defect in the
tick, resets and power cuts with faults latched, a watchdog reset in a
treatment, a re-press on frozen tissue, a short e-stop opening, a step test
without a self-test, the master valve as series barrier, faults outside a
session. Scenarios in single_fault.py; each runs under CPython here and
all of them under the real MicroPython unix port in one process below.
"""

import json

import pytest
import single_fault as SF

from cryo.interlock import conditions as C
from cryo.storage import device_records as D


def _check_tick_exception(r, phase):
    assert r["closed"], "valves still energised in the tick of the exception"
    assert "internal" in r["latched"]
    assert r["state"] == "FAULT"
    assert r["error"] == "RuntimeError"
    assert r["dev_internal"] >= 1
    assert C.INTERNAL in r["dev_fault"]
    assert r["closed_after"]
    # Raising every tick is one fault, not one record per tick.
    assert r["dev_fault_after"] == len(r["dev_fault"])
    assert "internal" in r["operator_ack"], "INTERNAL needs the service role"


@pytest.mark.parametrize("phase", ["IDLE", "PRECOOL", "FREEZE", "THAW"])
def test_exception_in_tick_closes_valves_and_latches_internal(phase):
    r = SF.tick_exception(phase)
    if phase in ("PRECOOL", "FREEZE"):
        assert r["open_before"], "the injection must hit an open valve"
    _check_tick_exception(r, phase)


def _check_latches(r):
    assert r["tripped"]
    for after in r["after"]:
        assert "stuck_open" in after["latched"], after
        assert after["state"] == "FAULT" and after["closed"]
        assert after["start_refused"] and "stuck_open" in after["start_refused"]
        assert after["restored"] >= 1
    assert "stuck_open" in r["operator_ack"]
    assert "stuck_open" in r["service_ack"]["cleared"]
    assert r["after_ack_reboot"] == []


@pytest.mark.parametrize("cause", ["power", "reset", "wdt"])
def test_service_latch_survives_any_number_of_reboots(cause):
    _check_latches(SF.latches_survive(cause))


def test_watchdog_reset_during_treatment_latches_watchdog():
    r = SF.watchdog_reset_in_treatment()
    assert "watchdog" in r["latched"] and r["state"] == "FAULT" and r["closed"]
    # The loop stopped: the overrun the safety timer saw before the reset
    # is raised again at boot (RAM did not survive it).
    assert "overrun" in r["latched"]
    assert r["dev"] == 1
    assert "watchdog" in r["operator_ack"]


def _check_frozen_site(r):
    assert r["dose_before"] > 0
    # Written every 4 s while it grows: a power cut loses less.
    assert r["dose_after"] > 0.5 * r["dose_before"]
    assert r["frozen"] is True
    assert r["start"] is False and "thaw" in r["reason"]
    assert r["refused_records"] == 1
    assert r["thawed"] is True
    assert r["start_after_thaw"] is True


def test_frozen_site_and_dose_survive_a_power_cut():
    _check_frozen_site(SF.frozen_site_across_reboot())


def test_estop_opening_between_ticks_is_latched():
    r = SF.estop_pulse_between_ticks()
    assert "estop" in r["latched"] and r["state"] == "FAULT" and r["closed"]


def test_step_test_arms_the_watchdog_before_any_valve():
    r = SF.step_test_arms_watchdog()
    assert r["wdt_before"] is False
    assert r["refused"] is None
    assert r["wdt_after"] is True and r["state"] == "TUNE"
    r = SF.step_test_arms_watchdog(can_arm=False)
    assert r["refused"] and "watchdog" in r["refused"]
    # Without a watchdog nothing opens: the WATCHDOG condition latches.
    assert r["state"] == "FAULT" and not r["valve_opened"]


def test_hang_in_step_test_closes_valves_without_a_tick():
    r = SF.hang_in_step_test()
    assert r["open_before"] and r["wdt"]
    # Heartbeat 500 ms + one timer period at most.
    assert r["closed_after_ms"] is not None and r["closed_after_ms"] <= 600
    assert "overrun" in r["latched"]
    assert r["wdt_expired"], "the watchdog armed by the step test bites too"


def test_master_valve_open_only_while_cooling():
    seen = SF.master_follows_cooling()
    assert seen.pop("end") == "DONE"
    for st in ("PRECOOL", "FREEZE"):
        assert seen[st][1] > 0, st
    for st in ("READY", "THAW", "DONE"):
        assert seen.get(st, [0, 0])[1] == 0, (st, seen.get(st))


def test_fault_while_idle_is_in_the_device_event_log():
    r = SF.fault_outside_session()
    assert "sensor" in r["latched"]
    assert (C.SENSOR, 0) in r["faults"]  # phase 0: IDLE
    assert r["boots"] == 1


def test_single_faults_on_micropython(mpy):
    res = mpy.run(
        """
import sys
sys.path.append(%r)
import single_fault as SF
out = {}
out["tick"] = SF.tick_exception("FREEZE")
out["latch"] = SF.latches_survive("wdt", 2)
out["wdt"] = SF.watchdog_reset_in_treatment()
out["site"] = SF.frozen_site_across_reboot()
out["estop"] = SF.estop_pulse_between_ticks()
out["step"] = SF.step_test_arms_watchdog()
out["idle"] = SF.fault_outside_session()
out["hang"] = SF.hang_in_step_test()
result(out)
"""
        % SF.__file__.rsplit("/", 1)[0]
    )
    _check_tick_exception(res["tick"], "FREEZE")
    _check_latches(res["latch"])
    assert "watchdog" in res["wdt"]["latched"] and res["wdt"]["dev"] == 1
    _check_frozen_site(res["site"])
    assert "estop" in res["estop"]["latched"]
    assert res["step"]["wdt_after"] and res["step"]["state"] == "TUNE"
    assert [C.SENSOR, 0] in json.loads(json.dumps(res["idle"]["faults"]))
    assert res["hang"]["closed_after_ms"] <= 600 and "overrun" in res["hang"]["latched"]
    assert D.DEV_FAULT != D.DEV_BOOT
