"""cryo.link.tuning.TuningRunner: the experiments a controller embeds (MicroPython)."""


def test_step_test_runs_for_its_duration_across_the_tick_wrap(run_link):
    r = run_link(
        """
from cryo.clock import ManualClock
from cryo.link.tuning import TuningRunner
from cryo.link.errors import NotNow
c = ManualClock((1 << 30) - 1500)
t = TuningRunner(c)
t.start_step_test({"demand": 0.4, "duration_s": 3})
busy = None
try:
    t.start_autotune({})
except NotNow as e:
    busy = str(e)
ds = []
for _ in range(40):
    ds.append(t.demand(c.ticks_ms(), 20.0))
    c.advance(100)
result([ds.count(0.4), ds[-1], t.step_test_status(), t.active, busy])
"""
    )
    n, last, st, active, busy = r
    assert n == 30 and last == 0.0  # 3 s of 100 ms ticks, then nothing
    assert st == {"state": "done", "demand": 0.4} and active is False
    assert busy == "a step is already running; stop it first"


def test_bad_parameters_and_floor_abort(run_link):
    r = run_link(
        """
from cryo.clock import ManualClock
from cryo.link.tuning import TuningRunner
c = ManualClock()
t = TuningRunner(c, floor_c=-60.0)
errs = []
for p in ({"demand": 0}, {"demand": 1.5}, {"duration_s": 0}, {"duration_s": 10000}):
    try:
        t.start_step_test(p)
    except ValueError as e:
        errs.append(str(e))
t.start_step_test({"demand": 1.0, "duration_s": 60})
d1 = t.demand(c.ticks_ms(), 10.0)
d2 = t.demand(c.ticks_ms(), -70.0)      # below the floor
st = t.step_test_status()
try:
    t.start_autotune({"setpoint_c": -30, "hysteresis_c": 50})
    at = "started"
except ValueError as e:
    at = str(e)
result([errs, d1, d2, st, at, t.active])
"""
    )
    errs, d1, d2, st, at, active = r
    assert len(errs) == 4 and "0 < demand <= 1" in errs[0] and "1..600 s" in errs[2]
    assert d1 == 1.0 and d2 == 0.0
    assert st == {"state": "aborted", "reason": "floor: -70.0 C"}
    assert "hysteresis_c" in at and active is False


def test_channel_finds_the_runner_on_the_controller(run_link):
    r = run_link(
        """
from cryo.clock import ManualClock
from cryo.link.channel import CommandChannel
from cryo.link.framing import encode, decode
from cryo.link.tuning import TuningRunner
from link_fakes import ScriptStream, SinkStream
c = ManualClock()
class Ctl:
    clock = c
    def __init__(self):
        self.tuning = TuningRunner(c)
    def status(self):
        return {}
ctl = Ctl()
sin = ScriptStream()
sout = SinkStream()
ch = CommandChannel(ctl, sin, sout)
sin.feed(encode({"id": 1, "cmd": "autotune", "action": "start", "role": "engineer", "setpoint_c": -25}))
sin.feed(encode({"id": 2, "cmd": "autotune", "action": "stop", "role": "engineer"}))
sin.feed(encode({"id": 3, "cmd": "step", "action": "status"}))
for _ in range(20):
    ch.poll()
result([decode(x, None, 2048) for x in sout.lines()])
"""
    )
    assert r[0]["state"] == {"state": "running", "setpoint_c": -25, "cycles": 0}
    assert r[1]["state"]["state"] == "aborted" and r[1]["state"]["reason"] == "host request"
    assert r[2]["state"] == {"state": "idle"}
