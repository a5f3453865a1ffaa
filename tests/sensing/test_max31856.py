"""MAX31856: register map, datasheet formats, conversions, faults, config."""

import pytest
from chips.bus import SpiBus
from chips.max31856 import Max31856Emu

from cryo.clock import ManualClock
from cryo.sensing import max31856 as m56
from cryo.sensing.faults import (
    FAULT_BUS,
    FAULT_CJ_HIGH,
    FAULT_CJ_LOW,
    FAULT_CJ_RANGE,
    FAULT_CONFIG,
    FAULT_OC,
    FAULT_OVUV,
    FAULT_TC_HIGH,
    FAULT_TC_LOW,
    FAULT_TC_RANGE,
    FAULT_TIMEOUT,
)

DEFAULTS = [0x00, 0x03, 0xFF, 0x7F, 0xC0, 0x7F, 0xFF, 0x80, 0x00, 0x00, 0, 0, 0, 0, 0, 0]


def rig(clock=None, tc_type="K", **kw):
    bus = SpiBus()
    emu = Max31856Emu(tc_type, clock=clock)
    drv = m56.MAX31856(bus, bus.attach(emu), tc_type, clock=clock, **kw)
    return bus, emu, drv


def convert(drv, emu, clk, hot, cold):
    emu.set_state(hot, cold)
    drv.start()
    clk.advance(drv.conv_max_ms)
    assert drv.ready()
    return drv.collect()


# --- register map and SPI protocol -------------------------------------------


def test_factory_defaults():
    assert list(Max31856Emu().regs) == DEFAULTS


def test_register_reads_writes_and_wrap():
    bus = SpiBus()
    emu = Max31856Emu()
    cs = bus.attach(emu)
    rx = bytearray(4)
    cs.value(0)
    bus.write(bytearray([0x0E]))
    bus.readinto(rx)  # 0Eh, 0Fh, then invalid 10h, 11h
    cs.value(1)
    assert list(rx) == [0, 0, 0xFF, 0xFF]
    cs.value(0)
    bus.write(bytearray([0x83, 0x12, 0x34]))  # CJHF, CJLF (auto-increment)
    cs.value(1)
    assert (emu.regs[3], emu.regs[4]) == (0x12, 0x34)
    cs.value(0)
    bus.write(bytearray([0x8C, 0x55]))  # LTCBH is read-only
    cs.value(1)
    assert emu.regs[12] == 0
    cs.value(0)
    bus.write(bytearray([0x8A, 0x55]))  # CJTH read-only while the CJ sensor is on
    cs.value(1)
    assert emu.regs[10] == 0
    rx = bytearray(3)
    cs.value(0)
    bus.write_readinto(bytearray([0x7F, 0x00, 0x00]), rx)  # 7Fh (invalid), wraps to 00h
    cs.value(1)
    assert list(rx) == [0x00, 0xFF, 0x00]


def test_driver_configuration_registers():
    _, emu, drv = rig(
        tc_type="T",
        averaging=16,
        mains_hz=60,
        oc_mode=2,
        latched=True,
        tc_low_c=-200.0,
        tc_high_c=100.5,
        cj_low_c=-10,
        cj_high_c=60,
        cj_offset_c=-0.5,
        fault_mask=0x00,
    )
    r = emu.regs
    assert r[0] == 0x20 | 0x04  # OCFAULT=10, interrupt mode, 60 Hz, normally off
    assert r[1] == 0x40 | 0x07  # AVGSEL=1xx (16), type T
    assert r[2] == 0x00
    assert (r[3], r[4]) == (60, 0xF6)
    assert (r[5] << 8 | r[6]) == 0x0648  # 100.5 °C x 16
    assert (r[7] << 8 | r[8]) == 0xF380  # -200 °C x 16, two's complement
    assert r[9] == 0xF8  # -0.5 °C x 16
    assert drv.verify_config()


def test_defaults_enable_open_circuit_detection():
    _, emu, drv = rig()
    assert emu.regs[0] & 0x30 == 0x10  # OCFAULT = 01: never 00
    assert emu.regs[0] & 0x01  # 50 Hz notch by default (Europe; 60 selectable)
    assert emu.regs[2] == 0x00  # every fault drives the FAULT pin


@pytest.mark.parametrize(
    "kw,msg",
    [
        ({"oc_mode": 0}, "open-circuit detection must stay enabled"),
        ({"averaging": 3}, "use 1, 2, 4, 8 or 16"),
        ({"mains_hz": 55}, "use 50 or 60"),
        ({"tc_type": "J"}, "allowed 'K' or 'T'"),
        ({"cj_offset_c": 9.0}, "allowed -8 to 7.9375"),
        ({"tc_high_c": 3000.0}, "tc_high_c"),
    ],
)
def test_bad_configuration_is_refused(kw, msg):
    with pytest.raises(ValueError, match=msg):
        rig(**kw)


# --- datasheet data formats (DS56 Tables 2 and 3) ------------------------------

CJ_FORMAT = [
    (127.984375, 0b0111111111111100),
    (127.0, 0b0111111100000000),
    (125.0, 0b0111110100000000),
    (64.0, 0b0100000000000000),
    (25.0, 0b0001100100000000),
    (0.5, 0b0000000010000000),
    (0.015625, 0b0000000000000100),
    (0.0, 0b0000000000000000),
    (-0.5, 0b1111111110000000),
    (-25.0, 0b1110011100000000),
    (-55.0, 0b1100100100000000),
]
TC_FORMAT = [
    (1600.0, 0b011001000000000000000000),
    (1000.0, 0b001111101000000000000000),
    (100.9375, 0b000001100100111100000000),
    (25.0, 0b000000011001000000000000),
    (0.0625, 0b000000000000000100000000),
    (0.0, 0b000000000000000000000000),
    (-0.0625, 0b111111111111111100000000),
    (-0.25, 0b111111111111110000000000),
    (-1.0, 0b111111111111000000000000),
    (-250.0, 0b111100000110000000000000),
]


@pytest.mark.parametrize("cj_c,cj_word", CJ_FORMAT)
@pytest.mark.parametrize("tc_c,tc_word", TC_FORMAT)
def test_datasheet_formats_decode_exactly(cj_c, cj_word, tc_c, tc_word):
    _, emu, drv = rig(verify_every=0)
    r = emu.regs
    r[10], r[11] = cj_word >> 8, cj_word & 0xFF
    r[12], r[13], r[14] = tc_word >> 16, (tc_word >> 8) & 0xFF, tc_word & 0xFF
    r[15] = 0
    f = drv.collect()
    if cj_word == 0 and tc_word == 0:
        assert f == FAULT_BUS  # six zero bytes: stuck-low MISO
        return
    assert f == 0
    assert drv.cj_code * m56.CJ_LSB_C == cj_c
    assert drv.tc_code * m56.TC_LSB_C == tc_c
    assert drv.temperature == tc_c and drv.cold_junction == cj_c


@pytest.mark.parametrize(
    "sr,want",
    [
        (0x01, FAULT_OC),
        (0x02, FAULT_OVUV),
        (0x04, FAULT_TC_LOW),
        (0x08, FAULT_TC_HIGH),
        (0x10, FAULT_CJ_LOW),
        (0x20, FAULT_CJ_HIGH),
        (0x40, FAULT_TC_RANGE),
        (0x80, FAULT_CJ_RANGE),
        (0xC3, FAULT_CJ_RANGE | FAULT_TC_RANGE | FAULT_OVUV | FAULT_OC),
    ],
)
def test_fault_status_register_decoding(sr, want):
    _, emu, drv = rig(verify_every=0)
    emu.regs[10] = 0x19  # CJ 25 °C
    emu.regs[15] = sr
    assert drv.collect() == want
    assert drv.sr == sr
    assert drv.temperature is None


# --- conversions -----------------------------------------------------------------


@pytest.mark.parametrize(
    "kw,typ_ms",
    [
        ({"mains_hz": 60}, 143 + 13),
        ({"mains_hz": 50}, 169 + 13),
        ({"mains_hz": 50, "averaging": 4, "oc_mode": 2}, 169 + 3 * 40 + 33),
        ({"mains_hz": 60, "averaging": 16, "oc_mode": 3}, 143 + 15 * 33 + 113),
    ],
)
def test_one_shot_takes_the_datasheet_time_and_never_blocks(kw, typ_ms):
    clk = ManualClock((1 << 30) - 100)  # conversions across the tick wrap
    bus, emu, drv = rig(clk, **kw)
    emu.set_state(-196.0, 25.0)
    drv.start()
    n0 = bus.transfers
    clk.advance(drv.conv_typ_ms - 1)
    assert not drv.ready()
    assert bus.transfers == n0  # not even polled before the typical time
    waited = drv.conv_typ_ms - 1
    while not drv.ready():
        clk.advance(1)
        waited += 1
    assert waited == typ_ms
    assert drv.collect() == 0
    assert drv.temperature == pytest.approx(-196.0, abs=1 / 128)


def test_each_reading_needs_one_conversion_and_poll_keeps_one_in_flight():
    clk = ManualClock()
    _, emu, drv = rig(clk)
    emu.set_state(-100.0, 22.0)
    got = 0
    for _ in range(100):  # 100 ticks of 10 ms = 1 s
        if drv.poll():
            got += 1
        clk.advance(10)
    assert got == emu.conversions - 1 or got == emu.conversions
    assert 4 <= got <= 6  # ~182 ms per conversion at 50 Hz
    assert drv.temperature == pytest.approx(-100.0, abs=1 / 128)


@pytest.mark.parametrize("tc_type", ["K", "T"])
@pytest.mark.parametrize("hot", [-200.0, -196.0, -150.0, -40.0, 0.0, 37.0, 250.0])
def test_on_chip_linearization(tc_type, hot):
    clk = ManualClock()
    _, emu, drv = rig(clk, tc_type=tc_type)
    assert convert(drv, emu, clk, hot, 23.0) == 0
    assert drv.temperature == pytest.approx(hot, abs=0.5 / 128 + 1e-6)
    assert drv.code_for(hot) == pytest.approx(drv.tc_code, abs=1)
    assert drv.cold_junction == 23.0


def test_below_lut_range_clamps_and_sets_tc_range():
    clk = ManualClock()
    _, emu, drv = rig(clk)
    assert convert(drv, emu, clk, -230.0, 25.0) == FAULT_TC_RANGE
    assert drv.tc_code == -200 * 128
    assert drv.temperature is None


def test_cold_junction_offset_trim():
    clk = ManualClock()
    _, emu, drv = rig(clk, cj_offset_c=1.5)
    assert convert(drv, emu, clk, -196.0, 25.0) == 0
    assert drv.cold_junction == 26.5
    # The chip believes the CJ is 1.5 °C warmer: the hot junction reads warmer too.
    assert drv.temperature > -196.0 + 1.0


def test_open_circuit_is_detected_and_would_look_warm_without_detection():
    clk = ManualClock()
    bus, emu, drv = rig(clk)
    emu.open_circuit = True
    assert convert(drv, emu, clk, -196.0, 25.0) & FAULT_OC
    assert drv.temperature is None
    # What drivers that leave OCFAULT = 00 see: a warm, valid-looking reading.
    cs = bus.attach(emu)
    cs.value(0)
    bus.write(bytearray([0x80, 0x40]))  # CR0: 1SHOT, OCFAULT=00
    cs.value(1)
    clk.advance(300)
    rx = bytearray(6)
    cs.value(0)
    bus.write(bytearray([0x0A]))
    bus.readinto(rx)
    cs.value(1)
    tc = ((rx[2] << 16 | rx[3] << 8 | rx[4]) >> 5) / 128
    assert rx[5] == 0 and tc == pytest.approx(25.0, abs=0.1)


def test_short_is_ovuv_and_data_go_stale():
    clk = ManualClock()
    _, emu, drv = rig(clk)
    assert convert(drv, emu, clk, -196.0, 25.0) == 0
    before = drv.tc_code
    emu.short_gnd = True
    assert convert(drv, emu, clk, 20.0, 25.0) == FAULT_OVUV
    assert drv.tc_code == before
    emu.short_gnd = False
    assert convert(drv, emu, clk, 20.0, 25.0) == 0


def test_cj_range():
    clk = ManualClock()
    _, emu, drv = rig(clk)
    assert convert(drv, emu, clk, 0.0, -60.0) & FAULT_CJ_RANGE


def test_thresholds_comparator_mode_with_hysteresis():
    clk = ManualClock()
    _, emu, drv = rig(clk, tc_low_c=-198.0, tc_high_c=30.0, cj_low_c=5, cj_high_c=40)
    assert convert(drv, emu, clk, 31.0, 25.0) == FAULT_TC_HIGH
    assert convert(drv, emu, clk, 29.0, 25.0) == FAULT_TC_HIGH  # within 2 °C hysteresis
    assert convert(drv, emu, clk, 27.9, 25.0) == 0
    assert convert(drv, emu, clk, -199.0, 25.0) == FAULT_TC_LOW
    assert convert(drv, emu, clk, -190.0, 25.0) == 0
    assert convert(drv, emu, clk, 20.0, 41.0) == FAULT_CJ_HIGH
    assert convert(drv, emu, clk, 20.0, 4.0) == FAULT_CJ_LOW
    assert convert(drv, emu, clk, 20.0, 25.0) == 0


def test_latched_mode_holds_faults_until_cleared():
    clk = ManualClock()
    _, emu, drv = rig(clk, latched=True, tc_high_c=30.0)
    assert convert(drv, emu, clk, 35.0, 25.0) == FAULT_TC_HIGH
    assert convert(drv, emu, clk, 20.0, 25.0) == FAULT_TC_HIGH  # latched
    drv.clear_faults()
    assert convert(drv, emu, clk, 20.0, 25.0) == 0


@pytest.mark.parametrize("mode", ["zeros", "ones"])
def test_bus_faults(mode):
    clk = ManualClock()
    _, emu, drv = rig(clk)
    emu.bus = mode
    emu.set_state(0.0, 25.0)
    drv.start()
    clk.advance(drv.conv_max_ms)
    if mode == "ones":
        assert not drv.ready()  # 1SHOT reads set forever
        clk.advance(drv.conv_max_ms)
        assert drv.ready()  # until the timeout
        assert drv.collect() == FAULT_BUS | FAULT_TIMEOUT
    else:
        assert drv.ready()
        assert drv.collect() == FAULT_BUS


def test_brown_out_is_repaired():
    clk = ManualClock()
    _, emu, drv = rig(clk, verify_every=2, tc_high_c=100.0)
    assert convert(drv, emu, clk, 0.0, 25.0) == 0
    emu.regs[:] = bytearray(DEFAULTS)  # chip reset: CR0 = 00h, OC detection off
    drv.start()
    assert emu.regs[0] & 0x30 == 0x10  # start() rewrote CR0 at once
    clk.advance(drv.conv_max_ms)
    drv.ready()
    assert drv.collect() == FAULT_CONFIG  # thresholds were lost: reported ...
    assert (emu.regs[5] << 8 | emu.regs[6]) == 1600  # ... and rewritten
    assert convert(drv, emu, clk, 0.0, 25.0) == 0


def test_wrong_type_setting_gives_wrong_temperature():
    # Probe is K, chip told T: the error the reference lists as cause #1.
    clk = ManualClock()
    bus = SpiBus()
    emu = Max31856Emu("K", clock=clk)
    drv = m56.MAX31856(bus, bus.attach(emu), "T", clock=clk)
    assert convert(drv, emu, clk, -150.0, 25.0) == 0
    assert abs(drv.temperature - -150.0) > 5.0


# --- MicroPython ---------------------------------------------------------------


def test_poll_and_collect_allocate_nothing_under_micropython(mpy):
    res = mpy.run(
        """
from chips.bus import SpiBus
from chips.max31856 import Max31856Emu
from cryo.sensing.max31856 import MAX31856
from cryo.clock import ManualClock
clk = ManualClock((1 << 30) - 5000)
bus = SpiBus()
emu = Max31856Emu("K", clock=clk)
drv = MAX31856(bus, bus.attach(emu), "K", averaging=4, clock=clk, verify_every=3)
emu.set_state(-196.0, 25.0)
n = [0]
def tick():
    clk.advance(20)
    drv.poll()
ok = assert_no_alloc(tick, 300)
emu.open_circuit = True
ok2 = assert_no_alloc(tick, 100)
f_open = drv.faults
emu.open_circuit = False
tick(); clk.advance(400); tick(); clk.advance(400); tick()
tc = drv.tc_code
def new():
    drv.tc_code ^= 1  # a new code each call: the cached float misses
    return drv.temperature
result([ok, ok2, f_open, drv.faults, tc, emu.conversions,
        bytes_per_call(lambda: drv.temperature, 20), bytes_per_call(new, 20)])
"""
    )
    assert res[0] and res[1]
    assert res[2] & FAULT_OC
    assert res[3] == 0 and res[4] == -196 * 128
    assert res[5] > 10
    assert res[6] == 0  # unchanged reading: the same float object again
    assert 0 < res[7] <= 32  # a new reading: one boxed float


def test_fault_pin_follows_mask_and_drdy_follows_reads():
    clk = ManualClock()
    _, emu, drv = rig(clk, tc_high_c=30.0, fault_mask=0x08)  # TCHIGH masked
    assert emu.fault_pin == 1 and emu.drdy == 1
    emu.set_state(35.0, 25.0)
    drv.start()
    clk.advance(drv.conv_max_ms)
    assert drv.ready()
    assert emu.drdy == 0  # result waiting
    assert drv.collect() == FAULT_TC_HIGH
    assert emu.drdy == 1  # released by reading CJTH..LTCBL
    assert emu.fault_pin == 1  # masked: SR bit set, pin stays high
    emu.open_circuit = True
    assert convert(drv, emu, clk, 35.0, 25.0) & FAULT_OC
    assert emu.fault_pin == 0  # OPEN is not masked
    emu.open_circuit = False
    assert convert(drv, emu, clk, -230.0, 25.0) == FAULT_TC_RANGE
    assert emu.fault_pin == 1  # range bits never drive the pin


def test_shared_bus_with_a_max31855_needs_the_mode_switch():
    from chips.max31855 import Max31855Emu

    from cryo.sensing.max31855 import MAX31855

    clk = ManualClock()
    bus = SpiBus(phase=0)  # board brought the bus up in mode 0 (MAX31855)
    e55 = Max31855Emu("K")
    e56 = Max31856Emu("K", clock=clk)
    d55 = MAX31855(bus, bus.attach(e55), "K", spi_mode_switch=True)
    d56 = m56.MAX31856(bus, bus.attach(e56), "K", clock=clk, spi_mode_switch=True)
    e55.set_state(-196.0, 25.0)
    e56.set_state(-196.0, 25.0)
    for _ in range(3):
        assert d55.read_raw() == 0 and d55.tc_code == -562
        assert convert(d56, e56, clk, -196.0, 25.0) == 0
        assert d56.tc_code == -196 * 128
    # Without the switch the MAX31856 is read on the wrong edge: every byte
    # is shifted one bit; the driver reports it instead of a temperature.
    e56b = Max31856Emu("K", clock=clk)
    bad = m56.MAX31856(bus, bus.attach(e56b), "K", clock=clk, verify_every=1)
    bus.init(phase=0)
    e56b.set_state(-196.0, 25.0)
    bad.start()
    clk.advance(2 * bad.conv_max_ms)
    assert bad.ready()
    assert bad.collect() != 0
    assert bad.temperature is None


def test_mode_switch_allocates_nothing_under_micropython(mpy):
    res = mpy.run(
        """
from chips.bus import SpiBus
from chips.max31855 import Max31855Emu
from chips.max31856 import Max31856Emu
from cryo.sensing.max31855 import MAX31855
from cryo.sensing.max31856 import MAX31856
from cryo.clock import ManualClock
clk = ManualClock()
bus = SpiBus(phase=0)
e55 = Max31855Emu("K"); e56 = Max31856Emu("K", clock=clk)
d55 = MAX31855(bus, bus.attach(e55), "K", spi_mode_switch=True)
d56 = MAX31856(bus, bus.attach(e56), "K", clock=clk, spi_mode_switch=True)
e55.set_state(-196.0, 25.0); e56.set_state(-196.0, 25.0)
def tick():
    clk.advance(20)
    d55.read_raw()
    d56.poll()
ok = assert_no_alloc(tick, 200)
result([ok, d55.faults, d55.tc_code, d56.faults, d56.tc_code, bus.inits > 200])
"""
    )
    assert res == [True, 0, -562, 0, -196 * 128, True]
