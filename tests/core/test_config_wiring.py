"""Other modules' parts wired into the core: the measured PID
gains and valve timing as defaults, the PID's dt from ``LoopTimer``, the
valve service sub-tick, the gain schedule in the tick, per-channel
calibration and plausibility limits from the configuration, and main.py's
configured treatment log and RTC time stamps."""

import datetime

import core_scenarios as SC
import pytest
from core_rig import Rig

from cryo.interlock import block as B
from cryo.interlock import conditions as C
from cryo.link.errors import Denied
from cryo.protocol import states as S
from cryo.storage import schema


def _to_freeze(rig, max_ticks=3000):
    rig.step(3)
    rig.ctl.start()
    rig.hold(True)
    # FREEZE, and the solenoid proved closed at its entry: the regulator runs.
    assert rig.run_until_regulating(max_ticks), S.name(rig.phase())


def test_factory_defaults_are_the_measured_gains_and_a_200_ms_valve_window():
    for cfg in (None, schema.defaults()):
        rig = Rig(seed=41, config=cfg)
        ctl = rig.ctl
        assert ctl.config_errors == []
        assert (ctl.regulator.pid.kp, ctl.regulator.pid.ki, ctl.regulator.pid.kd) == (
            0.174,
            0.039,
            0.0,
        )
        v = ctl.valve
        assert (v.window_ms, v.min_on_ms, v.min_off_ms) == (200, 30, 30)
        assert ctl.service_ms == 10 and ctl.regulator.schedule is None


def test_pid_dt_is_the_real_elapsed_time_bounded_and_restarts_each_freeze():
    rig = Rig(seed=42, config=SC.FAST, plant=SC.FAST_PLANT)
    _to_freeze(rig)
    ctl = rig.ctl
    assert ctl.regulator.timer.elapsed_ms == 100  # first update of the phase: nominal
    rig.step(2)
    assert ctl.regulator.timer.elapsed_ms == 100
    rig.skip(60)  # a late tick: the PID integrates the time that really passed
    rig.step(1)
    assert rig.phase() == S.FREEZE and ctl.regulator.timer.elapsed_ms == 160
    rig.skip(250)  # 350 ms gap: bounded to two periods, counted
    rig.step(1)
    assert rig.phase() == S.FREEZE and ctl.regulator.timer.elapsed_ms == 200
    assert ctl.regulator.timer.overruns == 1
    # The next FREEZE (cycle 2) starts with an empty PID and a nominal dt,
    # not with the time since the last FREEZE tick of cycle 1.
    assert rig.run_until(S.THAW, 3000)
    assert rig.run_until_regulating(3000) and ctl.protocol.cycle == 2
    assert ctl.regulator.timer.elapsed_ms == 100 and ctl.regulator.timer.overruns == 1


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"valve.window_ms": 50}, "valve.window_ms = 50 is outside 100..5000"),
        (
            {"valve.min_on_ms": 150, "valve.min_off_ms": 100},
            "valve.min_on_ms + valve.min_off_ms = 250 ms must fit in valve.window_ms = 200 ms",
        ),
        ({"pid.kp": "fast"}, "pid.kp must be a number"),
        ({"valve.service_ms": 12.5}, "valve.service_ms must be a whole number of ms"),
        ({"sensor.t_max_c": 150.0}, "tc_max_c = 150.0 is outside the hard limits"),
        (
            {"sensor.tissue.cal": {"m1": -100.0, "r1": -195.8, "m2": 0.0, "r2": 0.0}},
            "sensor.tissue.cal: calibration gain 1.958 implausible",
        ),
        ({"pid.bands": [[-35.0, 0.3]]}, "pid.bands: each gain band must be"),
        ({"pid.bands": [[-35.0, 30.0, 0.05, 0.0]]}, "pid.bands -35.0: pid.kp = 30.0 is outside"),
    ],
)
def test_invalid_regulator_sensor_settings_latch_config(cfg, message):
    rig = Rig(seed=43, config=cfg)
    ctl = rig.ctl
    assert any(m.startswith(message) for m in ctl.config_errors), ctl.config_errors
    rig.step(2)
    assert ctl.il.active & (1 << C.CONFIG) and rig.phase() == S.FAULT
    # Nothing half-applied: the valve runs with valid timing.
    v = ctl.valve
    assert v.min_on_ms + v.min_off_ms <= v.window_ms and rig.valves_closed()


def test_set_param_changes_valve_timing_within_limits_and_roles():
    rig = Rig(seed=44, config=SC.FAST, plant=SC.FAST_PLANT)
    ctl = rig.ctl
    rig.step(3)
    assert ctl.set_param("valve.window_ms", 400, "engineer") == 400
    assert ctl.valve.window_ms == 400 and ctl.get_param("valve.window_ms") == 400
    with pytest.raises(ValueError, match="outside 100..5000"):
        ctl.set_param("valve.window_ms", 50, "engineer")
    with pytest.raises(ValueError, match="must fit in valve.window_ms"):
        ctl.set_param("valve.min_on_ms", 380, "engineer")
    assert ctl.valve.min_on_ms == 30 and ctl.valve.window_ms == 400
    with pytest.raises(Denied, match="service"):
        ctl.set_param("valve.max_open_ms", 2000, "engineer")
    assert ctl.set_param("valve.max_open_ms", 2000, "service") == 2000
    assert ctl.valve.max_open_ms == 2000
    assert ctl.set_param("valve.service_ms", 20, "engineer") == 20 and ctl.service_ms == 20
    with pytest.raises(ValueError, match="pid.kp = 11 is outside"):
        ctl.set_param("pid.kp", 11, "engineer")


def test_gain_schedule_applied_in_the_tick_when_configured():
    near = Rig(seed=45, config=dict(SC.FAST, **{"pid.bands": [[-35.0, 0.3, 0.05, 0.0]]}))
    far = Rig(seed=45, config=dict(SC.FAST, **{"pid.bands": [[-20.0, 0.3, 0.05, 0.0]]}))
    for rig in (near, far):
        assert rig.ctl.config_errors == [] and rig.ctl.regulator.schedule is not None
        assert rig.ctl.regulator.pid.kp == 0.174  # defaults until a FREEZE asks for its band
        _to_freeze(rig)
        rig.step(2)
    assert (near.ctl.regulator.pid.kp, near.ctl.regulator.pid.ki) == (0.3, 0.05)
    assert near.ctl.status()["gain_band"] == -35.0
    # -20 degC is 15 degC from the -35 degC target (band 5 degC): defaults stay.
    assert (far.ctl.regulator.pid.kp, far.ctl.regulator.pid.ki) == (0.174, 0.039)
    assert far.ctl.status()["gain_band"] is None


def test_calibration_corrects_reading_and_moves_the_raw_limits():
    cal = {"m1": -200.0, "r1": -195.0, "m2": 0.0, "r2": 5.0}  # reads 5 degC low
    plain = Rig(seed=46)
    calib = Rig(seed=46, config={"sensor.tissue.cal": cal})
    assert calib.ctl.config_errors == []
    plain.step(5)
    calib.step(5)
    t0, t1 = plain.ctl.inputs.temps[0], calib.ctl.inputs.temps[0]
    assert t0 is not None and abs((t1 - t0) - 5.0) < 1e-6
    assert calib.ctl.inputs.temps[2] == plain.ctl.inputs.temps[2]  # other channels untouched
    # The floor is a true temperature: the raw code of the *reading* that
    # calibrates to -60 degC is the one for -65 degC.
    drv = calib.ctl.inputs._drv[0]
    cj = calib.ctl.inputs._cj_limits
    assert calib.ctl.il.lim[B.L_FLOOR0] == int(drv.code_for(-65.0, cj))
    # (MAX31855: linear code, ~3.4 codes/degC of true temperature near -60 degC)
    assert 14 <= plain.ctl.il.lim[B.L_FLOOR0] - calib.ctl.il.lim[B.L_FLOOR0] <= 20


def test_channel_plausibility_limits_from_config():
    rig = Rig(seed=47, config={"sensor.t_max_c": 45.0, "sensor.stuck_s": 10.0})
    sup = rig.ctl.inputs._sup[0]
    assert rig.ctl.config_errors == []
    assert sup.t_max_c == 45.0 and sup.stuck_ms == 10000
    rig.step(3)
    other = Rig(seed=47)
    other.step(3)
    # The raw high limit moved down with the configured range (MAX31855 codes).
    assert sup.code_hi < other.ctl.inputs._sup[0].code_hi


def _substep(rig, period_ms, sub_ms, ticks, on_sample):
    """Advance like Controller.run(): valve sub-ticks every ``sub_ms`` between ticks."""
    assert rig.ctl.service_ms == sub_ms
    clock = rig.clock
    for _ in range(ticks):
        deadline = clock.add(clock.ticks_ms(), period_ms)
        rig.world.wait_for_tick(rig.ctl, deadline, on_sample)
        rig.ctl.tick(deadline)
        rig.ctl.idle(deadline)
        on_sample(deadline)


def test_valve_sub_ticks_resolve_pulses_finer_than_the_tick():
    # The fast plant sprays 10x harder than the calibrated one: gains / 10.
    cfg = dict(SC.FAST, **{"pid.kp": 0.017, "pid.ki": 0.004})
    rig = Rig(seed=48, config=cfg, plant=SC.FAST_PLANT)
    _to_freeze(rig)
    pulses = []
    state = {"open_at": None}

    def sample(now):
        is_open = rig.board.valve_pin.value() == 1
        if is_open and state["open_at"] is None:
            state["open_at"] = now
        elif not is_open and state["open_at"] is not None:
            pulses.append(rig.clock.diff(now, state["open_at"]))
            state["open_at"] = None

    _substep(rig, rig.period, 10, 60, sample)  # 6 s of FREEZE regulation
    assert rig.phase() == S.FREEZE and pulses
    # Serviced only at the 100 ms tick every pulse would be a multiple of
    # 100 ms; with the 10 ms sub-tick the on-time follows the demand.
    assert any(p % 100 for p in pulses), pulses
    assert min(pulses) >= rig.ctl.valve.min_on_ms


def test_service_valve_is_allocation_free_on_micropython(mpy):
    res = mpy.run(
        """
import sys
sys.path.append(%r)
import gc
gc.threshold(200000)
import core_scenarios as SC
from core_rig import Rig
from cryo.protocol import states as S
rig = Rig(seed=49, config=SC.FAST, plant=SC.FAST_PLANT)
ctl = rig.ctl
t = [rig.now]
def sub_tick():
    ctl.service_valve(t[0])
out = [assert_no_alloc(sub_tick, 50)]  # idle: no permit, closed
rig.step(3)
ctl.start()
rig.hold(True)
rig.run_until_regulating(3000)
rig.clock.advance(30)
t[0] = rig.clock.ticks_ms()
out.append(assert_no_alloc(sub_tick, 50))  # regulating: permit, window running
out.append(ctl.il.permit)
result(out + [S.name(rig.phase()), ctl.regulator.timer.elapsed_ms])
"""
        % SC.CORE
    )
    assert res == [True, True, True, "FREEZE", 100]


def test_main_builds_the_log_from_config_and_stamps_rtc_time(tmp_path, monkeypatch):
    import main

    from cryo.storage import config as CFG

    cfg = schema.defaults()
    cfg["log.sample_hz"] = 5
    cfg["log.commit_every"] = 4
    cfg["limits.require_wdt"] = False
    CFG.save(cfg, str(tmp_path / "config.json"))
    from cryo import paths

    # the files under tmp_path, as boot.py names them from the board's flash root
    monkeypatch.setattr(paths, "_root", str(tmp_path) + "/")
    rig = Rig(seed=50, log=None)

    class SetRTC:  # the sim RTC's setter needs MicroPython's 8-tuple mktime
        def datetime(self):
            return (2026, 11, 25, 2, 16, 30, 15, 0)

    monkeypatch.setattr(rig.board, "rtc", SetRTC())
    board, ctl = main.build(rig.board)
    expect = int(
        (
            datetime.datetime(2026, 11, 25, 16, 30, 15) - datetime.datetime(2000, 1, 1)
        ).total_seconds()
    )
    assert ctl.config_errors == [] and ctl.params["require_wdt"] is False
    assert ctl.log.sample_hz == 5 and ctl.log.commit_every == 4
    assert abs(ctl.journal.rtc()[0] - expect) <= 1
    ctl.set_param("pid.kp", 0.2, "engineer")  # audited with the RTC time
    line = (tmp_path / "audit.log").read_text().splitlines()[-1]
    assert abs(int(line.split(",")[1]) - expect) <= 1


def test_saved_configuration_keeps_calibration_bands_and_valve_timing(tmp_path):
    from cryo.storage import config as CFG

    cal = {"m1": -190.0, "r1": -195.8, "m2": 0.5, "r2": 0.0}
    cfg = dict(SC.FAST)
    cfg.update({"sensor.tissue.cal": cal, "pid.bands": [[-35.0, 0.3, 0.05, 0.0]]})
    rig = Rig(seed=51, config=cfg, plant=SC.FAST_PLANT)
    rig.step(3)
    rig.ctl.set_param("valve.window_ms", 300, "engineer")
    rig.ctl.set_param("stale_ms", 800, "service")
    path = str(tmp_path / "config.json")
    rig.ctl.save_config("engineer", path)
    stored, fault = CFG.load(path)
    assert fault is None and stored["schema_version"] == schema.SCHEMA_VERSION
    assert stored["sensor.tissue.cal"] == cal and stored["pid.bands"] == [[-35.0, 0.3, 0.05, 0.0]]
    assert stored["valve.window_ms"] == 300 and stored["limits.stale_ms"] == 800
    again = Rig(seed=52, config=stored, plant=SC.FAST_PLANT)
    assert again.ctl.config_errors == []
    assert again.ctl.valve.window_ms == 300 and again.ctl.params["stale_ms"] == 800
    assert again.ctl.regulator.schedule.to_list() == [[-35.0, 0.3, 0.05, 0.0]]
    assert (
        again.ctl.settings.calibrations[0] is not None
        and again.ctl.settings.calibrations[2] is None
    )


def test_run_loop_services_the_valve_between_ticks(mpy):
    """Controller.run on the real-time virtual board: valve.service runs in
    the sleep between ticks (valve.service_ms slices), not only in the tick."""
    res = mpy.run(
        """
import sys
sys.path.append(".frozen")
import vboard
w = vboard.get()
from cryo import board as cboard
from cryo.controller import Controller
b = cboard.build()
ctl = Controller(b, {"require_wdt": False})
calls = [0]
svc = ctl.valve.service
def counted(now):
    calls[0] += 1
    return svc(now)
ctl.valve.service = counted
ctl.run(should_stop=lambda: ctl.ticker.ticks >= 6)
result([ctl.ticker.ticks, calls[0], w.levels[w.valve_id]])
""",
        timeout=60,
    )
    ticks, calls, valve = res
    assert ticks >= 6 and valve == 0
    assert calls > ticks  # sub-ticks happened between the ticks' own service calls


def test_params_by_their_stored_schema_names():
    rig = Rig(seed=53, config=SC.FAST, plant=SC.FAST_PLANT)
    ctl = rig.ctl
    rig.step(3)
    assert ctl.get_param("limits.floor_margin_c") == 10.0
    with pytest.raises(Denied, match="service"):
        ctl.set_param("limits.stale_ms", 800, "engineer")
    assert ctl.set_param("limits.stale_ms", 800, "service") == 800
    assert ctl.params["stale_ms"] == 800 and ctl.il.lim[B.L_STALE_MS] == 800
    with pytest.raises(ValueError, match="hard limits"):
        ctl.set_param("limits.floor_margin_c", 50.0, "service")
