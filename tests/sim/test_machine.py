"""machine emulation, board layer and world, under real MicroPython."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SETUP = """
import vboard
from cryo.clock import ManualClock
clk = ManualClock(%d)
w = vboard.install(vboard.World(clock=clk, realtime=False, seed=3))
import machine
from cryo.board import Board, load_definition
b = Board(load_definition("/no/such/board.json"), clock=clk)
"""


def setup(start_ms=0):
    return SETUP % start_ms


def test_import_machine_resolves_to_the_virtual_board(mpy):
    r = mpy.run(
        """
import machine
result([machine.__file__.endswith("boards/sim/machine.py"), hasattr(machine, "WDT")])
"""
    )
    assert r == [True, True]


def test_board_starts_with_valves_closed_and_inputs_idle(mpy):
    r = mpy.run(
        setup()
        + """
result([b.valve_pin.value(), b.master_pin.value(), w.valve_is_open(), b.estop.value(),
        b.footswitch.value(), b.handpiece.value(), sorted(b.cs), b.tc["tissue2"]["chip"],
        round(b.pressure_kpa()), b.wdt is None])
"""
    )
    # footswitch/handpiece are inverted in board.json: idle pin level 1
    # every channel a MAX31855 (one bus in SPI mode 0, as on the RP2040 board)
    assert r == [
        0,
        0,
        False,
        1,
        1,
        1,
        ["aux", "tissue", "tissue2", "tissue3"],
        "max31855",
        150,
        True,
    ]


def test_scenario_inputs_reach_the_pins(mpy):
    r = mpy.run(
        setup()
        + """
w.set_input("estop", 0); w.set_input("footswitch", 1); w.set_input("handpiece", 1)
a = [b.estop.value(), b.footswitch.value(), b.handpiece.value()]
hits = []
b.estop.irq(lambda p: hits.append(p.value()), machine.Pin.IRQ_RISING)
w.set_input("estop", 1)
result([a, hits])
"""
    )
    assert r == [[0, 0, 0], [1]]


def test_spi_routes_to_the_selected_chip_and_floats_high_otherwise(mpy):
    r = mpy.run(
        setup()
        + """
from cryo.sensing.max31855 import MAX31855
tc = MAX31855(b.spi, b.cs["tissue"])
clk.advance(200)  # first conversion after power-up (100 ms max)
w.sync()
f = tc.read_raw()
buf = bytearray(4)
b.spi.readinto(buf)  # nobody selected
result([f, round(tc.temperature, 1), round(w.plant.probe_c, 1), list(buf)])
"""
    )
    assert r[0] == 0
    assert abs(r[1] - r[2]) < 1.0
    assert r[3] == [255, 255, 255, 255]


def test_valve_pins_drive_the_plant_and_master_gates_flow(mpy):
    r = mpy.run(
        setup()
        + """
def run(ms):
    t = 0
    while t < ms:
        clk.advance(10); t += 10
        w.sync()
s0 = w.plant.surface_c
b.valve_pin.value(1)          # master closed: no flow
run(3000)
s1 = w.plant.surface_c
b.master_pin.value(1)
run(20000)
s2 = w.plant.surface_c
b.safe_outputs()
result([s0 - s1, s1 - s2, w.valve_is_open(), w.valve_cycles])
"""
    )
    assert abs(r[0]) < 0.3
    assert r[1] > 5.0
    assert r[2] is False and r[3] == 1


def test_stuck_valves_override_the_pin(mpy):
    r = mpy.run(
        setup()
        + """
import scenario
def run(ms):
    t = 0
    while t < ms:
        clk.advance(10); t += 10
        w.sync()
b.master_pin.value(1)
scenario.apply(w, {"event": "valve_stuck", "state": "open"}, 0)
r0 = w.plant.reservoir_kg
run(2000)                    # valve pin low, but the valve is stuck open
flow_stuck_open = r0 - w.plant.reservoir_kg
scenario.apply(w, {"event": "valve_stuck", "state": "closed"}, 0)
b.valve_pin.value(1)
run(1000)
r1 = w.plant.reservoir_kg
run(2000)                    # pin high, valve stuck closed
result([flow_stuck_open > 0, r1 - w.plant.reservoir_kg])
"""
    )
    assert r == [True, 0.0]


def test_valve_duty_is_measured_between_plant_steps(mpy):
    """A 50 % time-proportioned valve delivers half the cryogen of a full one."""
    r = mpy.run(
        setup()
        + """
b.master_pin.value(1)
def run(duty_ms, total):
    r0 = w.plant.reservoir_kg
    t = 0
    while t < total:
        b.valve_pin.value(1 if (t % 1000) < duty_ms else 0)
        clk.advance(10); t += 10
        w.sync()
    return r0 - w.plant.reservoir_kg
run(1000, 2000)  # past the 0.3 s transport dead time
full = run(1000, 30000)
half = run(500, 30000)
result([full, half])
"""
    )
    assert r[1] == pytest.approx(r[0] / 2, rel=0.05)


def test_safe_path_is_allocation_free(mpy):
    """Valve off, pin reads and a MAX31855 raw read through the emulated SPI
    allocate nothing (the firmware's safety path runs through them)."""
    r = mpy.run(
        setup()
        + """
from cryo.sensing.max31855 import MAX31855
tc = MAX31855(b.spi, b.cs["tissue"])
b.master_pin.value(1); b.valve_pin.value(1)
assert_no_alloc(b.safe_outputs, 50)
assert_no_alloc(b.estop.value, 50)
assert_no_alloc(b.footswitch.value, 50)
assert_no_alloc(tc.read_raw, 50)
result(True)
"""
    )
    assert r is True


def test_watchdog_expiry_in_virtual_time(mpy):
    r = mpy.run(
        setup((1 << 30) - 500)  # start just before the 2**30 tick wrap
        + """
wdt = b.start_watchdog(1000)
out = []
clk.advance(900); wdt.feed(); out.append(w.wdt_expired(clk.ticks_ms()))
clk.advance(900); out.append(w.wdt_expired(clk.ticks_ms()))
clk.advance(200); out.append(w.wdt_expired(clk.ticks_ms()))
try:
    machine.reset()
except vboard.BoardReset as e:
    out.append(e.cause)
result(out)
"""
    )
    assert r == [False, False, True, "reset"]


def test_pwm_adc_rtc(mpy):
    r = mpy.run(
        setup()
        + """
b.buzzer.duty_u16(32768)
w.plant.pressure_loss = 0.5
clk.advance(20)
w.sync()
p = b.pressure_kpa()
b.rtc.datetime((2026, 11, 25, 2, 10, 30, 0, 0))
clk.advance(60980)
dt = b.rtc.datetime()
result([w.pwm[7], round(p), dt[:3], dt[4:7]])
"""
    )
    # 880 Hz: inside IEC 60601-1-8's 150-1000 Hz alarm fundamental
    assert r == [[880, 32768], 75, [2026, 11, 25], [10, 31, 1]]


def test_board_definition_errors_are_named():
    from cryo.board import BoardError, validate

    d = json.loads((ROOT / "boards" / "sim" / "board.json").read_text())
    bad = dict(d)
    del bad["valve"]
    with pytest.raises(BoardError, match="'valve' is missing"):
        validate(bad)
    bad = json.loads(json.dumps(d))
    bad["thermocouples"]["tissue"]["chip"] = "max6675"
    with pytest.raises(BoardError, match="thermocouples.tissue.chip"):
        validate(bad)
    bad = json.loads(json.dumps(d))
    bad["thermocouples"]["probe3"] = {"cs": 1, "chip": "max31855"}
    with pytest.raises(BoardError, match="'probe3' unknown"):
        validate(bad)
    bad = json.loads(json.dumps(d))
    del bad["spi"]["mosi"]  # a bus gets all three pins or none (stm32: none)
    with pytest.raises(BoardError, match="sck, mosi and miso together"):
        validate(bad)
    bad = json.loads(json.dumps(d))
    bad["inputs"]["estop"]["pull"] = -1
    with pytest.raises(BoardError, match="inputs.estop.pull must be 'up', 'down' or null"):
        validate(bad)
    validate(d)


def test_board_layer_spi_pins_pulls_and_adc_attenuation(mpy):
    """SPI pins only when given; "no pull" is None; ADC atten only by name
    and only where the port's machine.ADC has that constant."""
    r = mpy.run(
        """
import json, vboard, machine
from cryo.clock import ManualClock
from cryo.board import Board, BoardError, load_definition
clk = ManualClock(0)
d = load_definition("/no/such/board.json")
d = json.loads(json.dumps(d))
for k in ("sck", "mosi", "miso"):
    del d["spi"][k]
d["inputs"]["handpiece"]["pull"] = None
d["pressure_adc"]["atten"] = "ATTN_11DB"
w = vboard.install(vboard.World(board=d, clock=clk, realtime=False, seed=3))
b = Board(d, clock=clk)
out = [sorted(b.spi.pins), b.handpiece._pull, b.estop._pull == machine.Pin.PULL_DOWN,
       b.pressure_adc.atten]
d["pressure_adc"]["atten"] = "ATTN_99DB"
try:
    Board(d, clock=clk)
    out.append("accepted")
except BoardError as e:
    out.append(str(e))
result(out)
"""
    )
    assert r[:4] == [[], None, True, 3]
    assert "pressure_adc.atten 'ATTN_99DB'" in r[4] and "omit the field" in r[4]


def test_board_works_under_cpython_too():
    import vboard

    from cryo.board import Board
    from cryo.clock import ManualClock

    clk = ManualClock(0)
    old = vboard.world
    try:
        w = vboard.install(vboard.World(clock=clk, realtime=False))
        b = Board(w.board, clock=clk)
        b.master_pin.value(1)
        b.valve_pin.value(1)
        assert w.valve_is_open()
        b.safe_outputs()
        assert not w.valve_is_open()
    finally:
        vboard.world = old


def test_realtime_world_skips_plant_steps_while_the_heap_is_locked(mpy):
    """Real time: reads integrate the plant lazily, but never allocate with
    the heap locked (a locked read just sees the last step)."""
    r = mpy.run(
        """
import time, micropython, vboard
w = vboard.install(vboard.World(seed=1))  # real time, board clock
import machine
from cryo.board import Board
b = Board(w.board)
v0 = w.version
time.sleep_ms(50)
micropython.heap_lock()
try:
    level = b.estop.value()
    code = b.pressure_adc.read_u16()
finally:
    micropython.heap_unlock()
v1 = w.version
b.estop.value()
result([level, code > 0, v1 == v0, w.version > v1])
"""
    )
    assert r == [1, True, True, True]


RTC_SNIPPET = """
import vboard
from cryo.clock import ManualClock
clk = ManualClock(0)
w = vboard.install(vboard.World(clock=clk, realtime=False, seed=3))
import machine
r = machine.RTC()
r.datetime((2026, 11, 25, 2, 16, 30, 15, 0))
a = list(r.datetime())
clk.advance(61000)
b = list(r.datetime())
r.datetime((2024, 2, 29, 3, 23, 59, 59, 0))  # leap day, end of day
clk.advance(1000)
c = list(r.datetime())
"""


def test_rtc_set_and_read_back_on_both_interpreters(mpy):
    """RTC.datetime(dt) sets the clock (it failed under CPython: time.mktime
    wants a 9-tuple there) and reads back the same fields, then advances
    with the board clock."""
    want = [
        [2026, 11, 25, 2, 16, 30, 15, 0],
        [2026, 11, 25, 2, 16, 31, 16, 0],
        [2024, 3, 1, 4, 0, 0, 0, 0],
    ]
    assert mpy.run(RTC_SNIPPET + "result([a, b, c])") == want
    ns = {}
    exec(RTC_SNIPPET, ns)  # CPython: boards/sim and firmware are on sys.path
    assert [ns["a"], ns["b"], ns["c"]] == want
