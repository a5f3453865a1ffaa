"""Valve drivers under real MicroPython: fail-safe, dead-man, minimum times, no allocation."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pins import RecordingPin

from cryo.actuation.valve import SolenoidValve
from cryo.clock import TICKS_PERIOD, ManualClock

CTL_LIB = Path(__file__).resolve().parent / "ctl_lib"  # on sys.path via conftest.py


def run(mpy, code):
    return mpy.run(code, extra_path=[CTL_LIB])


def test_closed_at_construction_and_without_permit(mpy):
    r = run(
        mpy,
        """
from cryo.clock import ManualClock
from cryo.actuation.valve import SolenoidValve, MasterValve, ProportionalValve
from pins import RecordingPin, RecordingPWM
c = ManualClock()
p = RecordingPin(1)  # energised before the driver exists
v = SolenoidValve(p, c)
first = p.level
v.request(1.0)
v.refresh(c.ticks_ms())
opened = 0
k = 0
while k < 100:
    c.advance(10)
    v.refresh(c.ticks_ms())
    opened += v.service(c.ticks_ms())
    k += 1
mp = RecordingPin(1)
m = MasterValve(mp)
pw = RecordingPWM(65535)
pv = ProportionalValve(pw, c)
result([first, opened, p.level, v.permit, mp.level, m.is_open, pw.duty])
""",
    )
    assert r == [0, 0, 0, False, 0, False, 0]


def test_dead_man_closes_after_max_open_across_wrap(mpy):
    r = run(
        mpy,
        """
from cryo.clock import ManualClock
from cryo.actuation.valve import SolenoidValve
from pins import RecordingPin
c = ManualClock((1 << 30) - 1000)   # the dead-man deadline lies past the wrap
p = RecordingPin()
v = SolenoidValve(p, c, window_ms=250, min_on_ms=30, min_off_ms=30, max_open_ms=3000)
v.permit = True
v.request(1.0)
t0 = c.ticks_ms()
v.refresh(t0)
closed_at = None
k = 0
while k < 500:
    now = c.ticks_ms()
    v.service(now)
    if closed_at is None and k > 0 and not p.level:
        closed_at = c.diff(now, t0)
    c.advance(10)
    k += 1
still = p.level
v.refresh(c.ticks_ms())
v.service(c.ticks_ms())
result([closed_at, still, v.expired, p.level, v.cycles])
""",
    )
    closed_at, still, expired, reopened, cycles = r
    assert closed_at == 3000  # exactly max_open_ms after the last refresh
    assert still == 0 and expired == 1
    assert reopened == 1 and cycles == 2  # a new refresh re-arms it


def test_refreshed_full_demand_stays_open_without_cycling(mpy):
    r = run(
        mpy,
        """
from cryo.clock import ManualClock
from cryo.actuation.valve import SolenoidValve
from pins import RecordingPin
c = ManualClock((1 << 30) - 5000)
p = RecordingPin()
v = SolenoidValve(p, c, window_ms=250, min_on_ms=30, min_off_ms=30, max_open_ms=500)
v.permit = True
v.request(1.0)
k = 0
closed_ticks = 0
while k < 1000:
    now = c.ticks_ms()
    v.refresh(now)
    v.service(now)
    closed_ticks += 1 - p.level
    c.advance(10)
    k += 1
result([v.cycles, closed_ticks, v.open_ms])
""",
    )
    assert r[0] == 1 and r[1] == 0 and r[2] == 9990


def test_time_proportioning_average_and_small_demands(mpy):
    r = run(
        mpy,
        """
from cryo.clock import ManualClock
from cryo.actuation.valve import SolenoidValve
from pins import RecordingPin
def duty(demand, ms=20000):
    c = ManualClock((1 << 30) - 7000)
    p = RecordingPin()
    v = SolenoidValve(p, c, window_ms=250, min_on_ms=30, min_off_ms=30, max_open_ms=500)
    v.permit = True
    v.request(demand)
    k = 0
    while k < ms // 10:
        now = c.ticks_ms()
        v.refresh(now)
        v.service(now)
        c.advance(10)
        k += 1
    return [v.open_ms / ms, v.cycles]
result([duty(0.0), duty(0.02), duty(0.3), duty(0.56), duty(0.97), duty(1.0)])
""",
    )
    (d0, c0), (d2, c2), (d30, c30), (d56, c56), (d97, c97), (d100, c100) = r
    assert d0 == 0.0 and c0 == 0  # zero demand never opens
    assert d2 == pytest.approx(0.02, abs=0.006) and c2 > 0  # via the carry
    assert d30 == pytest.approx(0.30, abs=0.02)
    assert d56 == pytest.approx(0.56, abs=0.02)
    assert d97 == pytest.approx(0.97, abs=0.02)
    assert d100 >= 0.999 and c100 == 1  # open from the first service on


def test_force_closed_is_immediate_and_needs_new_refresh(mpy):
    r = run(
        mpy,
        """
from cryo.clock import ManualClock
from cryo.actuation.valve import SolenoidValve
from pins import RecordingPin
c = ManualClock()
p = RecordingPin()
v = SolenoidValve(p, c, window_ms=250, min_on_ms=100, min_off_ms=30, max_open_ms=3000)
v.permit = True
v.request(1.0)
v.refresh(c.ticks_ms())
v.service(c.ticks_ms())
was = p.level
c.advance(10)
v.force_closed()          # inside the minimum on-time: safety wins
after = p.level
c.advance(10)
v.service(c.ticks_ms())   # no refresh since: stays closed
stays = p.level
v.refresh(c.ticks_ms())
c.advance(10)
v.service(c.ticks_ms())
c.advance(10)
v.permit = False          # interlock withdraws the permit
v.service(c.ticks_ms())
result([was, after, stays, v.is_open, p.level])
""",
    )
    assert r == [1, 0, 0, False, 0]


def test_safety_path_allocates_nothing(mpy):
    r = run(
        mpy,
        """
from cryo.clock import ManualClock
from cryo.actuation.valve import SolenoidValve, MasterValve, ProportionalValve
from pins import RecordingPin, RecordingPWM
c = ManualClock((1 << 30) - 20000)
p = RecordingPin()
v = SolenoidValve(p, c, window_ms=250, min_on_ms=30, min_off_ms=30, max_open_ms=3000)
v.permit = True
v.request(0.37)
def tick():
    c.advance(10)
    now = c.ticks_ms()
    v.refresh(now)
    v.service(now)
def tick_expired():
    c.advance(10)
    v.service(c.ticks_ms())
pw = RecordingPWM()
pv = ProportionalValve(pw, c)
pv.permit = True
pv.request(0.5)
def ptick():
    c.advance(10)
    pv.refresh(c.ticks_ms())
    pv.service(c.ticks_ms())
m = MasterValve(RecordingPin())
ok = [assert_no_alloc(tick, 2000)]       # crosses the wrap, many windows
ok.append(assert_no_alloc(tick_expired, 500))  # dead-man expiry path
v.permit = False
ok.append(assert_no_alloc(tick, 50))
ok.append(assert_no_alloc(v.force_closed, 10))
ok.append(assert_no_alloc(ptick, 100))
ok.append(assert_no_alloc(pv.force_closed, 10))
ok.append(assert_no_alloc(m.open, 10))
ok.append(assert_no_alloc(lambda: m.track(True), 10))
ok.append(assert_no_alloc(m.close, 10))
ok.append(v.cycles > 50)
result(ok)
""",
    )
    assert r == [True] * 10


def test_master_in_pulsed_mode_opens_only_with_the_solenoid(mpy):
    """Open loop (TUNE) the master follows the solenoid's pulses: every
    solenoid off-time is a master off-time, held mode ignores ``track``,
    ``close`` ends pulsed mode, and ``track`` allocates nothing."""
    r = run(
        mpy,
        """
from cryo.clock import ManualClock
from cryo.actuation.valve import SolenoidValve, MasterValve
from pins import RecordingPin
c = ManualClock((1 << 30) - 3000)
vp = RecordingPin()
mp = RecordingPin()
v = SolenoidValve(vp, c, window_ms=200, min_on_ms=30, min_off_ms=30)
m = MasterValve(mp)
v.permit = True
v.request(0.3)
m.open(True)
before = mp.value()
apart = [0]
def tick():
    c.advance(10)
    v.refresh(c.ticks_ms())
    m.track(v.service(c.ticks_ms()))
    if vp.value() != mp.value():
        apart[0] += 1
ok = assert_no_alloc(tick, 1000)  # 10 s across the tick wrap
pulsed = [before, apart[0], v.cycles, mp.rises]
m.open()          # held: open whatever the solenoid does
v.request(0.0)
for _ in range(30):
    tick()
held = [mp.value(), m.is_open]
m.close()
m.track(True)     # closed: tracking opens nothing
result([ok, pulsed, held, mp.value(), m.is_open])
""",
    )
    ok, pulsed, held, level, is_open = r
    assert ok
    before, apart, sol_cycles, master_cycles = pulsed
    assert before == 0  # pulsed mode does not open by itself
    assert apart == 0  # never one open without the other
    assert sol_cycles >= 45 and master_cycles == sol_cycles
    assert held == [1, True]
    assert level == 0 and is_open is False


def test_bad_configuration_and_demand_are_rejected(mpy):
    r = run(
        mpy,
        """
from cryo.clock import ManualClock
from cryo.actuation.valve import SolenoidValve
from pins import RecordingPin
c = ManualClock()
msgs = []
for kw in ({"window_ms": 10}, {"min_on_ms": 200, "min_off_ms": 200, "window_ms": 300},
           {"max_open_ms": 0}, {"window_ms": 2.5}):
    try:
        SolenoidValve(RecordingPin(), c, **kw)
        msgs.append("accepted")
    except ValueError as e:
        msgs.append(str(e))
v = SolenoidValve(RecordingPin(), c)
for d in (1.5, -0.1, float("nan")):
    try:
        v.request(d)
        msgs.append("accepted")
    except ValueError as e:
        msgs.append(str(e))
result(msgs)
""",
    )
    assert "window_ms" in r[0] and "fit in window_ms" in r[1]
    assert "max_open_ms" in r[2] and "window_ms" in r[3]
    assert all("demand must be within 0..1" in m for m in r[4:])


def test_proportional_valve_duty_and_dead_man(mpy):
    r = run(
        mpy,
        """
from cryo.clock import ManualClock
from cryo.actuation.valve import ProportionalValve
from pins import RecordingPWM
c = ManualClock((1 << 30) - 100)
pw = RecordingPWM()
v = ProportionalValve(pw, c, max_open_ms=200, min_demand=0.1)
v.permit = True
out = []
v.request(0.5)
v.refresh(c.ticks_ms())
v.service(c.ticks_ms())
out.append(pw.duty)
v.request(0.05)   # below the cracking point: closed
v.service(c.ticks_ms())
out.append(pw.duty)
v.request(1.0)
c.advance(150)
v.service(c.ticks_ms())
out.append(pw.duty)
c.advance(60)     # 210 ms since the refresh, past the wrap
v.service(c.ticks_ms())
out.append(pw.duty)
out.append(v.expired)
out.append(v.cycles)
result(out)
""",
    )
    assert r == [32768, 0, 65535, 0, 1, 2]


# ---- CPython + hypothesis: minimum on/off times for any demand sequence ----


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, TICKS_PERIOD - 1),
    st.lists(st.tuples(st.floats(0, 1), st.integers(1, 80)), min_size=1, max_size=40),
    st.sampled_from([(250, 30, 30), (1000, 100, 50), (2000, 60, 200)]),
)
def test_minimum_on_off_times_hold_for_any_demands(start, demands, cfg):
    window, min_on, min_off = cfg
    c = ManualClock(start)
    p = RecordingPin()
    v = SolenoidValve(p, c, window_ms=window, min_on_ms=min_on, min_off_ms=min_off)
    v.permit = True
    edges = []  # (time since start, level)
    t = 0
    level = 0
    for demand, ticks in demands:
        v.request(demand)
        for _ in range(ticks):
            v.refresh(c.ticks_ms())
            v.service(c.ticks_ms())
            if p.level != level:
                edges.append((t, p.level))
                level = p.level
            c.advance(10)
            t += 10
    for (t0, lv), (t1, _) in zip(edges, edges[1:]):
        if lv == 1:
            assert t1 - t0 >= min_on, edges
        else:
            assert t1 - t0 >= min_off, edges
    assert v.cycles == sum(1 for _, lv in edges if lv == 1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.integers(1, 30)), min_size=1, max_size=60),
)
def test_at_most_one_pulse_per_window(demands):
    """Valve life is budgeted: cycles never exceed one per window."""
    c = ManualClock(TICKS_PERIOD - 3000)
    p = RecordingPin()
    v = SolenoidValve(p, c, window_ms=200, min_on_ms=30, min_off_ms=30)
    v.permit = True
    t = 0
    for demand, ticks in demands:
        v.request(demand)
        for _ in range(ticks):
            v.refresh(c.ticks_ms())
            v.service(c.ticks_ms())
            c.advance(10)
            t += 10
    assert v.cycles <= t // 200 + 1


def test_valves_on_the_virtual_boards_pins_allocate_nothing(mpy):
    """The virtual board's machine.Pin (boards/sim/machine.py): the real
    valve and master pins of the virtual board, driving the plant's valve
    bookkeeping, heap locked."""
    r = run(
        mpy,
        """
import machine
import vboard
from cryo.clock import ManualClock
from cryo.actuation.valve import SolenoidValve, MasterValve
c = ManualClock((1 << 30) - 3000)
w = vboard.World(clock=c, realtime=False)
vboard.install(w)
bd = w.board
vp = machine.Pin(bd["valve"]["pin"], machine.Pin.OUT, value=1)
mp = machine.Pin(bd["master_valve"]["pin"], machine.Pin.OUT, value=1)
v = SolenoidValve(vp, c)
m = MasterValve(mp)
closed = [vp.value(), mp.value()]
m.open()
v.permit = True
v.request(0.4)
def tick():
    c.advance(10)
    v.refresh(c.ticks_ms())
    v.service(c.ticks_ms())
ok = [assert_no_alloc(tick, 1000), assert_no_alloc(v.force_closed, 5), assert_no_alloc(m.close, 5)]
result([closed, ok, v.cycles, w.valve_cycles, vp.value(), mp.value()])
""",
    )
    closed, ok, cycles, world_cycles, vlevel, mlevel = r
    assert closed == [0, 0]
    assert ok == [True, True, True]
    # the board saw every pulse (+1: the pin was created energised, on purpose)
    assert cycles >= 50 and world_cycles == cycles + 1
    assert vlevel == 0 and mlevel == 0


def test_proportional_valve_on_the_virtual_boards_pwm_allocates_nothing(mpy):
    """A board with a proportional valve (boards/sim/board_proportional.json):
    the board layer's PWM (boards/sim/machine.py) drives the plant's valve
    bookkeeping as an opening, heap locked; ``retime`` closes it and keeps
    only the dead-man's time."""
    r = run(
        mpy,
        """
import vboard
from cryo.board import Board
from cryo.clock import ManualClock
from cryo.actuation.valve import ProportionalValve
c = ManualClock((1 << 30) - 3000)
f = vboard.__file__
defn = vboard.load_board(f[: f.rfind("/")] + "/board_proportional.json")
w = vboard.install(vboard.World(defn, clock=c, realtime=False))
b = Board(defn, c)
v = ProportionalValve(b.valve_pwm, c, max_open_ms=1500, min_demand=b.valve_min_demand)
closed = [b.valve_pwm.duty_u16(), w.valve_is_open(), b.valve_energised()]
b.master_pin.value(1)
v.set_permit(True)
v.request(0.4)
def pwm_tick():
    c.advance(10)
    now = c.ticks_ms()
    v.refresh(now)
    v.service(now)
ok = [assert_no_alloc(pwm_tick, 1000)]
opening = w.valve_opening()
ok.append(assert_no_alloc(v.force_closed, 5))
after = [b.valve_pwm.duty_u16(), w.valve_is_open()]
v.refresh(c.ticks_ms())
v.service(c.ticks_ms())
ok.append(assert_no_alloc(b.safe_outputs, 5))
v.retime(200, 30, 30, 700)
result([closed, ok, opening, after, v.cycles, w.valve_cycles, v.max_open_ms, v.is_open])
""",
    )
    closed, ok, opening, after, cycles, world_cycles, max_open, is_open = r
    assert closed == [0, False, False]
    assert ok == [True, True, True]
    assert abs(opening - 0.4) < 0.002  # the duty, not a pulse
    assert after == [0, False]
    assert cycles == 2 and world_cycles == 2  # opened once, closed, reopened once
    assert max_open == 700 and is_open is False


def test_differential_valve_edges_cpython_vs_micropython(mpy):
    """The same demand/refresh/permit script gives the same pin edges on both."""
    import json
    import random

    rnd = random.Random(11)
    script = []  # [demand, refresh?, permit?] per 10 ms tick
    for i in range(1500):
        refresh = i % 300 >= 8  # the tick misses 8 refreshes every 3 s
        script.append([round(rnd.random(), 3), refresh, rnd.random() > 0.005])
    code = """
from cryo.clock import ManualClock
from cryo.actuation.valve import SolenoidValve
from pins import RecordingPin
def edges(script):
    c = ManualClock((1 << 30) - 4000)
    p = RecordingPin()
    v = SolenoidValve(p, c, window_ms=200, min_on_ms=30, min_off_ms=30, max_open_ms=40)
    out = []
    lv = 0
    t = 0
    for d, ref, per in script:
        v.permit = per
        v.request(d)
        if ref:
            v.refresh(c.ticks_ms())
        v.service(c.ticks_ms())
        if p.level != lv:
            lv = p.level
            out.append([t, lv])
        c.advance(10)
        t += 10
    return [out, v.cycles, v.open_ms, v.expired]
"""
    ns = {}
    exec(code, ns)  # noqa: S102 - the same source on both interpreters
    cp = ns["edges"](script)
    mp = run(mpy, code + "\nimport json\nresult(edges(json.loads(%r)))\n" % json.dumps(script))
    assert cp == mp
    assert cp[1] > 20 and cp[3] > 0  # the script exercised pulses and dead-man expiries


def test_counters_saturate_below_small_int_limit(mpy):
    """open_ms/cycles stop at 2**30 - 1 (32-bit small-int limit): no long ints,
    so service stays allocation-free after weeks of use."""
    r = run(
        mpy,
        """
from cryo.clock import ManualClock
from cryo.actuation.valve import SolenoidValve
from pins import RecordingPin
c = ManualClock()
p = RecordingPin()
v = SolenoidValve(p, c)
v.permit = True
v.request(0.5)
v.open_ms = (1 << 30) - 50
v.cycles = (1 << 30) - 2
def tick():
    c.advance(10)
    v.refresh(c.ticks_ms())
    v.service(c.ticks_ms())
ok = assert_no_alloc(tick, 400)
result([ok, v.open_ms == (1 << 30) - 1, v.cycles == (1 << 30) - 1])
""",
    )
    assert r == [True, True, True]
