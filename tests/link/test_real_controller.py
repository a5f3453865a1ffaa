"""The channel against the real controller on the virtual board (MicroPython).

The controller, interlock, valves, drivers, emulated chips and plant are the
real firmware/sim code (tests/link/link_rigs.py builds them in virtual time);
the channel is polled once after every tick, as ``Controller._loop`` does.

* 6 000 fuzz inputs during a running treatment: the valve output tick by
  tick is identical to the same treatment without any input, no fault, no
  parameter changed, every input answered and counted.
* A flood of input: no overrun, no heartbeat fault, identical valve output.
* Telemetry arrives at the requested rate in device time.

``save_config`` is replaced by a recorder in these tests so the fuzzer never
writes a configuration file (on the unix port "/config.json" is the host's
root directory).
"""

import pytest

PRELUDE = """
import gc, random
gc.threshold(200000)
from link_rigs import RealRig
from cryo.link.channel import CommandChannel
from cryo.link.framing import encode
from link_fakes import ScriptStream, CheckingSink
import link_fuzz as fuzzgen

def make(seed):
    r = RealRig(seed=seed)
    saves = []
    r.ctl.save_config = lambda role: saves.append(role)
    sin = ScriptStream()
    sink = CheckingSink()
    ch = CommandChannel(r.ctl, sin, sink)
    return r, sin, sink, ch, saves
"""


def test_fuzz_during_treatment_leaves_the_valve_untouched(run_link):
    r = run_link(
        PRELUDE
        + """
REFUSED = (
    # (a leading newline ends any truncated fuzz line first)
    b"\\n" + encode({"id": 1, "cmd": "set", "name": "valve.window_ms", "value": 300, "role": "engineer"}),
    b"\\n" + encode({"id": 2, "cmd": "service", "role": "service"}),
    b"\\n" + encode({"id": 3, "cmd": "set", "name": "target_c", "value": -20, "role": "service"}),
)

def run(fuzz):
    random.seed(4242)
    r, sin, sink, ch, saves = make(5)
    r.start_treatment()
    before = (dict(r.ctl.params), dict(r.ctl.settings.extra))
    lines = [0]
    a_ticks = r.valve_trace
    def feed():
        if not fuzz:
            return
        for j in range(10):
            # every 10th tick also valid requests that must be refused mid-treatment
            data = fuzzgen.one() if j or len(a_ticks) % 10 else REFUSED[len(a_ticks) % 3]
            lines[0] += data.count(b"\\n")
            sin.feed(data)
        while sin.pos < len(sin.data) or ch.rx_pending:
            ch.poll()
    r.loop(60000, ch if fuzz else None, feed, False)
    return r, sink, ch, before, lines[0]

a, sink, ch, before, lines = run(True)
b = run(False)[0]
st = a.ctl.status()
result({"same_valve": a.valve_trace == b.valve_trace, "open_ticks": sum(a.valve_trace),
        "ticks": len(a.valve_trace), "phase": [st["phase"], b.ctl.status()["phase"]],
        "faults": a.ctl.journal.fault_history, "unchanged": before == (a.ctl.params, a.ctl.settings.extra),
        "stats": ch.stats(), "replies": sink.replies, "errors": sink.errors, "bad": sink.bad,
        "lines": lines, "service": a.ctl.service_requested})
"""
    )
    assert r["same_valve"] and r["open_ticks"] > 100 and r["ticks"] == 603
    assert r["phase"][0] == r["phase"][1]
    assert r["faults"] == [] and r["unchanged"] and r["service"] is False
    st = r["stats"]
    assert r["bad"] == 0 and st["internal"] == 0
    assert r["errors"] == sum(st["errors"].values()) > 5_000
    assert r["replies"] - r["errors"] == st["frames"]
    assert st["errors"]["E_STATE"] >= 60  # the valid set/service requests, all refused


def test_flood_does_not_delay_the_real_control_tick(run_link):
    r = run_link(
        PRELUDE
        + """
def run(flood):
    random.seed(5)
    r, sin, sink, ch, saves = make(6)
    if flood:
        ch = CommandChannel(r.ctl, fuzzgen.Flood(3), sink)
        ch._in.k = 0
    r.start_treatment()
    r.loop(30000, ch if flood else None)
    return r, ch, sink

a, ch, sink = run(True)
b = run(False)[0]
result({"overruns": a.ctl.ticker.overruns, "faults": a.ctl.journal.fault_history, "late": a.max_late_ms,
        "same_valve": a.valve_trace == b.valve_trace, "ticks": len(a.valve_trace),
        "phase": a.ctl.status()["phase"], "stats": ch.stats(), "bad": sink.bad})
"""
    )
    assert r["overruns"] == 0 and r["faults"] == []
    assert r["late"] < 100, r["late"]  # never a period late (figure: bench_link)
    assert r["same_valve"] and r["ticks"] == 303  # 3 start-up ticks + 30 s
    assert r["stats"]["rx_bytes"] > 12_000 and r["stats"]["frames"] > 75
    assert r["bad"] == 0


def test_telemetry_rate_with_the_real_controller(run_link):
    r = run_link(
        PRELUDE
        + """
out = {}
for rate in (2, 5, 10):
    rr, sin, sink, ch, saves = make(1)
    sin.feed(encode({"id": 1, "cmd": "telemetry", "rate_hz": rate}))
    rr.loop(300, ch)
    n0 = sink.telemetry
    rr.loop(20000, ch)
    out[str(rate)] = [sink.telemetry - n0, sorted(sink.last.keys())]
result(out)
"""
    )
    for rate in (2, 5, 10):
        n, keys = r[str(rate)]
        assert abs(n - 20 * rate) <= 1, (rate, n)
    assert {
        "t_ms",
        "phase",
        "temps",
        "cj_c",
        "setpoint_c",
        "demand",
        "valve",
        "p",
        "i",
        "d",
        "faults",
        "alarms",
        "overruns",
    } <= set(keys)


def test_autotune_through_the_channel_on_the_real_controller(run_link):
    # Hold-to-run (handpiece + footswitch), TUNE phase, RelayAutotune in
    # the controller's tick with the valve sub-ticks (RealRig.service_until); the factory
    # 200 ms valve window (the 1000 ms window did not converge on seed 2).
    r = run_link(
        PRELUDE
        + """
from cryo.link.framing import decode
r = RealRig(seed=1)
sin = ScriptStream()
out = []
class Sink:
    def write(self, mv):
        out.append(bytes(mv))
        return len(mv)
ch = CommandChannel(r.ctl, sin, Sink())
def ask(obj):
    sin.feed(encode(obj))
    r.loop(300, ch, None, False)
    return decode(b"".join(out).split(b"\\n")[-2], None, 2048)
r.loop(1000, ch)
refused = ask({"id": 1, "cmd": "autotune", "action": "start", "role": "engineer"})
r.hold_for_tuning()
r.loop(300, ch)
started = ask({"id": 2, "cmd": "autotune", "action": "start", "role": "engineer", "setpoint_c": -30})
polls = 0
while True:
    r.loop(10000, ch, None, False)
    st = ask({"id": 3, "cmd": "autotune", "action": "status"})["state"]
    polls += 1
    if st["state"] != "running" or polls > 60:
        break
res = st["result"]
applied = [ask({"id": 4, "cmd": "set", "name": "pid." + k, "value": res[k], "role": "engineer"})
           for k in ("kp", "ki", "kd")]
result({"refused": refused, "started": started["state"], "final": st, "applied": applied,
        "pid": [r.ctl.regulator.pid.kp, r.ctl.regulator.pid.ki, r.ctl.regulator.pid.kd], "faults": r.ctl.journal.fault_history})
"""
    )
    assert r["refused"]["err"] == "E_STATE" and "hold-to-run" in r["refused"]["msg"]
    assert r["started"]["state"] == "running" and r["started"]["phase"] == "TUNE"
    assert r["final"]["state"] == "done"
    res = r["final"]["result"]
    assert r["final"]["phase"] == "IDLE" and res["ok"], r["final"]
    assert set(res["gains"]) == {"zn", "no_overshoot", "tyreus_luyben", "simc"}
    assert 0 < res["kp"] < 1 and 0 < res["ki"] < 1 and res["fopdt"]["tau"] > 1
    assert [a["value"] for a in r["applied"]] == [res["kp"], res["ki"], res["kd"]]
    assert r["pid"] == pytest.approx([res["kp"], res["ki"], res["kd"]], abs=1e-3)
    assert r["faults"] == []


def test_autotune_converges_from_any_start_time_on_the_real_chips(run_link):
    # The engineer starts the autotune whenever; the noise and the MAX31855's
    # quantisation (~0.28 degC at -35 degC, a third of the half swing) then
    # fall differently on every cycle. From 8 start times on the default
    # plant it must converge every time and propose a consistent Ku (the
    # max-min rule over 3 cycles failed twice in 20 and scattered Ku 2x).
    r = run_link(
        PRELUDE
        + """
out = []
for idle in range(0, 72, 9):
    rig = RealRig(seed=1)
    ctl = rig.ctl
    c = rig.clock
    rig.loop(500)
    rig.hold_for_tuning()
    rig.loop(100 * idle + 100)
    ctl.start_autotune({"setpoint_c": -35.0})
    n = 0
    while ctl.tuning._tuner is not None and n < 20:
        rig.loop(60000, None, None, False)
        n += 1
    st = ctl.autotune_status()
    res = st["result"] or {}
    out.append([st["state"], res.get("Ku"), res.get("cycles"), res.get("reason")])
result(out)
"""
    )
    assert [s for s, *_ in r] == ["done"] * 8, r
    kus = sorted(ku for _, ku, _, _ in r)
    median = 0.5 * (kus[3] + kus[4])
    assert all(abs(ku - median) <= 0.3 * median for ku in kus), kus
    assert max(c for *_, c, _ in r) <= 14, r
