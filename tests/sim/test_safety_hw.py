"""Single-fault safety hardware on the virtual board, under real MicroPython:
the master valve in series with the solenoid, machine.Timer in virtual and
real time, hard callbacks with the heap locked, and the board layer's
safety timer, e-stop interrupt, reset cause and valve-supply read-back."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "tests" / "core"

WORLD = """
import vboard, machine
from cryo.clock import ManualClock
clk = ManualClock(%d)
w = vboard.install(vboard.World(clock=clk, realtime=False, seed=3))
from cryo.board import Board, BoardError, load_definition
defn = load_definition("/no/such/board.json")
b = Board(defn, clock=clk)

def run(ms, step=10):
    t = 0
    while t < ms:
        clk.advance(step)
        t += step
        w.sync()

class Count:
    # Allocation-free callback state (small ints only): what a hard
    # interrupt handler may touch.
    def __init__(self):
        self.n = 0
        self.t = -1
        self.level = -1
    def timer(self, tm):
        self.n += 1
        self.t = clk.ticks_ms()
    def pin(self, p):
        self.n += 1
        self.level = p.value()
"""


def world(start_ms=0):
    return WORLD % start_ms


# ------------------------------------------------------------- series valves


def test_stuck_solenoid_with_master_closed_delivers_nothing(mpy):
    r = mpy.run(
        world()
        + """
import scenario
scenario.apply(w, {"event": "valve_stuck", "state": "open"}, 0)
r0, s0 = w.plant.reservoir_kg, w.plant.surface_c
run(20000)                      # solenoid stuck open, master pin de-energised
result([w.plant.reservoir_kg == r0, w.plant.surface_c - s0, w.flow_ms, w.uncommanded_ms,
        w.cryogen_path_open(), w.plant.flow, b.master_pin.value()])
"""
    )
    assert r[0] is True, "cryogen left the dewar through a closed master valve"
    assert abs(r[1]) < 0.3, "the tissue cooled although the master valve was closed"
    assert r[2:] == [0, 0, False, 0.0, 0]


def test_stuck_solenoid_with_master_open_flows_uncommanded(mpy):
    r = mpy.run(
        world()
        + """
import scenario
scenario.apply(w, {"event": "valve_stuck", "state": "open"}, 0)
b.master_pin.value(1)
r0, s0 = w.plant.reservoir_kg, w.plant.surface_c
run(20000)                      # solenoid pin de-energised all along
result([r0 - w.plant.reservoir_kg, s0 - w.plant.surface_c, w.flow_ms, w.uncommanded_ms,
        w.cryogen_path_open(), w.valve_is_open()])
"""
    )
    assert r[0] > 0 and r[1] > 5.0, "a stuck solenoid behind an open master must flow"
    assert r[2] == r[3] == 20000, "every ms of it flowed with the solenoid pin de-energised"
    assert r[4:] == [True, False]


def test_master_valve_faults_and_commanded_flow(mpy):
    """master_stuck open: the solenoid alone controls the flow (commanded,
    so nothing uncommanded); master_stuck closed: nothing flows whatever the
    pins say; both valves commanded: flow, none of it uncommanded."""
    r = mpy.run(
        world()
        + """
import scenario
out = []
scenario.apply(w, {"event": "master_stuck", "state": "open"}, 0)
run(1000)
out.append([w.flow_ms, w.cryogen_path_open()])      # solenoid closed: nothing
b.valve_pin.value(1)
run(1000)
out.append([w.flow_ms, w.uncommanded_ms])           # master pin low, stuck open
scenario.apply(w, {"event": "master_stuck", "state": "closed"}, 0)
b.master_pin.value(1)
f = w.flow_ms
run(1000)
out.append([w.flow_ms - f, w.cryogen_path_open()])  # both pins high, master stuck
scenario.apply(w, {"event": "master_stuck", "state": None}, 0)
run(1000)
out.append([w.flow_ms - f, w.uncommanded_ms])
st = w.state()
scenario.apply(w, {"event": "master_stuck", "state": "closed"}, 0)
w2 = vboard.World(clock=clk, realtime=False, seed=3)
w2.restore(w.state())
out.append([st["master_stuck"], w2.master_stuck])
result(out)
"""
    )
    assert r[0] == [0, False]
    assert r[1] == [1000, 0]
    assert r[2] == [0, False]
    assert r[3] == [1000, 0]
    assert r[4] == [None, "closed"]


def test_master_stuck_scenario_events_are_validated():
    import scenario

    doc = {"events": [{"t": 1.0, "event": "master_stuck", "state": "open"}]}
    scenario.validate(doc)
    doc["events"][0]["state"] = "half"
    with pytest.raises(scenario.ScenarioError, match=r"master_stuck\): state must be 'open'"):
        scenario.validate(doc)
    del doc["events"][0]["state"]
    with pytest.raises(scenario.ScenarioError, match="field 'state' is missing"):
        scenario.validate(doc)


def test_valve_duty_through_the_series_path_is_exact(mpy):
    """Edges inside a plant step count to the ms: 30 ms of solenoid in each
    100 ms with the master open is 30 % of the time flowing."""
    r = mpy.run(
        world()
        + """
b.master_pin.value(1)
t = 0
while t < 10000:
    b.valve_pin.value(1 if t % 100 < 30 else 0)
    clk.advance(10)
    t += 10
    w.sync()
result([w.flow_ms, w.uncommanded_ms, w.valve_cycles])
"""
    )
    assert r == [3000, 0, 100]


# ------------------------------------------------------------------- Timer


def test_timer_fires_at_each_boundary_in_virtual_time_without_a_tick(mpy):
    """Time moves (as Rig.skip does for a stalled loop) and nobody calls a
    tick: the periodic timer fires once per boundary, in order, with the
    clock at the boundary; across the 2**30 tick wrap."""
    r = mpy.run(
        world((1 << 30) - 100)
        + """
c = Count()
seen = []
def cb(tm):
    seen.append(clk.diff(clk.ticks_ms(), t0))
t0 = clk.ticks_ms()
tm = machine.Timer(-1, mode=machine.Timer.PERIODIC, period=30, callback=cb)
clk.advance(200)
w.advance_to(clk.ticks_ms())        # one call crosses six boundaries
a = list(seen)
tm.deinit()
clk.advance(200)
w.advance_to(clk.ticks_ms())
one = machine.Timer(id=-1)          # keyword id, then init (as on rp2/esp32)
one.init(mode=machine.Timer.ONE_SHOT, period=50, callback=c.timer)
t1 = clk.ticks_ms()
clk.advance(500)
w.advance_to(clk.ticks_ms())
result([a, len(seen), c.n, clk.diff(c.t, t1), repr(tm)])
"""
    )
    assert r[0] == [30, 60, 90, 120, 150, 180]
    assert r[1] == 6, "a deinit() timer fired"
    assert r[2:4] == [1, 50], "one-shot: once, at its boundary"
    assert r[4] == "Timer(-1, mode=PERIODIC, period=30)"


def test_timer_fires_between_valve_sub_ticks(mpy):
    """World.wait_for_tick (the wait Controller.run spends servicing the
    valve) fires a 25 ms timer at 25, 50, 75 and 100 ms, each with the
    plant already stepped to its boundary."""
    r = mpy.run(
        world()
        + """
from cryo.controller import Controller
ctl = Controller(b, None)
seen = []
def cb(tm):
    seen.append([clk.ticks_ms(), w._t_last == clk.ticks_ms()])
machine.Timer(-1, period=25, callback=cb)
w.wait_for_tick(ctl, clk.add(clk.ticks_ms(), 100))
result(seen)
"""
    )
    assert r == [[25, True], [50, True], [75, True], [100, True]]


def test_hard_callbacks_run_with_the_heap_locked(mpy):
    """A hard timer or pin callback that allocates raises MemoryError, as in
    a hard ISR on a board, and the timer stops; an allocation-free one runs;
    a soft (scheduled) one may allocate."""
    r = mpy.run(
        world()
        + """
c = Count()
out = []
def allocates(x):
    out.append([1, 2, 3])
machine.Timer(-1, period=10, callback=c.timer, hard=True)
bad = machine.Timer(-1, period=10, callback=allocates, hard=True)
clk.advance(10)
try:
    w.advance_to(clk.ticks_ms())
    out.append("no error")
except MemoryError:
    out.append("MemoryError")
armed = [t is bad for t in w.timers if t is not None]
soft = machine.Timer(-1, period=10, callback=allocates)
clk.advance(20)
w.advance_to(clk.ticks_ms())
soft.deinit()
b.footswitch.irq(allocates, machine.Pin.IRQ_FALLING | machine.Pin.IRQ_RISING, hard=True)
try:
    w.set_input("footswitch", 1)
    out.append("no error")
except MemoryError:
    out.append("MemoryError")
b.handpiece.irq(c.pin, machine.Pin.IRQ_FALLING, hard=True)
w.set_input("handpiece", 1)
result([out[0], armed, c.n, len(out), out[-1]])
"""
    )
    assert r[0] == "MemoryError"
    assert r[1] == [False], "the failing timer must stop, the good one keep running"
    # the good hard timer fired at 10, 20, 30 ms; the pin handler once
    assert r[2] == 3 + 1
    assert r[3:] == [4, "MemoryError"]  # MemoryError, two soft appends, MemoryError


def test_timer_arguments_and_table_are_checked(mpy):
    r = mpy.run(
        world()
        + """
out = []
for bad in ((7,), ("a",)):
    try:
        machine.Timer(*bad)
    except ValueError as e:
        out.append(str(e))
t = machine.Timer(-1)
for kw in ({"period": 0, "callback": print}, {"period": 10, "mode": 5, "callback": print}):
    try:
        t.init(**kw)
    except ValueError as e:
        out.append(str(e))
ts = [machine.Timer(-1, period=100, callback=print) for _ in range(4)]
try:
    machine.Timer(-1, period=100, callback=print)
except OSError as e:
    out.append(e.args[1])
ts[0].deinit()
machine.Timer(-1, period=100, callback=print)   # a slot is free again
ts[1].deinit()
h0 = machine.Timer(0, period=100, callback=print)
h1 = machine.Timer(0, period=50, callback=print)  # hardware id 0 again: replaces it
out.append(sum(1 for t in w.timers if t is h0 or t is h1))
result(out)
"""
    )
    assert "Timer(7): no such timer" in r[0] and "-1 (virtual) and 0-3" in r[0]
    assert "Timer('a')" in r[1]
    assert "give period (int ms > 0) or freq" in r[2]
    assert "mode 5; allowed: Timer.PERIODIC (1), Timer.ONE_SHOT (0)" in r[3]
    assert "all 4 timers are armed" in r[4]
    assert r[5] == 1


def test_realtime_timer_fires_while_the_main_loop_hangs(mpy):
    """Real time (`cryo sim`): a thread fires the timer on the wall clock
    while the main thread spins without touching any hardware, hard
    callbacks with the heap locked in that thread only; deinit stops it."""
    r = mpy.run(
        """
import time, machine, micropython, vboard
w = vboard.install(vboard.World(seed=1))            # real time, board clock
class C:
    def __init__(self):
        self.n = 0
    def cb(self, t):
        self.n += 1
c = C()
tm = machine.Timer(-1, period=20, callback=c.cb, hard=True)
t0 = time.ticks_ms()
junk = []
while time.ticks_diff(time.ticks_ms(), t0) < 400:
    junk.append(1)              # a hung loop that even allocates
    junk.pop()
n = c.n
tm.deinit()
time.sleep_ms(100)
result([n, c.n - n])
"""
    )
    # 400 ms / 20 ms = 20 boundaries; a loaded machine may run the thread late.
    assert 10 <= r[0] <= 21, r
    assert r[1] <= 1, "the timer fired after deinit()"
