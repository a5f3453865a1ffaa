"""Channel supervision: every rule trips and recovers."""

import pytest
from chips.bus import SpiBus
from chips.max31855 import Max31855Emu
from chips.max31856 import Max31856Emu

from cryo.clock import ManualClock
from cryo.sensing.max31855 import MAX31855
from cryo.sensing.max31856 import MAX31856
from cryo.supervision import channel as ch
from cryo.supervision.channel import (
    ST_BUS,
    ST_CJ_RANGE,
    ST_NO_DATA,
    ST_OK,
    ST_RANGE,
    ST_RATE,
    ST_SENSOR,
    ST_STALE,
    ST_STUCK,
    ST_SUSPECT,
    Calibration,
    Channel,
)

WRAP = (1 << 30) - 700  # every scenario crosses the 32-bit tick wrap


class Rig:
    """A MAX31855 channel on the emulated chip, stepped every 100 ms."""

    def __init__(self, chip="55", start=WRAP, **kw):
        self.clk = ManualClock(start)
        bus = SpiBus()
        if chip == "55":
            self.emu = Max31855Emu("K")
            self.drv = MAX31855(bus, bus.attach(self.emu), "K")
        else:
            self.emu = Max31856Emu("K", clock=self.clk)
            self.drv = MAX31856(bus, bus.attach(self.emu), "K", clock=self.clk)
        self.ch = Channel("tissue", self.drv, self.clk, **kw)
        self.hot = 20.0
        self.cold = 25.0
        self.emu.set_state(self.hot, self.cold)

    def set(self, hot=None, cold=None):
        if hot is not None:
            self.hot = hot
        if cold is not None:
            self.cold = cold
        self.emu.set_state(self.hot, self.cold)

    def step(self, n=1, ms=100):
        for _ in range(n):
            self.clk.advance(ms)
            self.ch.update(self.clk.ticks_ms())
            out = self.ch.convert()
        return out


def test_first_reading_and_supervised_tuple():
    r = Rig()
    assert r.ch.status == ST_NO_DATA and r.ch.reading()[0] is None
    t, cj, st = r.step()
    assert st == ST_OK and cj == 25.0
    assert t == pytest.approx(20.0, abs=0.2)


@pytest.mark.parametrize(
    "attr,value,status",
    [
        ("open_circuit", True, ST_SENSOR),
        ("short_gnd", True, ST_SENSOR),
        ("short_vcc", True, ST_SENSOR),
        ("bus", "zeros", ST_BUS),
        ("bus", "ones", ST_BUS),
    ],
)
def test_chip_and_bus_faults_debounce_then_trip_then_recover(attr, value, status):
    r = Rig(debounce=3, recover=5)
    r.step(3)
    setattr(r.emu, attr, value)
    # 1st and 2nd bad frame: value withheld at once, fault not yet declared.
    for _ in range(2):
        t, _, st = r.step()
        assert (t, st) == (None, ST_SUSPECT)
    t, _, st = r.step()
    assert (t, st) == (None, status)  # 3rd in a row: fault
    assert r.ch.reason == ch.REASONS[status]
    assert r.ch.trips == 1
    r.step(10)
    assert r.ch.status == status
    setattr(r.emu, attr, None if attr == "bus" else False)
    for _ in range(4):
        assert r.step()[2] == status  # needs 5 good readings
    t, _, st = r.step()
    assert st == ST_OK and t == pytest.approx(20.0, abs=0.2)


def test_single_glitch_never_trips():
    r = Rig(debounce=3)
    r.step(2)
    for _ in range(20):
        r.emu.short_gnd = True
        assert r.step()[2] == ST_SUSPECT
        r.emu.short_gnd = False
        assert r.step()[2] == ST_OK
    assert r.ch.trips == 0


def test_debounce_is_configurable():
    r = Rig(debounce=1)
    r.step(2)
    r.emu.open_circuit = True
    assert r.step()[2] == ST_SENSOR


def test_open_sensor_never_looks_warm():
    r = Rig()
    r.set(hot=-150.0)
    r.step(50)  # settle through the rate limit
    r.emu.open_circuit = True  # chip code 0x1FFF = +2047.75 °C
    for _ in range(20):
        t, _, st = r.step()
        assert t is None and st != ST_OK


def test_range_limits_trip_and_recover():
    r = Rig(t_min_c=-205.0, t_max_c=45.0, max_rate_c_s=1000.0)
    r.step(2)
    r.set(hot=50.0)
    assert [r.step()[2] for _ in range(3)] == [ST_SUSPECT, ST_SUSPECT, ST_RANGE]
    r.set(hot=30.0)
    r.step(5)
    assert r.ch.status == ST_OK
    # Colder than LN2 can make it: implausible (e.g. a reading of -230 °C).
    r.set(hot=-230.0)
    r.step(3)
    assert r.ch.status == ST_RANGE
    r.set(hot=-196.0)
    r.step(5)
    assert r.ch.status == ST_OK
    assert r.ch.temperature_c == pytest.approx(-196.0, abs=0.4)


def test_range_limit_follows_the_cold_junction():
    # On the MAX31855 the raw code of -205 °C moves with the CJ.
    r = Rig(t_min_c=-205.0, max_rate_c_s=1000.0)
    r.set(hot=-200.0, cold=10.0)
    r.step(5)
    lo_10 = r.ch.code_lo
    r.set(cold=40.0)
    r.step(5)
    assert r.ch.code_lo > lo_10
    assert r.ch.status == ST_OK


def test_cold_junction_range():
    r = Rig(cj_min_c=0.0, cj_max_c=50.0)
    r.step(2)
    r.set(cold=55.0)
    r.step(3)
    assert r.ch.status == ST_CJ_RANGE
    r.set(cold=-5.0)
    r.step(3)
    assert r.ch.status == ST_CJ_RANGE
    r.set(cold=25.0)
    r.step(5)
    assert r.ch.status == ST_OK


def test_rate_of_change_trips_and_heals():
    r = Rig(max_rate_c_s=20.0, rate_noise_c=2.0, debounce=3, recover=3)
    r.step(5)
    r.set(hot=-100.0)  # 120 °C in 100 ms: impossible for a tissue probe
    assert [r.step()[2] for _ in range(3)] == [ST_SUSPECT, ST_SUSPECT, ST_RATE]
    # The rate limit is against the last good reading and time: once enough
    # time has passed for the change to be physically possible it clears.
    r.step(60)
    assert r.ch.status == ST_OK
    assert r.ch.temperature_c == pytest.approx(-100.0, abs=0.4)


def test_fast_but_plausible_cooling_passes():
    r = Rig(max_rate_c_s=20.0)
    r.step(3)
    t = 20.0
    while t > -190.0:
        t -= 1.5  # 15 °C/s
        r.set(hot=t)
        assert r.step()[2] == ST_OK


def test_spike_is_rejected_without_trip():
    r = Rig(max_rate_c_s=20.0)
    r.step(3)
    r.set(hot=-150.0)
    assert r.step()[2] == ST_SUSPECT
    r.set(hot=20.0)
    assert r.step()[2] == ST_OK
    assert r.ch.trips == 0


def test_stuck_reading_trips_only_while_change_is_expected():
    r = Rig(stuck_ms=5000, expect_change=True)
    r.step(49)
    assert r.ch.status == ST_OK
    r.step(2)
    assert r.ch.status == ST_STUCK and r.ch.temperature_c is None
    r.set(hot=19.0)  # the value moves again
    r.step(5)
    assert r.ch.status == ST_OK
    r.ch.expect_change(False)
    r.step(100)
    assert r.ch.status == ST_OK


def test_stale_reading():
    # A MAX31856 whose conversion never finishes, on a driver without a clock
    # (so no conversion timeout either): no new sample for stale_ms.
    clk = ManualClock(WRAP)
    bus = SpiBus()
    emu = Max31856Emu("K", clock=clk)
    drv = MAX31856(bus, bus.attach(emu), "K")
    c = Channel("aux", drv, clk, stale_ms=1000)

    def step(n):
        for _ in range(n):
            clk.advance(100)
            c.update(clk.ticks_ms())
            c.convert()

    step(10)
    assert c.status == ST_OK
    emu.clock = None  # the running conversion never completes
    step(7)
    assert c.status == ST_OK
    step(5)
    assert c.status == ST_STALE and c.temperature_c is None
    emu.clock = clk
    step(20)
    assert c.status == ST_OK


def test_max31856_conversion_timeout_is_a_bus_fault():
    r = Rig(chip="56", stale_ms=5000)
    r.step(10)
    r.emu.bus = "ones"
    r.step(30)
    assert r.ch.status == ST_BUS
    r.emu.bus = None
    r.step(40)
    assert r.ch.status == ST_OK


def test_max31856_channel_in_ln2():
    r = Rig(chip="56")
    r.set(hot=-196.0)
    r.step(40)
    assert r.ch.status == ST_OK
    assert r.ch.temperature_c == pytest.approx(-196.0, abs=0.01)


def test_two_point_calibration():
    cal = Calibration(m1=-193.0, r1=-195.8, m2=1.0, r2=0.0)
    r = Rig(calibration=cal)
    r.set(hot=-193.0)
    r.step(60)
    assert r.ch.temperature_c == pytest.approx(-195.8, abs=0.4)
    assert cal.apply(cal.invert(-100.0)) == pytest.approx(-100.0)
    assert Calibration.from_config(None) is None
    c2 = Calibration.from_config({"m1": -190.0, "r1": -195.8, "m2": 0.5, "r2": 0.0})
    assert c2.apply(0.5) == pytest.approx(0.0)


@pytest.mark.parametrize(
    "args,msg",
    [((-196.0, -195.8, -190.0, -190.0), "too close"), ((-100.0, -195.8, 0.0, 0.0), "implausible")],
)
def test_calibration_rejects_bad_points(args, msg):
    with pytest.raises(ValueError, match=msg):
        Calibration(*args)


@pytest.mark.parametrize(
    "kw,msg",
    [
        ({"debounce": 0}, "debounce"),
        ({"t_min_c": 50.0, "t_max_c": 40.0}, "t_min_c"),
        ({"max_rate_c_s": 0}, "max_rate_c_s"),
        ({"stale_ms": 0}, "stale_ms"),
    ],
)
def test_bad_channel_configuration(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Rig(**kw)


# --- MicroPython ---------------------------------------------------------------


def test_channel_update_allocates_nothing_under_micropython(mpy):
    res = mpy.run(
        """
from chips.bus import SpiBus
from chips.max31855 import Max31855Emu
from chips.max31856 import Max31856Emu
from cryo.sensing.max31855 import MAX31855
from cryo.sensing.max31856 import MAX31856
from cryo.supervision.channel import Channel
from cryo.clock import ManualClock
clk = ManualClock((1 << 30) - 3000)
bus = SpiBus()
e55 = Max31855Emu("K"); d55 = MAX31855(bus, bus.attach(e55), "K")
e56 = Max31856Emu("K", clock=clk); d56 = MAX31856(bus, bus.attach(e56), "K", clock=clk)
c55 = Channel("tissue", d55, clk, stuck_ms=2000, expect_change=False)
c56 = Channel("aux", d56, clk, stale_ms=1000)
e55.set_state(-196.0, 25.0); e56.set_state(-196.0, 25.0)
for i in range(60):
    clk.advance(50); c55.update(clk.ticks_ms()); c55.convert(); c56.update(clk.ticks_ms()); c56.convert()
def tick():
    clk.advance(50)
    now = clk.ticks_ms()
    c55.update(now)
    c56.update(now)
out = [c55.status, c56.status]
out.append(assert_no_alloc(tick, 30))          # healthy
e55.open_circuit = True; e56.open_circuit = True
out.append(assert_no_alloc(tick, 30))          # faults tripping
out += [c55.status, c56.status]
e55.open_circuit = False; e56.open_circuit = False
e55.bus = "zeros"
out.append(assert_no_alloc(tick, 30))
out.append(c55.status)
e55.bus = None
c55.expect_change(True)
out.append(assert_no_alloc(tick, 100))         # recovery, then stuck
out.append(c55.status)
result(out)
"""
    )
    assert res[:2] == [ST_OK, ST_OK]
    assert res[2] is True and res[3] is True
    assert res[4:6] == [ST_SENSOR, ST_SENSOR]
    assert res[6] is True and res[7] == ST_BUS
    assert res[8] is True and res[9] == ST_STUCK


def test_fault_clears_the_number_in_the_integer_path_already():
    # A consumer reading ch.temperature_c between update() and convert()
    # must not see the last good value once the sample is bad.
    r = Rig()
    r.step(3)
    assert r.ch.temperature_c is not None
    r.emu.open_circuit = True
    r.clk.advance(100)
    assert r.ch.update(r.clk.ticks_ms()) == ST_SUSPECT
    assert r.ch.temperature_c is None
