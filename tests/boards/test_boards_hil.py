"""End-to-end board checks: the virtual board wired from every real board's
definition, and the real board itself with ``pytest --port /dev/ttyACM0``.

Each check is one snippet that runs unchanged on both targets (hil.py). The
device cases exist only when a port is given (deselected otherwise, never skipped).
On hardware the rig is: firmware flashed (``cryo flash``), probes at room
temperature, e-stop loop closed, footswitch released, handpiece in holder.
"""

import json
import shutil

import boardcheck
import boardspec
import hil
import pytest

pytestmark = pytest.mark.hil


def test_valves_closed_and_chip_selects_idle(target):
    got = target.run(
        """
import micropython
r = {"valves": [board.valve_pin.value(), board.master_pin.value()],
     "cs": [board.cs[n].value() for n in ("tissue", "tissue2", "aux", "tissue3")]}
board.valve_pin.value(1)            # even if something drove it open ...
board.safe_outputs()                # ... one allocation-free call closes both
locked = None                       # bound before the heap is locked
micropython.heap_lock()
try:
    board.safe_outputs()
    locked = True
except MemoryError:
    locked = False
micropython.heap_unlock()
r["after"] = [board.valve_pin.value(), board.master_pin.value()]
r["alloc_free"] = locked
result(r)
"""
    )
    assert got == {"valves": [0, 0], "cs": [1, 1, 1, 1], "after": [0, 0], "alloc_free": True}


def test_tick_arithmetic_wraps_at_2_30(target):
    """32-bit boards wrap ticks at 2**30 (a 64-bit unix port at 2**62): the board's
    clock must behave like the ManualClock the simulations use."""
    got = target.run(
        """
c = board.clock
p = %d
result([c.add(0, -1), c.diff(0, p - 1), c.diff(c.add(c.ticks_ms(), 250), c.ticks_ms())])
"""
        % target.ticks_period
    )
    assert got == [target.ticks_period - 1, 1, 250]


def test_inputs_at_rest(target):
    got = target.run(
        """
act = board.active_level
result([board.estop.value(), board.footswitch.value() == act("footswitch"),
        board.handpiece.value() == act("handpiece")])
"""
    )
    # Raw e-stop level 1 = loop closed (the interlock trips on 0).
    assert got == [1, False, False], "e-stop loop closed, footswitch released, handpiece in holder"


def test_thermocouples_read_ambient_without_faults(target):
    got = target.run(
        """
sensors = {}
for name in ("tissue", "tissue2", "aux", "tissue3"):
    sensors[name] = board.sensor(name)
out = {}
i = 0
while i < 15:                       # 1.5 s: several conversions of either chip
    advance(100)
    for name in sensors:
        s = sensors[name]
        if hasattr(s, "poll"):
            s.poll(board.clock.ticks_ms())
        else:
            s.read_raw()
    i += 1
for name in sensors:
    s = sensors[name]
    out[name] = [type(s).__name__, s.faults, s.temperature, s.cold_junction]
result(out)
"""
    )
    chip = target.definition["thermocouples"]["tissue"]["chip"].upper()
    for name, (driver, faults, temp, cj) in got.items():
        assert driver == chip
        assert faults == 0, "%s reports faults 0x%x" % (name, faults)
        assert 5.0 <= temp <= 45.0, "%s reads %.1f C at room temperature" % (name, temp)
        assert 5.0 <= cj <= 50.0, "%s cold junction %.1f C" % (name, cj)
    assert abs(got["tissue"][2] - got["tissue2"][2]) < 5.0


def test_sensor_reads_and_valve_off_allocate_nothing(target):
    """The safety path on this board's real bus: a raw thermocouple read (or
    one-shot poll) for every channel, the pressure ADC and the e-stop pin,
    then valves off, 50 times with the heap locked. On hardware this proves
    the port's machine.SPI/ADC/Pin calls allocate nothing either."""
    got = target.run(
        """
import micropython
drv = [board.sensor(n) for n in ("tissue", "tissue2", "aux", "tissue3")]
adc = board.pressure_adc
estop = board.estop
clock = board.clock
def safety_pass():
    now = clock.ticks_ms()
    i = 0
    while i < 3:
        d = drv[i]
        if hasattr(d, "poll"):
            d.poll(now)
        else:
            d.read_raw()
        i += 1
    adc.read_u16()
    estop.value()
    board.safe_outputs()
safety_pass()
n = 0
micropython.heap_lock()
try:
    while n < 50:
        safety_pass()
        n += 1
except MemoryError:
    pass
micropython.heap_unlock()
result(n)
"""
    )
    assert got == 50, "allocated on pass %d" % got


def test_safety_timer_and_estop_interrupt_arm_on_the_port(target):
    """The board's own safety timer (its id, hard where the definition says)
    fires every period beside a loop that does nothing else and stops on
    deinit(); the e-stop interrupt arms and disarms with the keywords this
    port's Pin.irq accepts (on hardware: no TypeError, e.g. esp32's irq has
    no 'hard'). The callbacks only count (allocation-free, as a hard ISR
    must be)."""
    got = target.run(
        hil.COUNTER
        + """
clk = board.clock
t = board.start_safety_timer(20, c.tick)
t0 = clk.ticks_ms()
for _ in range(250):                # up to 5 s: a loaded host may run late
    advance(20)
    if c.n >= 10:
        break
n = c.n
elapsed = clk.diff(clk.ticks_ms(), t0)
t.deinit()
advance(200)
board.watch_estop(c.pin)
board.watch_estop(None)
result([n, elapsed, c.n - n, c.e, board.reset_cause()])
"""
    )
    n, elapsed, after_deinit, estop, cause = got
    # It fires, and never faster than its period (a real-time target may be
    # one firing ahead of the clock read); nothing after deinit() but one in flight.
    assert 10 <= n <= elapsed // 20 + 1, got
    assert after_deinit <= 1, got
    assert estop == 0, "the e-stop handler ran with the loop closed"
    assert cause in ("power", "hard", "wdt", "soft", "deepsleep", "unknown")


def test_supply_pressure_reading_in_range(target):
    kpa = target.run("result(board.pressure_kpa())")
    full = target.definition["pressure_adc"]["full_scale_kpa"]
    assert -0.05 * full <= kpa <= full


def test_heap_left_for_the_controller(target):
    """After importing the whole controller the board still has room for a
    tick's garbage (bench_boards.py prints the measured per-tick peak)."""
    free = target.run(
        """
import gc
import cryo.controller
gc.collect()
result(gc.mem_free())
"""
    )
    assert free >= 48 * 1024


def test_device_matches_its_definition(device):
    problems = hil.identity_problems(device.identity(), device.definition)
    assert problems == []
    name = device.definition.get("name")
    assert name in {d.name for d in boardcheck.board_dirs()}, name
    assert device.definition == boardcheck.load_board(name), "the board's /board.json differs"
    assert boardspec.validate(device.definition, name) == []


def _virtual_serial_board(tmp_path, board="rp2040"):
    """A flash tree like `cryo flash` leaves, for the unix port on a pty."""
    flash = tmp_path / "flash"
    lib = flash / "lib"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(boardcheck.FIRMWARE / "cryo", lib / "cryo", ignore=ignore)
    sim = boardcheck.BOARDS / "sim"
    for item in sim.iterdir():
        if item.is_dir() and item.name != "__pycache__":
            shutil.copytree(item, lib / item.name, ignore=ignore)
        elif item.suffix == ".py":
            shutil.copy(item, lib / item.name)
    defn = json.dumps(boardcheck.load_board(board))
    (lib / "board.json").write_text(defn)  # the virtual board's wiring
    (flash / "board.json").write_text(defn)  # the firmware's /board.json
    return flash


def test_device_target_over_a_serial_port(tmp_path):
    """The --port code path itself, against the unix port on a pty
    (host_tools.virtual.port.VirtualPort) with the firmware and the virtual board in its flash: the
    same raw-REPL exchange a real board gets."""
    from host_tools.virtual.port import VirtualPort

    flash = _virtual_serial_board(tmp_path)
    with VirtualPort(flash_dir=flash) as vp:
        dev = hil.DeviceTarget(vp.port, definition_path="board.json")
        try:
            assert dev.definition == boardcheck.load_board("rp2040")
            got = dev.run("result([board.valve_pin.value(), board.estop.value()])")
            assert got == [0, 1]
            ident = dev.identity()
            problems = hil.identity_problems(ident, dev.definition)
            # The unix port is not an RP2040: the identity check must say so.
            assert any("is not a RP2040" in p for p in problems), problems
            with pytest.raises(AssertionError, match="ZeroDivisionError"):
                dev.run("result(1 // 0)")
        finally:
            dev.close()


def test_identity_check_accepts_a_matching_board():
    defn = boardcheck.load_board("rp2040")
    ident = {
        "platform": "rp2",
        "machine": "Raspberry Pi Pico with RP2040",
        "release": "1.29.0",
        "version": [1, 29, 0],
        "mpy": 6 | (3 << 8) | (4 << 10),  # v6.3, armv6m
    }
    assert hil.identity_problems(ident, defn) == []
    s3 = boardcheck.load_board("esp32s3")
    ident_s3 = dict(
        ident, machine="Generic ESP32S3 module with ESP32S3", mpy=6 | (3 << 8) | (10 << 10)
    )
    assert hil.identity_problems(ident_s3, s3) == []
    assert hil.identity_problems(ident_s3, defn)  # an S3 is not a Pico
    # An RP2350 build may report armv7emsp: armv7m native code still loads.
    p2 = boardcheck.load_board("rp2350")
    ident_p2 = dict(ident, machine="Raspberry Pi Pico2 with RP2350", mpy=6 | (3 << 8) | (7 << 10))
    assert hil.identity_problems(ident_p2, p2) == []
    # ... but an armv6m (RP2040) build cannot load armv7m code.
    assert hil.identity_problems(dict(ident_p2, mpy=6 | (3 << 8) | (4 << 10)), p2)
    old = dict(ident, version=[1, 22, 2], mpy=6 | (2 << 8) | (4 << 10))
    assert len(hil.identity_problems(old, defn)) == 2
