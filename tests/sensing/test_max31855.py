"""MAX31855: datasheet frames, faults, bus faults, cryogenic correction."""

import pytest
from chips.bus import SpiBus
from chips.max31855 import Max31855Emu
from sensing_cases import FORUM, REPORTED_K
from sensing_frames import FrameChip

from cryo.sensing import max31855 as m55
from cryo.sensing.faults import FAULT_BUS, FAULT_D16, FAULT_OC, FAULT_SCG, FAULT_SCV

# DS55 Table 4: (°C, 14-bit TC code) and Table 5: (°C, 12-bit CJ code).
TC_TABLE = [
    (1600.00, 0b01100100000000),
    (1000.00, 0b00111110100000),
    (100.75, 0b00000110010011),
    (25.00, 0b00000001100100),
    (0.00, 0b00000000000000),
    (-0.25, 0b11111111111111),
    (-1.00, 0b11111111111100),
    (-250.00, 0b11110000011000),
]
CJ_TABLE = [
    (127.0000, 0b011111110000),
    (100.5625, 0b011001001001),
    (25.0000, 0b000110010000),
    (0.0000, 0b000000000000),
    (-0.0625, 0b111111111111),
    (-1.0000, 0b111111110000),
    (-20.0000, 0b111011000000),
    (-55.0000, 0b110010010000),
]


def frame(tc14, cj12, low=0, d16=0, d17=0):
    return (tc14 << 18) | (d17 << 17) | (d16 << 16) | (cj12 << 4) | low


def rig(tc_type="K"):
    bus = SpiBus()
    chip = FrameChip()
    drv = m55.MAX31855(bus, bus.attach(chip), tc_type)
    return chip, drv


@pytest.mark.parametrize("i", range(8))
def test_datasheet_frames_decode_exactly(i):
    chip, drv = rig()
    (tc_c, tc14), (cj_c, cj12) = TC_TABLE[i], CJ_TABLE[i]
    if tc14 == 0 and cj12 == 0:
        cj_c, cj12 = CJ_TABLE[2]  # 0x00000000 is a bus fault, tested separately
    chip.set_word(frame(tc14, cj12))
    assert drv.read_raw() == 0
    assert drv.tc_code * 0.25 == tc_c
    assert drv.cj_code * 0.0625 == cj_c
    assert drv.uncorrected == tc_c
    assert drv.cold_junction == cj_c


def test_every_table_pair_decodes():
    chip, drv = rig()
    for tc_c, tc14 in TC_TABLE:
        for cj_c, cj12 in CJ_TABLE:
            chip.set_word(frame(tc14, cj12) | 0x0)
            f = drv.read_raw()
            if tc14 == 0 and cj12 == 0:
                assert f == FAULT_BUS
                continue
            assert f == 0
            assert (drv.tc_code * 0.25, drv.cj_code * 0.0625) == (tc_c, cj_c)


@pytest.mark.parametrize(
    "low,want",
    [
        (0x1, FAULT_OC | FAULT_D16),
        (0x2, FAULT_SCG | FAULT_D16),
        (0x4, FAULT_SCV | FAULT_D16),
        (0x6, FAULT_SCG | FAULT_SCV | FAULT_D16),
    ],
)
def test_fault_bits(low, want):
    chip, drv = rig()
    chip.set_word(frame(100, 400, low=low, d16=1))
    assert drv.read_raw() == want
    assert drv.temperature is None
    assert drv.cold_junction == 25.0  # die temperature still valid


def test_open_input_frame_from_datasheet():
    chip, drv = rig()
    chip.set_word(frame(0x1FFF, 400, low=1, d16=1))
    assert drv.read_raw() == FAULT_OC | FAULT_D16
    assert drv.tc_code == 8191  # +2047.75 °C: would look warm
    # The open code alone (flags lost) is still rejected.
    chip.set_word(frame(0x1FFF, 400))
    assert drv.read_raw() & FAULT_OC


@pytest.mark.parametrize(
    "word",
    [
        0x00000000,
        0xFFFFFFFF,
        frame(100, 400, d17=1),  # reserved D17
        frame(100, 400) | 0x8,  # reserved D3
        frame(100, 400, d16=1),  # FAULT without a cause
        frame(100, 400, low=1),  # cause without FAULT
    ],
)
def test_bus_faults(word):
    chip, drv = rig()
    chip.set_word(word)
    assert drv.read_raw() & FAULT_BUS
    assert drv.temperature is None


def test_no_chip_reads_ones_and_is_a_bus_fault():
    bus = SpiBus()
    other = Max31855Emu()
    bus.attach(other)
    from chips.bus import CsPin

    class Floating:
        def select(self):
            pass

        def deselect(self):
            pass

        def transfer(self, w, r):
            for i in range(len(r)):
                r[i] = 0xFF

    drv = m55.MAX31855(bus, CsPin(bus, Floating()))
    assert drv.read_raw() == FAULT_BUS


def test_one_frame_per_reading():
    bus = SpiBus()
    emu = Max31855Emu()
    drv = m55.MAX31855(bus, bus.attach(emu))
    emu.set_state(-196.0, 25.0)
    drv.read_raw()
    assert (bus.transfers, emu.reads) == (1, 1)
    _ = drv.temperature, drv.cold_junction
    assert (bus.transfers, emu.reads) == (1, 1)  # conversion uses the same frame


# --- the chip's linear model and the correction (tables in sensing_cases.py) ---


@pytest.mark.parametrize("hot,row", REPORTED_K)
def test_linear_model_matches_reference_table(hot, row):
    for cj, want in zip((0, 20, 25, 35), row):
        assert m55.linear_reading("K", hot, cj) == pytest.approx(want, abs=0.006)


def test_t_variant_reads_about_minus_100_in_ln2():
    assert m55.linear_reading("T", -196, 25) == pytest.approx(-100.2, abs=0.05)
    assert m55.linear_reading("T", -100, 25) == pytest.approx(-58.8, abs=0.05)
    assert m55.linear_reading("T", -50, 25) == pytest.approx(-28.9, abs=0.05)


@pytest.mark.parametrize("shown,want", FORUM)
def test_correction_of_forum_bench_readings(shown, want):
    # The expected values come from NIST's inverse polynomial (error band up
    # to 0.06 °C); ours adds a Newton step, hence the 0.06 tolerance.
    assert m55.correct("K", shown, 23.75) == pytest.approx(want, abs=0.06)


def test_emulated_ln2_reading_and_correction():
    bus = SpiBus()
    emu = Max31855Emu("K")
    drv = m55.MAX31855(bus, bus.attach(emu))
    emu.set_state(-196.0, 25.0)
    assert drv.read_raw() == 0
    assert drv.uncorrected == -140.5  # what uncorrected drivers show
    assert drv.cold_junction == 25.0
    # One 0.25 °C LSB is ~0.65 °C true at -196 °C: quantisation bound.
    assert drv.temperature == pytest.approx(-196.0, abs=0.33)


@pytest.mark.parametrize("tc_type", ["K", "T"])
@pytest.mark.parametrize("hot", [-270, -260, -250, -230, -210, -200, -196, -150, -50, 0, 37, 300])
@pytest.mark.parametrize("cj", [-10.0, 0.0, 23.75, 45.0])
def test_emulated_round_trip_all_temperatures(tc_type, hot, cj):
    bus = SpiBus()
    emu = Max31855Emu(tc_type)
    drv = m55.MAX31855(bus, bus.attach(emu), tc_type)
    emu.set_state(float(hot), cj)
    if hot == 0 and cj == 0.0:
        # A true 0.00 °C / 0.0000 °C frame is 0x00000000: indistinguishable
        # from a stuck-low MISO, so it is rejected (the die never sits at
        # exactly 0 °C inside the device).
        assert drv.read_raw() == FAULT_BUS
        return
    assert drv.read_raw() == 0  # no exception, no fault at or below -200 °C
    t = drv.temperature
    assert t is not None
    # Half an LSB (0.125 °C) over the local slope ratio S_nom/S(T), plus CJ rounding.
    from cryo import thermocouple as tc

    s_nom = m55.S_NOM_MV[tc_type] * 1000
    lsb_true = 0.125 * s_nom / tc.seebeck_uv_per_c(tc_type, float(hot))
    assert t == pytest.approx(hot, abs=lsb_true + 0.05)
    assert drv.code_for(float(hot), drv.cold_junction) == pytest.approx(drv.tc_code, abs=1)


def test_code_for_turns_limits_into_raw_codes():
    bus = SpiBus()
    drv = m55.MAX31855(bus, bus.attach(Max31855Emu()))
    assert drv.code_for(-196.0, 25.0) == -562  # -140.5 °C on the chip's scale
    assert drv.code_for(25.0, 25.0) == 100
    # A colder true temperature always maps to a lower (or equal) code.
    codes = [drv.code_for(float(t), 22.0) for t in range(-270, 400, 5)]
    assert codes == sorted(codes)


def test_emulator_fault_injection_and_bus_modes():
    bus = SpiBus()
    emu = Max31855Emu()
    drv = m55.MAX31855(bus, bus.attach(emu))
    emu.set_state(-196.0, 25.0)
    emu.open_circuit = True
    assert drv.read_raw() == FAULT_OC | FAULT_D16 and drv.tc_code == 8191
    emu.open_circuit = False
    emu.short_gnd = True
    assert drv.read_raw() == FAULT_SCG | FAULT_D16
    assert drv.tc_code == -562  # plausible value: only the bits tell
    emu.short_gnd = False
    emu.short_vcc = True
    assert drv.read_raw() == FAULT_SCV | FAULT_D16
    emu.short_vcc = False
    for mode in ("zeros", "ones"):
        emu.bus = mode
        assert drv.read_raw() == FAULT_BUS
    emu.bus = None
    assert drv.read_raw() == 0


def test_emulator_updates_once_per_conversion_with_a_clock():
    from cryo.clock import ManualClock

    clk = ManualClock((1 << 30) - 30)  # crosses the tick wrap
    bus = SpiBus()
    emu = Max31855Emu(clock=clk)
    drv = m55.MAX31855(bus, bus.attach(emu))
    emu.set_state(0.0, 25.0)
    drv.read_raw()
    before = drv.tc_code
    assert before == 100  # still the power-up state (25 °C)
    clk.advance(69)
    drv.read_raw()
    assert drv.tc_code == before  # polled faster than t_CONV: same data
    clk.advance(1)
    drv.read_raw()
    assert drv.tc_code == 3  # 0 °C true reads +0.77 °C at CJ 25 °C (linear model)


def test_bad_variant():
    with pytest.raises(ValueError, match="allowed 'K' or 'T'"):
        m55.MAX31855(SpiBus(), None, "J")


# --- MicroPython ---------------------------------------------------------------


def test_raw_read_allocates_nothing_under_micropython(mpy):
    res = mpy.run(
        """
from chips.bus import SpiBus
from chips.max31855 import Max31855Emu
from cryo.sensing.max31855 import MAX31855
bus = SpiBus()
emu = Max31855Emu("K")
drv = MAX31855(bus, bus.attach(emu), "K")
emu.set_state(-196.0, 25.0)
ok = assert_no_alloc(drv.read_raw, 200)
good = [drv.faults, drv.tc_code, drv.cj_code, drv.temperature]
emu.open_circuit = True
ok2 = assert_no_alloc(drv.read_raw, 50)
oc = drv.faults
emu.open_circuit = False
emu.bus = "ones"
ok3 = assert_no_alloc(drv.read_raw, 50)
bus_f = drv.faults
emu.bus = None
drv.read_raw()
result([ok, ok2, ok3, good, oc, bus_f, bytes_per_call(lambda: drv.temperature, 20)])
"""
    )
    assert res[:3] == [True, True, True]
    assert res[3][:3] == [0, -562, 400]
    assert res[3][3] == pytest.approx(-196.0, abs=0.33)
    assert res[4] == FAULT_OC | FAULT_D16
    assert res[5] == FAULT_BUS
    assert res[6] == 0  # unchanged frame: the cached float (bench: a new one is 32 B)


def test_datasheet_frames_under_micropython(mpy):
    words = [frame(tc14, cj12) for (_, tc14), (_, cj12) in zip(TC_TABLE, CJ_TABLE)]
    res = mpy.run(
        """
from chips.bus import SpiBus, CsPin
from cryo.sensing.max31855 import MAX31855
class Chip:
    w = 0
    def select(self): self.p = 0
    def deselect(self): pass
    def transfer(self, wb, rb):
        for i in range(len(rb)):
            rb[i] = (self.w >> (24 - 8 * (self.p + i))) & 0xFF
        self.p += len(rb)
bus = SpiBus(); chip = Chip(); drv = MAX31855(bus, CsPin(bus, chip))
out = []
for w in %r:
    chip.w = w
    f = drv.read_raw()
    out.append([f, drv.tc_code, drv.cj_code])
result(out)
"""
        % (words,)
    )
    for (f, tcc, cjc), (tc_c, _), (cj_c, _) in zip(res, TC_TABLE, CJ_TABLE):
        if tc_c == 0 and cj_c == 0:
            assert f == FAULT_BUS
        else:
            assert f == 0 and tcc * 0.25 == tc_c and cjc * 0.0625 == cj_c


def test_fault_names_for_logs():
    from cryo.sensing.faults import describe

    assert describe(0) == "ok"
    assert describe(FAULT_OC | FAULT_D16) == "open,fault-bit"
    assert describe(FAULT_BUS) == "bus"
