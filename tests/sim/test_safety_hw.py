"""Single-fault safety hardware on the virtual board, under real MicroPython:
the master valve in series with the solenoid, machine.Timer in virtual and
real time, hard callbacks with the heap locked, and the board layer's
safety timer, e-stop interrupt, reset cause and valve-supply read-back."""

import json
import re
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


# ------------------------------------------------------------- board layer


def test_board_safety_timer_closes_the_valves_of_a_hung_loop(mpy):
    """The point of the timer: the controller's safety callback, armed
    through Board.start_safety_timer as Controller.run arms it, closes both
    valves when the loop stops ticking (virtual time passes, no tick), with
    the heap locked (a hard timer on the sim board)."""
    r = mpy.run(
        """
from core_rig import Rig
import core_scenarios as SC
rig = Rig(seed=3, config=SC.FAST, plant=SC.FAST_PLANT)
w = rig.world
ok = SC.goto(rig, "PRECOOL")    # pre-cool: both valves open
t = rig.board.start_safety_timer(rig.period, rig.ctl.safety_isr)
open_before = [rig.board.valve_pin.value(), rig.board.master_pin.value()]
f0 = w.flow_ms
rig.skip(2000)                  # the loop hangs for 2 s
result([ok, open_before, rig.valves_closed(), w.flow_ms - f0,
        w.cryogen_path_open(), rig.ctl.il.heartbeat_check(rig.now), repr(t)])
""",
        extra_path=[CORE],
    )
    assert r[0] is True and r[1] == [1, 1], r
    assert r[2] is True and r[4] is False, "the safety timer did not close the valves"
    # heartbeat 500 ms + one timer period of 100 ms at most
    assert r[3] <= 600, "cryogen flowed %d ms into the hang" % r[3]
    assert r[5] is True
    assert r[6] == "Timer(-1, mode=PERIODIC, period=100)"


def test_board_start_safety_timer(mpy):
    r = mpy.run(
        world()
        + """
c = Count()
t = b.start_safety_timer(50, c.timer)
run(500)
n = c.n
t2 = b.start_safety_timer(100, c.timer)      # replaces the first
armed = sum(1 for x in w.timers if x is not None)
run(500)
n2 = c.n - n
t2.deinit()
run(500)
errs = []
for args in ((0, c.timer), (True, c.timer), (50, 7)):
    try:
        b.start_safety_timer(*args)
    except (ValueError, TypeError) as e:
        errs.append(str(e))
d = dict(defn)
del d["safety_timer"]
try:
    Board(d, clock=clk).start_safety_timer(50, c.timer)
except BoardError as e:
    errs.append(str(e))
result([n, armed, n2, c.n - n - n2, b.safety_timer is t2, t2._hard, errs])
"""
    )
    assert r[:6] == [10, 1, 5, 0, True, True]
    errs = r[6]
    assert "period_ms must be an int number of ms >= 1, got 0" in errs[0]
    assert "got True" in errs[1]
    assert "callback must be callable, got 7" in errs[2]
    assert "has no 'safety_timer'" in errs[3] and '"id": -1' in errs[3]


def test_watch_estop_catches_a_40_ms_opening_between_ticks(mpy):
    """Ticks every 100 ms read the e-stop; the loop opens at 130 ms and
    closes at 170 ms. Polling at 100 and 200 ms sees it closed both times;
    the interrupt (hard, the handler allocation-free) recorded it, once,
    on the opening edge — not on the closing one."""
    r = mpy.run(
        world()
        + """
import scenario
c = Count()
b.watch_estop(c.pin)
w.scenario = scenario.Scenario({"events": [
    {"t": 0.13, "event": "estop", "pressed": True},
    {"t": 0.17, "event": "estop", "pressed": False}]}, 0, clk)
polled = []
i = 0
while i < 3:
    clk.advance(100)
    w.advance_to(clk.ticks_ms())
    polled.append(b.estop.value())
    i += 1
w.set_input("estop", 0)         # a second opening: a second call
opened = c.n
w.set_input("estop", 1)         # closing: none
b.watch_estop(None)
w.set_input("estop", 0)         # disarmed
result([polled, c.level, opened, c.n, w.irqs.get(b.estop._id)])
"""
    )
    assert r[0] == [1, 1, 1], "the ticks alone would have missed the opening"
    assert r[1] == 0, "the handler ran on the opening edge (pin reads 0 = loop open)"
    assert r[2:4] == [2, 2]
    assert r[4] is None


def test_watch_estop_follows_an_inverted_loop(mpy):
    """A loop wired with a pull-up (closed = 0): the opening edge is rising."""
    d = json.loads((ROOT / "boards" / "sim" / "board.json").read_text())
    d["inputs"]["estop"].update(pull="up", invert=True, irq_hard=False)
    r = mpy.run(
        """
import json, vboard, machine
from cryo.clock import ManualClock
from cryo.board import Board
d = json.loads(%r)
clk = ManualClock(0)
w = vboard.install(vboard.World(board=d, clock=clk, realtime=False))
b = Board(d, clock=clk)
seen = []
b.watch_estop(lambda p: seen.append(p.value()))   # soft: may allocate
w.set_input("estop", 0)
w.set_input("estop", 1)
result([b.active_level("estop"), seen, w.irqs[b.estop._id][1] == machine.Pin.IRQ_RISING,
        w.irqs[b.estop._id][3]])
"""
        % json.dumps(d)
    )
    assert r == [0, [1], True, False]


def test_reset_cause_names(mpy):
    r = mpy.run(
        world()
        + """
out = []
for cause in (None, "power", "wdt", "reset", "soft", "raw", "deepsleep"):
    w.reset_cause = cause
    out.append(b.reset_cause())
w.reset_cause = "reset"
del machine.HARD_RESET          # a port without the constant (rp2 has none)
out.append(b.reset_cause())
result(out)
"""
    )
    assert r == ["power", "power", "wdt", "hard", "soft", "soft", "deepsleep", "unknown"]


def test_valve_supply_read_back_follows_the_estop_loop(mpy):
    r = mpy.run(
        world()
        + """
act = b.active_level("valve_supply")
out = [act, b.valve_supply.value()]
w.set_input("estop", 0)
out.append(b.valve_supply.value())
w.set_input("estop", 1)
out.append(b.valve_supply.value())
st = w.state()
st["inputs"] = {"estop": 0}     # saved before the read-back existed
w.restore(st)
out.append(b.valve_supply.value())
w.set_input("estop", 1)
d = dict(defn)
d["inputs"] = dict(defn["inputs"])
del d["inputs"]["valve_supply"]
b2 = Board(d, clock=clk)
out.append(b2.valve_supply)
try:
    b2.active_level("valve_supply")
except BoardError as e:
    out.append(str(e))
result(out)
"""
    )
    assert r[:6] == [1, 1, 0, 1, 0, None]
    assert "no input 'valve_supply'; inputs: estop" in r[6]


BAD_DEFINITIONS = [
    ("safety_timer", {"id": True}, "safety_timer.id must be a machine.Timer id"),
    ("safety_timer", {"id": -2}, "got -2"),
    ("safety_timer", {"id": -1, "hard": "yes"}, "safety_timer.hard must be true"),
    ("safety_timer", {"id": -1, "period": 5}, "safety_timer.period unknown; allowed: id, hard"),
    ("safety_timer", [-1], "safety_timer must be an object"),
    ("inputs.estop.irq_hard", 1, "inputs.estop.irq_hard must be true"),
    ("inputs.valve_supply.pull", "sideways", "inputs.valve_supply.pull must be 'up', 'down'"),
    ("inputs.valve_supply", {"pull": "down"}, "inputs.valve_supply needs a 'pin' field"),
    ("inputs.valve_supply.invert", "no", "inputs.valve_supply.invert must be true or false"),
    ("inputs.door", {"pin": 30}, "input 'door' unknown; allowed: estop, footswitch, handpiece"),
]


@pytest.mark.parametrize("path, value, expected", BAD_DEFINITIONS)
def test_board_definition_safety_fields_are_validated(path, value, expected):
    from cryo.board import BoardError, validate

    d = json.loads((ROOT / "boards" / "sim" / "board.json").read_text())
    node = d
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    with pytest.raises(BoardError, match=re.escape(expected)):
        validate(d)


def test_reset_cause_names_map_port_constants_by_name():
    """One mapping from a port's reset-cause constants to the names the
    safety state records (records.RESET_NAMES)."""
    import types

    from cryo.board import reset_cause_name
    from cryo.storage import device_records as D

    # Two ports with different numbers for the same causes.
    a = types.SimpleNamespace(PWRON_RESET=1, HARD_RESET=2, WDT_RESET=3, SOFT_RESET=5)
    b = types.SimpleNamespace(PWRON_RESET=0, WDT_RESET=1, SOFT_RESET=2, DEEPSLEEP_RESET=4)
    assert [reset_cause_name(c, a) for c in (1, 2, 3, 5, 9)] == [
        "power",
        "hard",
        "wdt",
        "soft",
        "unknown",
    ]
    assert [reset_cause_name(c, b) for c in (0, 1, 2, 4)] == ["power", "wdt", "soft", "deepsleep"]
    assert D.RESET_NAMES[D.RESET_WDT] == "wdt" and len(D.RESET_NAMES) == 6
    # Every name the board can give has a code in the safety state.
    for name in ("power", "hard", "wdt", "soft", "deepsleep", "unknown"):
        assert name in D.RESET_NAMES
