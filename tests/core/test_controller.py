"""Controller and protocol behaviour on the virtual board: a full treatment,
the 2**30 tick wrap, acknowledgements with roles, configuration limits,
self-test, service mode, Ctrl-C policy, alarms."""

import core_scenarios as SC
import pytest
from core_rig import Rig

from cryo.clock import TICKS_PERIOD
from cryo.interlock import conditions as C
from cryo.link.errors import Denied, NotNow
from cryo.protocol import params as P
from cryo.protocol import states as S
from cryo.storage import records as R


def _treat(rig, max_ticks=20000):
    rig.step(3)
    rig.ctl.start()
    rig.hold(True)
    seq = [rig.phase()]
    freeze_open = 0
    other_open = 0
    for _ in range(max_ticks):
        rig.step(1)
        st = rig.phase()
        if st != seq[-1]:
            seq.append(st)
        if rig.world.valve_is_open():
            if st in (S.PRECOOL, S.FREEZE):
                freeze_open += 1
            else:
                other_open += 1
        if st in (S.DONE, S.FAULT, S.ABORTED):
            break
    return seq, freeze_open, other_open


def test_full_two_cycle_treatment_logged():
    rig = Rig(seed=11, config=SC.FAST, plant=SC.FAST_PLANT)
    seq, open_cool, open_other = _treat(rig)
    assert [S.name(s) for s in seq] == [
        "READY",
        "PRECOOL",
        "FREEZE",
        "THAW",
        "FREEZE",
        "THAW",
        "DONE",
    ]
    assert open_cool > 0 and open_other == 0
    ctl = rig.ctl
    assert not ctl.il.active and not ctl.il.latched and not ctl.journal.fault_history
    assert rig.valves_closed()
    # The log session: phase events for every transition, summary completed.
    log = rig.log
    assert not log.active
    recs = list(log.read_records())
    events = [r for r in recs if r.get("type") == "event" or r.get("_type") == "event"]
    phases = [e["arg"] for e in events if e.get("code") == R.EV_PHASE]
    assert phases[-1] == S.DONE and phases.count(S.FREEZE) == 2


def test_freeze_hold_counted_from_reaching_target():
    rig = Rig(seed=12, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.step(3)
    rig.ctl.start()
    rig.hold(True)
    assert rig.run_until(S.FREEZE, 200)
    t_freeze = rig.now
    assert rig.run_until(S.THAW, 2000)
    t_thaw = rig.now
    proto = rig.ctl.protocol
    approach = rig.clock.diff(proto.t_reached, t_freeze)
    hold = rig.clock.diff(t_thaw, proto.t_reached)
    assert approach > 500  # the pull-down to the target did not count ...
    freeze_ms = int(SC.FAST["freeze_s"] * 1000)
    assert freeze_ms <= hold <= freeze_ms + rig.period  # ... the hold did


def test_treatment_across_tick_wrap_cpython():
    start = TICKS_PERIOD - 20000  # the wrap falls in the first FREEZE
    rig = Rig(seed=13, config=SC.FAST, plant=SC.FAST_PLANT, start_ms=start)
    seq, open_cool, open_other = _treat(rig)
    assert seq[-1] == S.DONE, [S.name(s) for s in seq]
    assert rig.now < start  # the clock wrapped
    assert not rig.ctl.journal.fault_history


def test_treatment_and_trips_across_tick_wrap_micropython(mpy):
    res = mpy.run(
        """
import sys
sys.path.append(%r)
import gc
gc.threshold(200000)
import core_scenarios as SC
from core_rig import Rig
from cryo.protocol import states as S
start = (1 << 30) - 20000
rig = Rig(seed=13, config=SC.FAST, plant=SC.FAST_PLANT, start_ms=start)
rig.step(3)
rig.ctl.start()
rig.hold(True)
n = 0
while rig.phase() not in (S.DONE, S.FAULT, S.ABORTED) and n < 20000:
    rig.step(1)
    n += 1
out = {"state": S.name(rig.phase()), "wrapped": rig.now < start,
       "faults": [h[1] for h in rig.ctl.journal.fault_history]}
# Time-based conditions straddling the wrap still trip on time.
out["freeze_time"] = SC.run_case("freeze_time", "FREEZE", start_ms=(1 << 30) - 30000)
out["overrun"] = SC.run_case("overrun", "FREEZE", start_ms=(1 << 30) - 2500)
result(out)
"""
        % SC.CORE
    )
    assert res["state"] == "DONE" and res["wrapped"] and res["faults"] == []
    for k in ("freeze_time", "overrun"):
        r = res[k]
        assert r["recorded"] and r["closed_same_tick"], (k, r)


def test_latched_fault_needs_ack_and_safe_conditions():
    rig = Rig(seed=14, config=SC.FAST, plant=SC.FAST_PLANT)
    SC.goto(rig, "FREEZE")
    rig.world.set_input("estop", 0)
    rig.step(1)
    ctl = rig.ctl
    assert rig.phase() == S.FAULT and rig.valves_closed()
    with pytest.raises(NotNow, match="estop"):
        ctl.start()
    # Acknowledged while still pressed: nothing cleared.
    r = ctl.ack_fault("operator")
    assert "estop" in r["latched"] and rig.phase() == S.FAULT
    rig.world.set_input("estop", 1)
    rig.step(2)
    r = ctl.ack_fault("operator")
    assert r["cleared"] == ["estop"] and rig.phase() == S.IDLE
    assert any(e[1] == "ack" and "operator" in e[2] for e in ctl.journal.events)
    rig.hold(False)
    rig.step(3)
    # The freeze was cut short: the tissue is frozen, so no new treatment
    # until it has thawed (min_thaw_s above thaw_c), then one may start.
    assert ctl.start() is False and rig.phase() == S.ABORTED
    assert "thaw" in ctl.protocol.reason
    assert rig.wait_thawed()
    assert ctl.start() is True and rig.phase() == S.READY


def test_stuck_open_ack_needs_service_role():
    rig = Rig(seed=15, config=dict(SC.FAST, **SC.EXTRA_CONFIG["stuck_open"]), plant=SC.FAST_PLANT)
    SC.goto(rig, "FREEZE")
    rig.world.valve_stuck = "open"
    for _ in range(100):
        rig.step(1)
        if rig.ctl.il.latched & (1 << C.STUCK_OPEN):
            break
    assert rig.ctl.il.latched & (1 << C.STUCK_OPEN)
    assert rig.board.master_pin.value() == 0  # master valve closed
    rig.world.valve_stuck = None
    rig.step(2)
    r = rig.ctl.ack_fault("operator")
    assert "stuck_open" in r["latched"] and r["needs"] == "service"
    r = rig.ctl.ack_fault("service")
    assert "stuck_open" in r["cleared"]
    with pytest.raises(ValueError, match="allowed: operator, engineer, service"):
        rig.ctl.ack_fault("janitor")


def test_invalid_config_latches_config_and_names_the_field():
    rig = Rig(seed=16, config={"target_c": -70.0, "cycles": 5})
    ctl = rig.ctl
    assert any("target_c" in m and "-50.0..-20.0" in m for m in ctl.config_errors)
    assert any("cycles" in m for m in ctl.config_errors)
    rig.step(2)
    assert ctl.il.active & (1 << C.CONFIG) and ctl.il.latched & (1 << C.CONFIG)
    assert rig.phase() == S.FAULT
    with pytest.raises(NotNow, match="config"):
        ctl.start()


def test_params_hard_limits_and_cross_rules():
    assert P.validate(P.defaults()) == []
    assert P.validate({"freeze_s": 45}) == [
        "freeze_s = 45 is outside the hard limits 5.0..30.0 s (no role can widen it)"
    ]
    # Clinical limits have factory bounds that no role or file can widen.
    assert P.validate({"floor_c": -70.0}) == [
        "floor_c = -70.0 is outside the factory clinical bound -60.0..-30.0 degC"
        " (no role can widen it)"
    ]
    for name, beyond in (
        ("freeze_max_s", 61.0),
        ("dose_max_cs", 6001.0),
        ("disagree_c", 10.5),
        ("stuck_rate_c_s", 2.5),
        ("stuck_window_s", 3.5),
        ("stuck_grace_s", 3.5),
    ):
        msgs = P.validate({name: beyond})
        assert msgs and "factory clinical bound" in msgs[0], (name, msgs)
    assert "integer" in P.validate({"cycles": 2.5})[0]
    # The cross rules are the schema's (one definition for host and device),
    # named by the schema fields.
    assert P.validate({"target_c": -45.0, "floor_c": -50.0}) == [
        "protocol.target_c = -45 degC is too close to the hard limit: allowed from "
        "limits.floor_c + limits.floor_margin_c = -40 degC upwards"
    ]
    assert P.validate({"freeze_s": 30.0, "freeze_max_s": 30.0}) == [
        "protocol.freeze_s = 30 s reaches the hard limit: allowed below limits.max_freeze_s = 30 s"
    ]
    assert P.validate({"heartbeat_ms": 150, "period_ms": 100}) == [
        "limits.heartbeat_ms = 150 must be at least 2 * pid.period_ms = 100: change one of them"
    ]
    # A rule on a field the controller does not hold (limits.max_cycles) is
    # the host's file check only; the planned cold dose is checked here too.
    assert P.validate(
        {"cycles": 3, "freeze_s": 30.0, "target_c": -35.0, "dose_max_cs": 3000.0}
    ) == [
        "protocol cold dose 3150 degC*s (-target_c * freeze_s * cycles) exceeds the hard "
        "limit: allowed up to limits.cold_dose_cs = 3000 degC*s"
    ]
    assert P.validate({"protocol.target_c": -60.0})  # schema alias, our hard limit
    assert P.merged({"protocol.cycles": 3, "pid.kp": 1.0})["cycles"] == 3
    with pytest.raises(ValueError, match="allowed"):
        P.spec("nonsense")


def test_set_param_roles_and_state():
    rig = Rig(seed=17, config=SC.FAST, plant=SC.FAST_PLANT)
    ctl = rig.ctl
    rig.step(5)
    with pytest.raises(Denied, match="service"):
        ctl.set_param("floor_c", -55.0, "operator")
    assert ctl.set_param("floor_c", -55.0, "service") == -55.0
    # Tightening is the service role's; widening past the bound is nobody's.
    with pytest.raises(ValueError, match="factory clinical bound -60.0..-30.0"):
        ctl.set_param("floor_c", -61.0, "service")
    assert ctl.get_param("floor_c") == -55.0
    with pytest.raises(ValueError, match="hard limits"):
        ctl.set_param("freeze_s", 99.0, "operator")
    assert ctl.set_param("freeze_s", 10.0, "operator") == 10.0
    assert ctl.get_param("freeze_s") == 10.0
    rig.ctl.start()
    rig.hold(True)
    rig.step(2)
    assert rig.phase() == S.PRECOOL
    with pytest.raises(NotNow, match="PRECOOL"):
        ctl.set_param("freeze_s", 12.0, "operator")


def test_self_test_refuses_without_watchdog():
    rig = Rig(seed=18, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.board.start_watchdog = lambda timeout_ms=None: None  # a board without one
    rig.step(3)
    assert rig.ctl.start() is False
    assert rig.phase() == S.ABORTED and "watchdog" in rig.ctl.protocol.reason


def test_self_test_refuses_without_room_for_a_treatment():
    rig = Rig(seed=19, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.step(3)
    rig.log.has_room_for = lambda s: False
    assert rig.ctl.start() is False
    assert "storage" in rig.ctl.protocol.reason or "log" in rig.ctl.protocol.reason


def test_watchdog_fed_only_when_healthy():
    rig = Rig(seed=20, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.step(5)
    assert not rig.ctl.watchdog.running and rig.world.wdt_timeout_ms == 0  # not armed while idle
    rig.ctl.start()  # the self-test arms it
    # The sim board defines watchdog.timeout_ms 2000 (config FAST sets none).
    assert rig.world.wdt_timeout_ms == rig.ctl.settings.wdt_ms == 2000
    rig.step(5)
    fed = rig.ctl.watchdog.feeds
    assert fed >= 5
    # An unplugged probe is the world's fault: valves closed, WDT still fed.
    rig.world.channels["tissue"].chip.open_circuit = True
    rig.step(30)
    assert rig.ctl.il.latched & (1 << C.SENSOR)
    assert rig.ctl.watchdog.feeds >= fed + 25 and rig.resets == 0
    # A corrupted limit block is the controller's own: feeding stops, the
    # watchdog bites (the board reboots with valves closed by boot.py).
    fed = rig.ctl.watchdog.feeds
    rig.ctl.il.lim[3] ^= 1
    rig.step(30)  # 3 s > wdt timeout (2 s)
    assert rig.ctl.watchdog.feeds == fed
    assert rig.resets >= 1
    assert rig.valves_closed()


def test_service_mode_only_when_idle():
    rig = Rig(seed=21, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.step(5)
    with pytest.raises(Denied):
        rig.ctl.request_service_mode("operator")
    assert rig.ctl.request_service_mode("engineer") is True
    assert rig.ctl.service_requested and rig.valves_closed()
    # After a treatment the watchdog is armed: service mode needs a reset.
    rig2 = Rig(seed=33, config=SC.FAST, plant=SC.FAST_PLANT)
    SC.goto(rig2, "FREEZE")
    with pytest.raises(NotNow, match="FREEZE"):
        rig2.ctl.request_service_mode("service")
    rig2.ctl.stop("test")
    rig2.step(1)
    assert rig2.phase() == S.ABORTED and rig2.valves_closed()
    with pytest.raises(NotNow, match="reset the board"):
        rig2.ctl.request_service_mode("service")


@pytest.mark.parametrize("phase", ["PRECOOL", "FREEZE", "THAW"])
def test_a_reset_request_is_refused_during_a_treatment_and_granted_after(phase):
    """The link's reset (`cryo reset`): nothing on the serial line stops a
    treatment, so it is refused in every treating phase, the valves as the
    protocol has them; after the treatment it is granted with the watchdog
    armed (the reset is what disarms it), valves closed first."""
    rig = Rig(seed=34, config=SC.FAST, plant=SC.FAST_PLANT)
    SC.goto(rig, phase)
    with pytest.raises(NotNow, match=phase):
        rig.ctl.request_reset("service")
    assert not rig.ctl.reset_requested and rig.phase() == getattr(S, phase)
    with pytest.raises(Denied):
        rig.ctl.request_reset("operator")
    rig.ctl.stop("test")
    rig.step(1)
    assert rig.ctl.watchdog.running
    assert rig.ctl.request_reset("engineer") is True
    assert rig.ctl.reset_requested and rig.ctl.service_requested and rig.valves_closed()


def test_ctrl_c_disabled_during_treatment():
    rig = Rig(seed=22, config=SC.FAST, plant=SC.FAST_PLANT)
    calls = []
    rig.ctl.ticker._kbd = calls.append
    SC.goto(rig, "PRECOOL")
    assert calls[-1] == -1
    rig.ctl.stop("test")
    assert calls[-1] == 3


def test_alarm_signals_by_priority():
    rig = Rig(seed=23, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.step(3)
    leds = rig.board.leds  # the sim board's green/yellow/red (as on the real boards)
    assert leds["green"].value() == 1 and leds["red"].value() == 0
    rig.world.set_input("estop", 0)
    rig.step(1)
    al = rig.ctl.alarms
    assert al.priority == C.HIGH
    # HIGH: 10-pulse burst; count buzzer on-edges over one 5 s period.
    buz = rig.board.buzzer
    edges = 0
    prev = 0
    flashes = 0
    prev_led = leds["red"].value()
    for _ in range(50):
        rig.step(1)
        on = 1 if buz.duty_u16() else 0
        if on and not prev:
            edges += 1
        prev = on
        v = leds["red"].value()
        if v != prev_led:
            flashes += 1
            prev_led = v
    assert edges == 10
    assert flashes >= 18  # 2 Hz flashing
    assert leds["green"].value() == 0
    ev = rig.ctl.pause_audio("operator")
    assert ev["event"] == "audio_pause"
    rig.step(20)
    assert buz.duty_u16() == 0 and al.audio_paused


def test_status_fields_for_the_link():
    rig = Rig(seed=24, config=SC.FAST, plant=SC.FAST_PLANT)
    SC.goto(rig, "FREEZE")
    st = rig.ctl.status()
    for k in (
        "t_ms",
        "phase",
        "setpoint_c",
        "temps",
        "demand",
        "valve",
        "faults",
        "alarms",
        "overruns",
    ):
        assert k in st
    assert st["phase"] == "FREEZE" and st["setpoint_c"] == SC.FAST["target_c"]
    assert set(st["temps"]) == {"tissue", "tissue2", "aux", "tissue3"}


def test_save_config_round_trip_through_storage(tmp_path):
    from cryo.storage import config as CFG

    rig = Rig(seed=25, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.step(5)
    rig.ctl.set_param("target_c", -30.0, "operator")
    with pytest.raises(Denied):
        rig.ctl.save_config("operator", str(tmp_path / "config.json"))
    rig.ctl.save_config("engineer", str(tmp_path / "config.json"))
    cfg, fault = CFG.load(str(tmp_path / "config.json"))
    assert fault is None and cfg["protocol.target_c"] == -30.0
    rig2 = Rig(seed=26, config=cfg, plant=SC.FAST_PLANT)
    assert rig2.ctl.config_errors == []
    assert rig2.ctl.params["target_c"] == -30.0
    assert rig2.ctl.params["freeze_s"] == SC.FAST["freeze_s"]


def _tune_rig(seed):
    # The fast plant sprays 10x harder than the calibrated one: serviced only
    # at the 100 ms tick, the default 200 ms window's coarse pulses (0/100/200
    # ms) drive its relay past the floor. These tests are about the TUNE phase
    # plumbing, so they use a 1 s window (10 levels at the tick).
    cfg = dict(SC.FAST)
    cfg.update({"valve.window_ms": 1000, "valve.min_on_ms": 60, "valve.min_off_ms": 60})
    rig = Rig(seed=seed, config=cfg, plant=SC.FAST_PLANT)
    rig.step(5)
    return rig


def test_autotune_runs_in_tune_phase_and_returns_gains():
    rig = _tune_rig(27)
    with pytest.raises(NotNow, match="hold-to-run"):
        rig.ctl.start_autotune({"setpoint_c": -30.0})
    rig.hold(True)
    st = rig.ctl.start_autotune({"setpoint_c": -30.0})
    assert st["state"] == "running" and rig.phase() == S.TUNE
    assert rig.ctl.status()["mode"] == "autotune"
    opened = False
    for _ in range(5000):
        rig.step(1)
        if rig.world.valve_is_open():
            opened = True
            assert rig.phase() == S.TUNE and rig.ctl.il.permit
        if rig.phase() != S.TUNE:
            break
    assert opened and rig.phase() == S.IDLE and rig.valves_closed()
    st = rig.ctl.autotune_status()
    res = st["result"]
    assert st["state"] == "done" and st["reason"] is None
    assert res["ok"] is True and res["kp"] > 0 and res["rule"] == "simc"


def test_interlock_stays_armed_during_autotune():
    rig = _tune_rig(28)
    rig.hold(True)
    rig.ctl.start_autotune({"setpoint_c": -30.0})
    rig.step(20)
    rig.world.set_input("estop", 0)
    rig.step(1)
    assert rig.phase() == S.FAULT and rig.valves_closed()
    res = rig.ctl.autotune_status()
    assert res["state"] == "aborted" and res["result"]["ok"] is False and res["reason"]


def test_tune_phase_has_a_hard_time_limit_and_release_stops_it():
    rig = Rig(seed=29, config=dict(SC.FAST, tune_max_s=60.0), plant=SC.FAST_PLANT)
    rig.step(5)
    rig.hold(True)
    rig.ctl.start_step_test({"demand": 0.05, "duration_s": 50.0})
    assert rig.ctl.status()["mode"] == "step"
    rig.ctl.tuning._step["ms"] = 10**7  # the step sequencer fails to end the test
    n = 0
    while rig.phase() == S.TUNE and n < 1000:
        rig.step(1)
        n += 1
    # The interlock's own TUNE limit (60 s) cut it, latched.
    assert rig.phase() == S.FAULT and rig.valves_closed()
    assert 595 <= n <= 610
    assert rig.ctl.il.latched & (1 << C.FREEZE_TIME)
    rig2 = _tune_rig(30)
    rig2.hold(True)
    rig2.ctl.start_step_test({"demand": 0.3, "duration_s": 30.0})
    rig2.step(5)
    rig2.world.set_input("footswitch", 0)
    rig2.step(1)
    assert rig2.phase() == S.ABORTED and rig2.valves_closed()
    assert "released" in rig2.ctl.journal.fault_history[-1][1]


def test_step_test_records_response():
    rig = _tune_rig(31)
    rig.hold(True)
    with pytest.raises(ValueError, match="demand"):
        rig.ctl.start_step_test({"demand": 1.5, "duration_s": 10.0})
    rig.ctl.start_step_test({"demand": 0.4, "duration_s": 10.0})
    for _ in range(200):
        rig.step(1)
        if rig.phase() != S.TUNE:
            break
    st = rig.ctl.step_test_status()
    assert rig.phase() == S.IDLE and st["state"] == "done" and st["trace_len"] >= 9
    assert "trace" not in st  # the host records telemetry; a trace would not fit a frame
    temps = [t for _, t in rig.ctl.step_trace()]
    assert len(temps) == st["trace_len"]
    assert len(temps) >= 9 and temps[-1] < temps[0] - 5.0  # it cooled


def test_trip_is_logged_before_the_session_closes():
    """Valve first (same tick), alarm, then the log: the fault, the alarm and
    the master valve closing are in the session, then the FAULT phase and
    the summary with outcome fault."""
    rig = Rig(seed=32, config=SC.FAST, plant=SC.FAST_PLANT)
    SC.goto(rig, "FREEZE")
    rig.world.set_input("estop", 0)
    rig.step(1)
    assert rig.valves_closed() and rig.ctl.alarms.priority == C.HIGH
    recs = [r for r in rig.log.read_records() if r["type"] in ("event", "summary", "session")]
    assert recs[0]["type"] == "session" and recs[0]["config_hash"] != "0" * 64
    codes = [(r["code"], r["arg"]) for r in recs if r["type"] == "event"]
    i_fault = codes.index((R.EV_FAULT, C.ESTOP))
    i_alarm = codes.index((R.EV_ALARM_ON, C.ESTOP))
    i_master = codes.index((R.EV_MASTER_VALVE, 0))
    i_phase = codes.index((R.EV_PHASE, S.FAULT))
    assert i_fault < i_alarm < i_phase and i_master < i_phase
    assert recs[-1]["type"] == "summary" and recs[-1]["outcome"] == R.OUTCOME_FAULT


def test_session_header_carries_the_hash_of_the_configuration_in_force():
    # The hash is kept from the last change (hashing the whole configuration
    # allocates ~17 kB, too much for the tick that opens the session), so a
    # change through set_param must renew it before the next session.
    from cryo.storage import config as CFG

    rig = Rig(seed=34, config=SC.FAST, plant=SC.FAST_PLANT)
    ctl = rig.ctl
    rig.step(3)
    h0 = ctl.settings.config_hash()
    ctl.set_param("freeze_s", 11.0, "operator")
    ctl.set_param("pid.kd", 0.01, "engineer")
    h1 = ctl.settings.config_hash()
    cfg = dict(ctl.params)
    cfg.update(ctl.settings.extra)
    assert h1 != h0 and h1 == CFG.config_hash(cfg)
    assert SC.goto(rig, "FREEZE")
    head = [r for r in rig.log.read_records() if r["type"] == "session"][-1]
    assert head["config_hash"] == h1.hex() and head["freeze_ds"] == 110
