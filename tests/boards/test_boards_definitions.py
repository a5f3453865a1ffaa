"""Real board definitions: valid for their MCU, consistent, and usable by the
firmware's board layer.

Schema shape: the virtual board's (docs/virtual-board.md, boards/sim/board.json).
The per-port rules live in boardspec.py; each rule is exercised by a planted
mistake below so a broken rule cannot pass silently.
"""

import copy
import json

import boardcheck
import boardspec
import hil
import pytest

REAL_BOARDS = ("esp32s3", "rp2040", "rp2350", "stm32f4")


def _defn(name):
    return boardcheck.load_board(name)


def test_every_real_board_is_defined():
    names = {d.name for d in boardcheck.board_dirs()} - {"sim"}
    assert names == set(REAL_BOARDS)
    for name in REAL_BOARDS:
        readme = boardcheck.BOARDS / name / "README.md"
        assert readme.exists(), "boards/%s/README.md (wiring notes) is missing" % name
        text = readme.read_text()
        for must in ("isolated", "T-", "10 nF" if _chip(name) == "max31855" else "100 nF"):
            assert must in text, "boards/%s/README.md must mention %r" % (name, must)


def _chip(name):
    return _defn(name)["thermocouples"]["tissue"]["chip"]


@pytest.mark.parametrize("name", REAL_BOARDS)
def test_definition_is_valid_for_its_port(name):
    assert boardspec.validate(_defn(name), name) == []


SCHEMA_KEYS = (
    "name",
    "spi",
    "thermocouples",
    "valve",
    "master_valve",
    "inputs",
    "buzzer",
    "leds",
    "pressure_adc",
    "watchdog",
    "safety_timer",
    "tick_ms",
)


def test_real_boards_fill_every_section_of_the_schema():
    """The virtual board's schema (boards/sim/board.json) has these sections; a real board
    fills all of them (the board layer treats several as optional)."""
    sim = _defn("sim")
    assert set(SCHEMA_KEYS) <= set(sim), "the virtual board's schema changed: %s" % sorted(sim)
    for name in REAL_BOARDS:
        d = _defn(name)
        missing = [k for k in SCHEMA_KEYS if k not in d]
        assert missing == [], "%s lacks %s" % (name, missing)
        for key in ("spi", "valve", "master_valve", "inputs", "buzzer", "pressure_adc", "watchdog"):
            assert isinstance(d[key], dict)
        assert isinstance(d["safety_timer"], dict)


def test_stub_pins_agree_with_the_definitions():
    for name in REAL_BOARDS:
        assert boardcheck.STUB_SETS[name] == _defn(name)["stubs"]


def test_mpy_cross_arch_per_board_matches_the_reference_table():
    want = {"esp32s3": "xtensawin", "rp2040": "armv6m", "rp2350": "armv7m", "stm32f4": "armv7emsp"}
    assert {n: _defn(n)["mpy_cross_arch"] for n in REAL_BOARDS} == want


def _set(path, value):
    def mutate(d):
        node = d
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        if value is _DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return mutate


_DELETE = object()

MISTAKES = [
    ("rp2040", "pressure_adc.pin", 22, "pressure_adc.pin: 22 cannot be used: GPIO22 has no ADC"),
    ("rp2040", "inputs.estop.pin", 29, "GPIO29 is internal on the Pico"),
    ("rp2040", "spi.sck", 17, "GPIO17 is not SPI0 SCK"),
    ("rp2040", "spi.miso", 12, "GPIO12 is not SPI0 MISO"),
    ("rp2040", "buzzer.pin", 30, "has GPIO 0-29 only"),
    ("rp2040", "watchdog.timeout_ms", 9000, "allowed 500 ... 2000 ms"),
    ("rp2040", "leds.red.pin", 15, "is already used by valve.pin"),
    ("rp2040", "tick_ms", 10, "period_ms range is 20 ... 200 ms"),
    ("esp32s3", None, {"watchdog.timeout_ms": 600, "tick_ms": 200}, "< 5 ticks of 200 ms"),
    ("rp2040", "leds.heartbeat.pin", 25, None),  # the on-board LED is a fine output
    ("rp2040", "inputs.footswitch.pin", 25, "GPIO25 is the Pico's on-board LED"),
    ("rp2040", "spi.phase", 1, "max31855 on aux needs SPI phase 0"),
    ("rp2040", "thermocouples.tissue.type", "J", "'J'; max31855 supports K/T"),
    ("rp2040", "thermocouples.aux.chip", "max6675", "'max6675' unknown"),
    ("rp2040", "spi.baudrate", 10_000_000, "allows 100 kHz ... 5000000 Hz"),
    ("rp2040", "mpy_cross_arch", "armv7m", "RP2040 needs -march=armv6m"),
    ("rp2040", "stubs", "micropython-rp2-rpi-pico2-stubs==1.29.0.post1", "official stubs are"),
    ("rp2040", "valve.active_high", False, "valve.active_high: must be true"),
    ("rp2040", "inputs.estop.invert", True, "a cut wire reads 0, the active level"),
    ("rp2040", "inputs.estop.pull", "up", "a cut wire reads 1, the active level"),
    ("rp2040", "inputs.footswitch.invert", False, "a cut wire reads 1, the active level"),
    ("rp2040", "inputs.estop.pull", None, "real boards declare 'up' or 'down'"),
    ("rp2040", "inputs.estop.external_pull_ohms", 100_000, "a 1k ... 47k resistor"),
    ("rp2040", "buzzer.freq", 2700, "150-1000 Hz"),
    ("rp2040", "thermocouples.tissue2", _DELETE, "must name exactly the channels"),
    ("rp2350", "inputs.estop.external_pull_ohms", 10_000, "RP2350-E9"),
    ("rp2350", "inputs.estop.external_pull_ohms", _DELETE, "RP2350-E9"),
    ("rp2350", "micropython", "1.23.0", "RP2350 needs MicroPython >= 1.24"),
    ("esp32s3", "valve.pin", 0, "GPIO0 is a strapping pin"),
    ("esp32s3", "master_valve.pin", 46, "GPIO46 is a strapping pin"),
    ("esp32s3", "thermocouples.aux.cs", 35, "octal PSRAM"),
    ("esp32s3", "leds.green.pin", 28, "SPI flash"),
    ("esp32s3", "inputs.handpiece.pin", 20, "native USB"),
    ("esp32s3", "pressure_adc.pin", 15, "not on ADC1"),
    ("esp32s3", "buzzer.pin", 23, "GPIO 0-21 and 26-48 only"),
    ("esp32s3", "spi.id", 0, "machine.SPI ids are 1 (SPI2) and 2 (SPI3)"),
    ("stm32f4", "spi.sck", "Y6", "must be omitted on stm32"),
    ("stm32f4", "spi.id", 3, "buses are 1 (X6/X7/X8) and 2 (Y6/Y7/Y8)"),
    ("stm32f4", "thermocouples.aux.cs", "B13", "is already used by spi(2).sck"),
    ("stm32f4", "inputs.estop.pin", "X9", "MMA7660 accelerometer"),
    ("stm32f4", "inputs.footswitch.pin", "X17", "USR switch"),
    ("stm32f4", "pressure_adc.pin", "Y9", "has no ADC channel"),
    ("stm32f4", "buzzer.pin", "X5", "no timer channel for machine.PWM"),
    ("stm32f4", "valve.pin", "X18", "C13 (X18) can only be an input"),
    ("stm32f4", "leds.red.pin", "Z3", "no pin 'Z3' on the pyboard"),
    ("stm32f4", "micropython", "1.27.0", "STM32F405 needs MicroPython >= 1.28"),
    ("stm32f4", "pressure_adc.span_fraction", 0.95, "must be > 0 and fit in the ADC range"),
    ("esp32s3", "pressure_adc.atten", _DELETE, "esp32 needs 'ATTN_11DB'"),
    ("esp32s3", "pressure_adc.atten", "ATTN_6DB", "esp32 needs 'ATTN_11DB'"),
    ("rp2040", "pressure_adc.atten", "ATTN_11DB", "must be omitted on rp2"),
    ("stm32f4", "pressure_adc.atten", "ATTN_11DB", "must be omitted on stm32"),
    # safety timer and e-stop interrupt: what each port's machine really offers
    ("rp2040", "safety_timer", _DELETE, 'safety_timer: missing: {"id": -1, "hard": true}'),
    ("rp2040", "safety_timer.id", 0, "rp2's machine.Timer ids are -1"),
    ("rp2350", "safety_timer.hard", False, "must be true on rp2"),
    ("stm32f4", "safety_timer.id", 1, "stm32's machine.Timer ids are -1"),
    ("stm32f4", "safety_timer.hard", False, "must be true on stm32"),
    ("esp32s3", "safety_timer.id", -1, "esp32's machine.Timer ids are 0, 1, 2, 3"),
    ("esp32s3", "safety_timer.id", 4, "esp32's machine.Timer ids are 0, 1, 2, 3"),
    ("esp32s3", "safety_timer.hard", True, "rejects hard=True"),
    ("esp32s3", "inputs.estop.irq_hard", True, "its Pin.irq has no 'hard' keyword"),
    ("rp2040", "inputs.estop.irq_hard", False, "must be true on rp2"),
    ("stm32f4", "inputs.estop.irq_hard", _DELETE, "must be true on stm32"),
    # the flash's mount point, where the port's boot code puts it
    (
        "stm32f4",
        "flash_root",
        _DELETE,
        "the stm32 port's _boot.py mounts the internal flash at '/flash'",
    ),
    ("rp2040", "flash_root", "/flash", "the rp2 port's _boot.py mounts the internal flash at '/'"),
    # the optional valve-supply read-back follows the input rules
    ("rp2040", "inputs.valve_supply", {"pin": 22, "pull": "down"}, None),
    ("rp2040", "inputs.valve_supply", {"pin": 15, "pull": "down"}, "already used by valve.pin"),
    ("rp2040", "inputs.valve_supply", {"pin": 22, "pull": "up"}, "a cut wire reads 1"),
]


@pytest.mark.parametrize("board, path, value, expected", MISTAKES)
def test_planted_mistake_is_reported(board, path, value, expected):
    d = copy.deepcopy(_defn(board))
    changes = value if path is None else {path: value}
    for p, v in changes.items():
        _set(p, v)(d)
    errs = boardspec.validate(d, board)
    if expected is None:
        assert errs == []
    else:
        assert any(expected in e for e in errs), "no error containing %r in %s" % (expected, errs)


def test_aliases_of_one_pyboard_pin_collide():
    d = copy.deepcopy(_defn("stm32f4"))
    d["leds"]["red"]["pin"] = "C6"  # = Y1, the valve
    errs = boardspec.validate(d, "stm32f4")
    assert any("'C6' is already used by valve.pin" in e for e in errs), errs


def test_name_must_match_folder():
    assert any(
        "must equal the folder name" in e for e in boardspec.validate(_defn("rp2040"), "pico")
    )


@pytest.mark.parametrize("name", REAL_BOARDS)
def test_board_layer_builds_the_real_definition_on_the_virtual_board(name, mpy):
    """cryo.board.Board consumes each real definition unchanged: valves
    closed, CS idle high, inputs with the wiring's fail-safe polarity, the
    board's own chip type reads the tissue probe, pressure in range."""
    got = mpy.run(
        """
import json, vboard
import plant as plant_mod
from cryo.clock import ManualClock
defn = json.loads(%r)
clock = ManualClock((1 << 30) - 500)   # cross the 32-bit tick wrap meanwhile
w = vboard.World(board=defn, plant_params=plant_mod.load("default"), seed=3, clock=clock,
                 realtime=False)
vboard.install(w)
from cryo.board import Board
b = Board(defn, clock)
r = {"valves": [b.valve_pin.value(), b.master_pin.value()],
     "cs": sorted(v.value() for v in b.cs.values()),
     "estop": b.estop.value(), "foot_rest": b.footswitch.value() == b.active_level("footswitch")}
w.set_input("estop", 0)
r["estop_tripped"] = b.estop.value()
w.set_input("footswitch", 1)
r["foot"] = b.footswitch.value() == b.active_level("footswitch")
s = b.sensor("tissue")
r["driver"] = type(s).__name__
i = 0
while i < 12:
    clock.advance(100)
    now = clock.ticks_ms()
    w.advance_to(now)
    if hasattr(s, "poll"):
        s.poll(now)
    else:
        s.read_raw()
    i += 1
r["t"] = s.temperature
r["true"] = w.channels["tissue"].hot_c
r["kpa"] = b.pressure_kpa()
r["true_kpa"] = w.plant.supply_pressure_kpa
r["spi_pins"] = sorted(b.spi.pins)
r["spi_mode"] = [b.spi.polarity, b.spi.phase]
r["atten"] = b.pressure_adc.atten
b.safe_outputs()
r["safe"] = [b.valve_pin.value(), b.master_pin.value()]
result(r)
"""
        % json.dumps(_defn(name))
    )
    assert got["valves"] == [0, 0] and got["safe"] == [0, 0]
    assert got["cs"] == [1, 1, 1, 1]  # every chip deselected
    # Raw level 1 = loop closed on these boards (NC loop from 3V3, pull-down).
    assert got["estop"] == 1 and got["estop_tripped"] == 0
    assert got["foot_rest"] is False and got["foot"] is True
    assert got["driver"] == _chip(name).upper()
    assert got["t"] is not None and abs(got["t"] - got["true"]) < 2.5, got
    assert abs(got["kpa"] - got["true_kpa"]) < 2.0, got
    # Pins only where the definition gives them (stm32's machine.SPI rejects any).
    want_pins = [] if name == "stm32f4" else ["miso", "mosi", "sck"]
    assert got["spi_pins"] == want_pins
    d = _defn(name)
    assert got["spi_mode"] == [d["spi"]["polarity"], d["spi"]["phase"]]
    # esp32's ADC is created with 11 dB attenuation (machine.ADC.ATTN_11DB == 3).
    assert got["atten"] == (3 if name == "esp32s3" else None)


@pytest.mark.parametrize("name", REAL_BOARDS)
def test_safety_hardware_of_each_real_definition_on_the_virtual_board(name, mpy):
    """Each real definition's safety timer (its id, hard or not) and e-stop
    interrupt (edge from its loop polarity, hard or not) as the board layer
    builds them, driven on the virtual board: the timer fires in virtual
    time, the e-stop handler once when the loop opens."""
    got = mpy.run(
        """
import json, vboard, machine
from cryo.clock import ManualClock
defn = json.loads(%r)
clock = ManualClock(0)
w = vboard.install(vboard.World(board=defn, clock=clock, realtime=False, seed=3))
from cryo.board import Board
b = Board(defn, clock)
%s
t = b.start_safety_timer(50, c.tick)
clock.advance(1000)
w.advance_to(clock.ticks_ms())
b.watch_estop(c.pin)
w.set_input("estop", 0)
w.set_input("estop", 1)
irq = w.irqs[b.estop._id]
result([c.n, t._id, t._hard, c.e, irq[1] == machine.Pin.IRQ_FALLING, irq[3]])
"""
        % (json.dumps(_defn(name)), hil.COUNTER)
    )
    d = _defn(name)
    assert got[:4] == [20, d["safety_timer"]["id"], d["safety_timer"]["hard"], 1]
    # closed loop = 1 on every real board (pull-down): the loop opens on a falling edge
    assert got[4] is True and got[5] is d["inputs"]["estop"]["irq_hard"]


def test_every_board_json_passes_the_board_layers_own_validation():
    """One schema: cryo.board.validate accepts every definition,
    the virtual board's included."""
    from cryo.board import validate

    names = [d.name for d in boardcheck.board_dirs()]
    assert "sim" in names and set(REAL_BOARDS) <= set(names)
    for name in names:
        validate(_defn(name))  # raises BoardError naming the field


def test_virtual_board_satisfies_the_rules_that_apply_to_it():
    """boards/sim/board.json is a plausible board too: the MCU-independent
    rules (one SPI mode per bus, fail-safe inputs/valves, buzzer band, LED
    names cryo.alarms drives, tick and watchdog) hold for it."""
    assert boardspec.validate_virtual(_defn("sim")) == []


SIM_MISTAKES = [
    # what the virtual board had before (each was reported in docs/boards.md)
    ("thermocouples.tissue2.chip", "max31856", "max31856 on tissue2 needs SPI phase 1"),
    ("inputs.estop.pull", "up", "a cut wire reads 1, the active level"),
    ("leds", {"power": {"pin": 8}, "freeze": {"pin": 9}, "alarm": {"pin": 16}}, "needs 'red'"),
    ("buzzer.freq", 2700, "150-1000 Hz"),
    ("tick_ms", 10, "period_ms range is 20 ... 200 ms"),
    ("watchdog.timeout_ms", 5000, "clinical limit 2000 ms"),
    ("pressure_adc.atten", "ATTN_11DB", "must be omitted on sim"),
    ("valve.active_high", False, "must be true"),
]


@pytest.mark.parametrize("path, value, expected", SIM_MISTAKES)
def test_planted_mistake_in_the_virtual_board_is_reported(path, value, expected):
    d = copy.deepcopy(_defn("sim"))
    _set(path, value)(d)
    errs = boardspec.validate_virtual(d)
    assert any(expected in e for e in errs), "no error containing %r in %s" % (expected, errs)
