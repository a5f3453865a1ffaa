"""The command channel against a controller, under real MicroPython.

``FakeController`` (tests/link/link_fakes.py) stands in for the controller
interface of docs/link.md; the channel, parser and framing are the real
firmware code.
"""

import pytest

PRELUDE = """
from cryo.clock import ManualClock
from cryo.link.channel import CommandChannel
from cryo.link.framing import encode, decode
from link_fakes import FakeController, ScriptStream, SinkStream
clock = ManualClock((1 << 30) - 500)   # crosses the tick wrap
ctl = FakeController(clock)
sin = ScriptStream()
sout = SinkStream()
ch = CommandChannel(ctl, sin, sout)
def send(**obj):
    sin.feed(encode(obj))
def pump(n=50, step=1):
    for _ in range(n):
        ch.poll()
        clock.advance(step)
def replies():
    return [decode(ln, None, 2048) for ln in sout.lines()]
"""


def test_every_command_answers_with_its_id(run_link):
    res = run_link(
        PRELUDE
        + """
send(id=1, cmd="hello")
send(id=2, cmd="status")
send(id=3, cmd="get", name="pid.kp")
send(id=4, cmd="set", name="pid.kp", value=0.25, role="engineer")
send(id=5, cmd="save", role="engineer")
send(id=6, cmd="autotune", action="start", role="engineer", setpoint_c=-30)
send(id=7, cmd="autotune", action="status")
send(id=8, cmd="step", action="start", role="engineer", demand=0.4, duration_s=20)
send(id=9, cmd="step", action="stop", role="engineer")
send(id=10, cmd="ack", role="operator")
send(id=11, cmd="service", role="service")
send(id=12, cmd="stats")
pump(400)
r = replies()
result([r, ctl.config["pid.kp"], ctl.audit, ctl.service])
"""
    )
    replies, kp, audit, service = res
    assert [r["id"] for r in replies] == list(range(1, 13))
    assert all(r["ok"] for r in replies), replies
    by = {r["id"]: r for r in replies}
    assert by[1]["proto"] == 1 and by[1]["max_line"] == 512
    assert by[2]["status"]["phase"] == "IDLE"
    assert by[3]["value"] == 0.08
    assert by[4]["value"] == 0.25 and kp == 0.25
    assert audit == [["pid.kp", 0.08, 0.25, "engineer"]]
    assert by[6]["state"]["state"] == "running" and by[6]["state"]["params"] == {"setpoint_c": -30}
    assert by[9]["state"] == {"state": "aborted", "reason": "host request"}
    assert service is True
    assert by[12]["stats"]["frames"] == 11


def test_rejected_input_changes_nothing_but_the_counter(run_link):
    res = run_link(
        PRELUDE
        + """
before = dict(ctl.config)
send(id=1, cmd="set", name="pid.kp", value=99, role="engineer")      # E_INVALID
send(id=2, cmd="set", name="pid.kp", value=0.5, role="operator")     # E_DENIED
send(id=3, cmd="autotune", action="start", role="operator")          # E_DENIED
send(id=4, cmd="autotune", action="fly", role="engineer")            # E_ARGS
send(id=5, cmd="telemetry", rate_hz=500)                             # E_INVALID
send(id=6, cmd="warp")                                               # E_UNKNOWN
sin.feed(b"garbage\\n")                                               # E_FRAME
sin.feed(b'{"v":1,"id":7,"cmd":"status"}*00000000\\n')               # E_CRC
sin.feed(b"A" * 2000 + b"\\n")                                       # E_TOO_LONG (one reply)
send(id=8, cmd="status")                                             # still works
ctl.phase = "FREEZE"
send(id=9, cmd="service", role="service")                            # E_STATE
pump(600)
r = replies()
result([[(x.get("id"), x["ok"], x.get("err")) for x in r], ch.stats(), ctl.config == before,
        ctl.audit, ctl.service, ch.telemetry_period_ms, [x.get("msg") for x in r]])
"""
    )
    replies, stats, unchanged, audit, service, tel, msgs = res
    assert replies == [
        [1, False, "E_INVALID"],
        [2, False, "E_DENIED"],
        [3, False, "E_DENIED"],
        [4, False, "E_ARGS"],
        [5, False, "E_INVALID"],
        [6, False, "E_UNKNOWN"],
        [None, False, "E_FRAME"],
        [None, False, "E_CRC"],
        [None, False, "E_TOO_LONG"],
        [8, True, None],
        [9, False, "E_STATE"],
    ]
    assert stats["errors"] == {
        "E_INVALID": 2,
        "E_DENIED": 2,
        "E_ARGS": 1,
        "E_UNKNOWN": 1,
        "E_FRAME": 1,
        "E_CRC": 1,
        "E_TOO_LONG": 1,
        "E_STATE": 1,
    }
    assert stats["frames"] == 1 and stats["internal"] == 0
    assert unchanged and audit == [] and service is False and tel == 0
    assert "0.0..10.0" in msgs[0] or "10.0" in msgs[0]
    assert "allowed: start, stop, status" in msgs[3]
    assert "0 (off) or 0.2..50" in msgs[4]


def test_controller_exception_is_contained(run_link):
    res = run_link(
        PRELUDE
        + """
def boom():
    raise KeyError("sensor table")
ctl.status = boom
send(id=1, cmd="status")
send(id=2, cmd="telemetry", rate_hz=10)
pump(300)
r = replies()
result([[(x.get("id"), x.get("err")) for x in r], ch.internal])
"""
    )
    replies, internal = res
    assert replies[0] == [1, "E_INTERNAL"]
    assert replies[1] == [2, None]
    assert internal >= 2  # the reply and every telemetry attempt


def test_missing_controller_feature_is_unsupported(run_link):
    res = run_link(
        PRELUDE
        + """
class Bare:
    clock = clock
    def status(self):
        return {"phase": "IDLE"}
ch = CommandChannel(Bare(), sin, sout)
send(id=1, cmd="autotune", action="status")
send(id=2, cmd="ack", role="operator")
pump(100)
result([(x["id"], x["err"], x["msg"]) for x in replies()])
"""
    )
    assert res == [
        [1, "E_UNSUPPORTED", "this controller does not offer autotune_status"],
        [2, "E_UNSUPPORTED", "this controller does not offer ack_fault"],
    ]


@pytest.mark.parametrize("rate, expect", [(10, 100), (5, 50), (50, 500), (0.5, 5)])
def test_telemetry_arrives_at_the_requested_rate(run_link, rate, expect):
    res = run_link(
        PRELUDE
        + """
send(id=1, cmd="telemetry", rate_hz=%r)
pump(3)
sout.lines()
t0 = clock.ticks_ms()
pump(10000, 1)        # 10 s of virtual time, polled every ms
tel = [decode(x, None, 2048) for x in sout.lines()]
result([len(tel), [clock.diff(b["t_ms"], a["t_ms"]) for a, b in zip(tel, tel[1:])][:5],
        sorted(tel[0].keys())])
"""
        % rate
    )
    n, gaps, keys = res
    assert abs(n - expect) <= 1
    assert set(gaps) == {int(1000 / rate)}
    assert {"tel", "t_ms", "phase", "temps", "p", "i", "d", "valve", "demand"} <= set(keys)


def test_slow_host_drops_frames_never_blocks(run_link):
    res = run_link(
        PRELUDE
        + """
sout.limit = 0
class Stalled:
    def write(self, mv):
        return 0
ch._out = Stalled()
send(id=1, cmd="telemetry", rate_hz=50)
pump(5000)        # 5 s: 250 telemetry frames, output never drains
dropped = ch.tx_dropped
ch._out = sout
sout.limit = 0
pump(50)
r = [decode(x, None, 2048) for x in sout.lines()]
result([dropped, len(r), r[0].get("id")])
"""
    )
    dropped, delivered, first_id = res
    assert dropped > 200  # the ring (2 KB) holds only a few frames
    assert first_id == 1  # the reply was queued before the ring filled
    assert delivered >= 3


def test_idle_poll_allocates_nothing(run_link):
    res = run_link(
        PRELUDE
        + """
pump(5)
result([assert_no_alloc(ch.poll, 200), ch.poll()])
"""
    )
    assert res == [True, False]


def test_a_failing_stream_never_raises_into_the_loop(run_link):
    res = run_link(
        PRELUDE
        + """
class Broken:
    def readinto(self, buf):
        raise ValueError("driver bug")
    def write(self, mv):
        raise ValueError("driver bug")
ch = CommandChannel(ctl, Broken(), Broken())
out = [ch.poll() for _ in range(3)]
ch2 = CommandChannel(ctl, sin, Broken())
send(id=1, cmd="status")
out2 = [ch2.poll() for _ in range(3)]
result([out, ch.internal, ch2.internal])
"""
    )
    assert res == [[False, False, False], 3, 3]  # the queued reply is retried each poll


def test_parameters_keep_float32_precision_telemetry_is_compact(run_link):
    res = run_link(
        PRELUDE
        + """
ctl.config["pid.ki"] = 0.000123456789
ctl.demand = 0.123456789
send(id=1, cmd="get", name="pid.ki")
send(id=2, cmd="status")
pump(100)
r = replies()
result([r[0]["value"], r[1]["status"]["demand"]])
"""
    )
    assert res == [0.0001234568, 0.123]
