"""Sensing scenarios that run unchanged under MicroPython and CPython.

Each ``case_*`` function builds real drivers on the emulated chips (through
the :mod:`chips.bus` SPI double), runs a scenario and raises AssertionError
on any deviation. ``run_all()`` runs every case and returns ``{name: "ok" |
error text}``; test_on_micropython.py runs it under the real MicroPython
unix port and under CPython, one pytest item per case.
"""

import sys

import sensing_nist as nist
from chips.bus import CsPin, SpiBus
from chips.max31855 import Max31855Emu
from chips.max31856 import Max31856Emu
from sensing_f32mpy import F32, float32_errors, run32

from cryo import thermocouple as tc
from cryo.clock import ManualClock
from cryo.sensing import max31855 as m55
from cryo.sensing import max31856 as m56
from cryo.sensing.faults import (
    FAULT_BUS,
    FAULT_CJ_HIGH,
    FAULT_CJ_LOW,
    FAULT_CJ_RANGE,
    FAULT_CONFIG,
    FAULT_D16,
    FAULT_OC,
    FAULT_OVUV,
    FAULT_SCG,
    FAULT_SCV,
    FAULT_TC_HIGH,
    FAULT_TC_LOW,
    FAULT_TC_RANGE,
    FAULT_TIMEOUT,
)
from cryo.supervision import channel as chm

WRAP = (1 << 30) - 700  # scenarios cross the 32-bit tick wrap
# The interpreter computes in IEEE single precision (most boards, and the
# 32-bit build the suite runs on as well): a value's last bits differ.
FLOAT32 = 1.0 + 2.0**-30 == 1.0


def f32_slack(x):
    """Rounding a float32 evaluation of a polynomial can add near ``x``
    (a few units in the last place; nothing in double)."""
    return 1e-9 + (abs(x) * 4e-7 + 1e-7 if FLOAT32 else 0.0)


# DS55 Table 4 (°C, 14-bit TC) and Table 5 (°C, 12-bit CJ).
DS55_TC = (
    (1600.00, 0b01100100000000),
    (1000.00, 0b00111110100000),
    (100.75, 0b00000110010011),
    (25.00, 0b00000001100100),
    (0.00, 0b00000000000000),
    (-0.25, 0b11111111111111),
    (-1.00, 0b11111111111100),
    (-250.00, 0b11110000011000),
)
DS55_CJ = (
    (127.0000, 0b011111110000),
    (100.5625, 0b011001001001),
    (25.0000, 0b000110010000),
    (0.0000, 0b000000000000),
    (-0.0625, 0b111111111111),
    (-1.0000, 0b111111110000),
    (-20.0000, 0b111011000000),
    (-55.0000, 0b110010010000),
)
# DS56 Tables 2 and 3.
DS56_CJ = (
    (127.984375, 0x7FFC),
    (127.0, 0x7F00),
    (125.0, 0x7D00),
    (64.0, 0x4000),
    (25.0, 0x1900),
    (0.5, 0x0080),
    (0.015625, 0x0004),
    (0.0, 0x0000),
    (-0.5, 0xFF80),
    (-25.0, 0xE700),
    (-55.0, 0xC900),
)
DS56_TC = (
    (1600.0, 0x640000),
    (1000.0, 0x3E8000),
    (100.9375, 0x064F00),
    (25.0, 0x019000),
    (0.0625, 0x000100),
    (0.0, 0x000000),
    (-0.0625, 0xFFFF00),
    (-0.25, 0xFFFC00),
    (-1.0, 0xFFF000),
    (-250.0, 0xF06000),
)
# True hot junction -> what a MAX31855K reports (before quantisation) at CJ
# 0/20/25/35 °C: the NIST type K EMF read through the datasheet's linear model
# (T_CJ + V / 41.276 µV/°C).
REPORTED_K = (
    (-200, (-142.73, -142.07, -141.97, -141.82)),
    (-196, (-141.22, -140.55, -140.45, -140.31)),
    (-150, (-119.02, -118.36, -118.25, -118.11)),
    (-100, (-86.09, -85.43, -85.33, -85.19)),
    (-50, (-45.77, -45.11, -45.01, -44.87)),
    (0, (0.00, 0.66, 0.77, 0.91)),
)
# Adafruit forum bench readings, CJ 23.75 °C: displayed -> the true temperature
# (NIST inverse polynomial).
FORUM = (
    (-142.0, -199.99),
    (-85.5, -100.19),
    (-45.0, -49.96),
    (-22.75, -25.06),
    (-16.00, -17.75),
    (0.5, -0.25),
    (100.0, 99.99),
    (552.5, 549.98),
    (706.0, 699.53),
    (1183.5, 1199.51),
)


def near(a, b, tol, what=""):
    if a is None or abs(a - b) > tol:
        raise AssertionError("%s: %r not within %r of %r" % (what, a, tol, b))


def ts(reading):
    """(temperature, status) of a supervised reading."""
    return (reading[0], reading[2])


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what, a, b))


class WordChip:
    """Clocks out a fixed big-endian word (exact datasheet frames)."""

    def __init__(self, nbytes=4):
        self.word = 0
        self.n = nbytes
        self.p = 0

    def select(self):
        self.p = 0

    def deselect(self):
        pass

    def transfer(self, wbuf, rbuf):
        if rbuf is None:
            return
        i = 0
        while i < len(rbuf):
            k = self.p + i
            rbuf[i] = (self.word >> (8 * (self.n - 1 - k))) & 0xFF if k < self.n else 0
            i += 1
        self.p += len(rbuf)


def frame55(tc14, cj12, low=0, d16=0, d17=0):
    return (tc14 << 18) | (d17 << 17) | (d16 << 16) | (cj12 << 4) | low


# --- thermocouple mathematics ------------------------------------------------


def case_nist_table_points_k_and_t():
    for t, k_tab, k4, t_tab, t4 in nist.POINTS:
        eq(round(tc.emf_mv("K", t), 3), k_tab, "K E(%d)" % t)
        eq(round(tc.emf_mv("T", t), 3), t_tab, "T E(%d)" % t)
        near(tc.emf_mv("K", t), k4, 0.00005 + f32_slack(k4), "K 4dp %d" % t)
        near(tc.emf_mv("T", t), t4, 0.00005 + f32_slack(t4), "T 4dp %d" % t)
        for ty, e in (("K", k4), ("T", t4)):
            tol = max(0.05 / tc.seebeck_uv_per_c(ty, t) + 0.002, 0.01)
            near(tc.temperature_c(ty, e), t, tol, "%s inverse %d" % (ty, t))
    for t, e in nist.K_HIGH:
        eq(round(tc.emf_mv("K", t), 3), e, "K E(%d)" % t)


def case_round_trip_grid_including_below_minus_200():
    for ty, top in (("K", 1372.0), ("T", 400.0)):
        t = -270.0
        while t <= top:
            near(tc.temperature_c(ty, tc.emf_mv(ty, t)), t, 0.001, "%s %r" % (ty, t))
            t += 1.37


def case_nist_inverse_error_bands():
    for ty, e_lo, e_hi, b_lo, b_hi in nist.INVERSE_BANDS:
        t = tc.temperature_c(ty, e_lo)
        t_hi = tc.temperature_c(ty, e_hi)
        lo = hi = 0.0
        while t <= t_hi:
            err = tc.nist_inverse(ty, tc.emf_mv(ty, t)) - t
            lo = min(lo, err)
            hi = max(hi, err)
            t += 0.5
        if lo < b_lo - 0.005 or hi > b_hi + 0.005:
            raise AssertionError("%s band %r..%r outside %r..%r" % (ty, lo, hi, b_lo, b_hi))


def case_float32_accuracy():
    for ty, top, step in (("K", 1372.0, 4.1), ("T", 400.0, 1.9)):
        we, wt = float32_errors(ty, -270.0, top, step)
        if we > 0.01e-3 or wt > 0.005:
            raise AssertionError("%s float32: E err %r mV, T err %r °C" % (ty, we, wt))
    for t, k_tab, _k4, t_tab, _t4 in nist.POINTS:
        for ty, e in (("K", k_tab), ("T", t_tab)):
            if tc.seebeck_uv_per_c(ty, t) >= 10.0:
                near(run32(tc.temperature_c, ty, F32(e)), t, 0.05, "%s f32 %d" % (ty, t))
        eq(round(run32(tc.emf_mv, "K", F32(t)), 3), k_tab, "K f32 E(%d)" % t)
        eq(round(run32(tc.emf_mv, "T", F32(t)), 3), t_tab, "T f32 E(%d)" % t)


def case_errors_name_the_allowed_range():
    for fn, args, text in (
        (tc.emf_mv, ("J", 0.0), "allowed 'K' or 'T'"),
        (tc.emf_mv, ("K", 1400.0), "allowed -270 to 1372 °C"),
        (tc.emf_mv, ("T", -271.0), "allowed -270 to 400 °C"),
        (tc.temperature_c, ("K", -7.0), "allowed -6.458 to 54.886 mV"),
        (tc.temperature_c, ("T", 25.0), "allowed -6.258 to 20.872 mV"),
    ):
        try:
            fn(*args)
        except ValueError as e:
            if text not in str(e):
                raise AssertionError("message %r lacks %r" % (str(e), text))
        else:
            raise AssertionError("no ValueError for %r" % (args,))


# --- MAX31855 ------------------------------------------------------------------


def _rig55(tc_type="K"):
    bus = SpiBus()
    chip = WordChip()
    return chip, m55.MAX31855(bus, CsPin(bus, chip), tc_type)


def case_max31855_datasheet_frames():
    chip, drv = _rig55()
    for tc_c, tc14 in DS55_TC:
        for cj_c, cj12 in DS55_CJ:
            chip.word = frame55(tc14, cj12)
            f = drv.read_raw()
            if tc14 == 0 and cj12 == 0:
                eq(f, FAULT_BUS, "all-zero frame")
                continue
            eq(f, 0, "faults")
            eq(drv.tc_code * 0.25, tc_c, "TC")
            eq(drv.cj_code * 0.0625, cj_c, "CJ")


def case_max31855_every_fault_bit():
    chip, drv = _rig55()
    for low, want in (
        (1, FAULT_OC | FAULT_D16),
        (2, FAULT_SCG | FAULT_D16),
        (4, FAULT_SCV | FAULT_D16),
        (7, FAULT_OC | FAULT_SCG | FAULT_SCV | FAULT_D16),
    ):
        chip.word = frame55(100, 400, low=low, d16=1)
        eq(drv.read_raw(), want, "low bits %d" % low)
        eq(drv.temperature, None, "temperature with a fault")
        eq(drv.cold_junction, 25.0, "CJ still valid")
    chip.word = frame55(0x1FFF, 400, low=1, d16=1)  # datasheet open input
    eq(drv.read_raw(), FAULT_OC | FAULT_D16, "open input")
    eq(drv.tc_code, 8191, "open code")


def case_max31855_bus_fault_frames():
    chip, drv = _rig55()
    for word in (
        0x00000000,
        0xFFFFFFFF,
        frame55(100, 400, d17=1),
        frame55(100, 400) | 0x8,
        frame55(100, 400, d16=1),
        frame55(100, 400, low=2),
    ):
        chip.word = word
        if not drv.read_raw() & FAULT_BUS:
            raise AssertionError("frame %08x not a bus fault" % word)
        eq(drv.temperature, None, "temperature")
    chip.word = frame55(0x1FFF, 400)  # open code with the flags lost
    if not drv.read_raw() & FAULT_OC:
        raise AssertionError("0x1FFF accepted")


def case_max31855_cryogenic_correction_worked_figures():
    for hot, row in REPORTED_K:
        for cj, want in zip((0, 20, 25, 35), row):
            near(m55.linear_reading("K", hot, cj), want, 0.006, "linear K %d@%d" % (hot, cj))
    near(m55.linear_reading("T", -196, 25), -100.2, 0.05, "T variant in LN2")
    for shown, want in FORUM:
        near(m55.correct("K", shown, 23.75), want, 0.06, "forum %r" % shown)
    # End to end through the emulated chip: LN2 reads -140.5, corrected -196.
    bus = SpiBus()
    emu = Max31855Emu("K")
    drv = m55.MAX31855(bus, bus.attach(emu))
    emu.set_state(-196.0, 25.0)
    eq(drv.read_raw(), 0, "faults")
    eq(drv.uncorrected, -140.5, "uncorrected")
    near(drv.temperature, -196.0, 0.33, "corrected")
    eq(drv.code_for(-196.0, 25.0), drv.tc_code, "code_for")


def case_max31855_no_exception_at_or_below_minus_200():
    for ty in ("K", "T"):
        bus = SpiBus()
        emu = Max31855Emu(ty)
        drv = m55.MAX31855(bus, bus.attach(emu), ty)
        for hot in (-200.0, -205.0, -210.0, -230.0, -250.0, -270.0):
            emu.set_state(hot, 25.0)
            eq(drv.read_raw(), 0, "%s %r" % (ty, hot))
            lsb = 0.125 * m55.S_NOM_MV[ty] * 1000 / tc.seebeck_uv_per_c(ty, hot)
            near(drv.temperature, hot, lsb + 0.05, "%s %r" % (ty, hot))


def case_max31855_emulator_faults():
    bus = SpiBus()
    emu = Max31855Emu("K")
    drv = m55.MAX31855(bus, bus.attach(emu))
    emu.set_state(-196.0, 25.0)
    for attr, want in (
        ("open_circuit", FAULT_OC | FAULT_D16),
        ("short_gnd", FAULT_SCG | FAULT_D16),
        ("short_vcc", FAULT_SCV | FAULT_D16),
    ):
        setattr(emu, attr, True)
        eq(drv.read_raw(), want, attr)
        setattr(emu, attr, False)
    for mode in ("zeros", "ones"):
        emu.bus = mode
        eq(drv.read_raw(), FAULT_BUS, mode)
    emu.bus = None
    eq(drv.read_raw(), 0, "recovered")


# --- MAX31856 ------------------------------------------------------------------


def _rig56(clk=None, tc_type="K", **kw):
    bus = SpiBus()
    emu = Max31856Emu(tc_type, clock=clk)
    drv = m56.MAX31856(bus, bus.attach(emu), tc_type, clock=clk, **kw)
    return bus, emu, drv


def _convert(drv, emu, clk, hot, cold):
    emu.set_state(hot, cold)
    drv.start()
    clk.advance(drv.conv_max_ms)
    if not drv.ready():
        raise AssertionError("conversion not ready after its maximum time")
    return drv.collect()


def case_max31856_datasheet_formats():
    _, emu, drv = _rig56(verify_every=0)
    r = emu.regs
    for cj_c, cj_w in DS56_CJ:
        for tc_c, tc_w in DS56_TC:
            r[10] = cj_w >> 8
            r[11] = cj_w & 0xFF
            r[12] = tc_w >> 16
            r[13] = (tc_w >> 8) & 0xFF
            r[14] = tc_w & 0xFF
            r[15] = 0
            f = drv.collect()
            if cj_w == 0 and tc_w == 0:
                eq(f, FAULT_BUS, "six zero bytes")
                continue
            eq(f, 0, "faults")
            eq(drv.cj_code * m56.CJ_LSB_C, cj_c, "CJ")
            eq(drv.tc_code * m56.TC_LSB_C, tc_c, "TC")


def case_max31856_configuration_registers():
    _, emu, drv = _rig56(
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
    )
    r = emu.regs
    eq(r[0], 0x24, "CR0")
    eq(r[1], 0x47, "CR1")
    eq(r[2], 0x00, "MASK")
    eq((r[3], r[4]), (60, 0xF6), "CJHF/CJLF")
    eq((r[5] << 8) | r[6], 0x0648, "LTHFT")
    eq((r[7] << 8) | r[8], 0xF380, "LTLFT")
    eq(r[9], 0xF8, "CJTO")
    _, emu, drv = _rig56()
    eq(emu.regs[0] & 0x30, 0x10, "open-circuit detection enabled by default")
    try:
        _rig56(oc_mode=0)
    except ValueError:
        pass
    else:
        raise AssertionError("oc_mode 0 accepted")


def case_max31856_fault_status_register():
    _, emu, drv = _rig56(verify_every=0)
    for sr, want in (
        (0x01, FAULT_OC),
        (0x02, FAULT_OVUV),
        (0x04, FAULT_TC_LOW),
        (0x08, FAULT_TC_HIGH),
        (0x10, FAULT_CJ_LOW),
        (0x20, FAULT_CJ_HIGH),
        (0x40, FAULT_TC_RANGE),
        (0x80, FAULT_CJ_RANGE),
    ):
        emu.regs[10] = 0x19
        emu.regs[15] = sr
        eq(drv.collect(), want, "SR %02x" % sr)


def case_max31856_one_shot_timing_nonblocking():
    for kw, typ in (
        ({"mains_hz": 60}, 156),
        ({"mains_hz": 50}, 182),
        ({"mains_hz": 50, "averaging": 4, "oc_mode": 2}, 322),
    ):
        clk = ManualClock(WRAP)
        bus, emu, drv = _rig56(clk, **kw)
        emu.set_state(-196.0, 25.0)
        drv.start()
        n0 = bus.transfers
        clk.advance(drv.conv_typ_ms - 1)
        eq(drv.ready(), False, "early")
        eq(bus.transfers, n0, "no polling before the typical time")
        waited = drv.conv_typ_ms - 1
        while not drv.ready():
            clk.advance(1)
            waited += 1
        eq(waited, typ, "conversion time %r" % (kw,))
        eq(drv.collect(), 0, "faults")
        near(drv.temperature, -196.0, 1 / 128, "LN2")


def case_max31856_faults_and_modes():
    clk = ManualClock(WRAP)
    _, emu, drv = _rig56(clk, tc_low_c=-198.0, tc_high_c=30.0, cj_low_c=5, cj_high_c=40)
    eq(_convert(drv, emu, clk, 31.0, 25.0), FAULT_TC_HIGH, "TC high")
    eq(_convert(drv, emu, clk, 29.0, 25.0), FAULT_TC_HIGH, "hysteresis")
    eq(_convert(drv, emu, clk, 27.9, 25.0), 0, "cleared")
    eq(_convert(drv, emu, clk, -199.0, 25.0), FAULT_TC_LOW, "TC low")
    eq(_convert(drv, emu, clk, 20.0, 41.0), FAULT_CJ_HIGH, "CJ high")
    eq(_convert(drv, emu, clk, 20.0, 4.0), FAULT_CJ_LOW, "CJ low")
    eq(_convert(drv, emu, clk, -230.0, 25.0), FAULT_TC_RANGE | FAULT_TC_LOW, "TC range")
    eq(drv.tc_code, -200 * 128, "clamped at -200")
    eq(_convert(drv, emu, clk, 0.0, -60.0) & FAULT_CJ_RANGE, FAULT_CJ_RANGE, "CJ range")
    emu.open_circuit = True
    eq(_convert(drv, emu, clk, 20.0, 25.0) & FAULT_OC, FAULT_OC, "open")
    emu.open_circuit = False
    eq(_convert(drv, emu, clk, 20.0, 25.0), 0, "open cleared")
    emu.short_vcc = True
    eq(_convert(drv, emu, clk, 20.0, 25.0), FAULT_OVUV, "OV/UV")
    emu.short_vcc = False
    eq(_convert(drv, emu, clk, 20.0, 25.0), 0, "recovered")
    clk = ManualClock(WRAP)
    _, emu, drv = _rig56(clk, latched=True, tc_high_c=30.0)
    eq(_convert(drv, emu, clk, 35.0, 25.0), FAULT_TC_HIGH, "latched set")
    eq(_convert(drv, emu, clk, 20.0, 25.0), FAULT_TC_HIGH, "latched holds")
    drv.clear_faults()
    eq(_convert(drv, emu, clk, 20.0, 25.0), 0, "FAULTCLR")


def case_max31856_bus_faults_timeout_and_brown_out():
    clk = ManualClock(WRAP)
    _, emu, drv = _rig56(clk, verify_every=2, tc_high_c=100.0)
    emu.bus = "zeros"
    eq(_convert(drv, emu, clk, 0.0, 25.0), FAULT_BUS, "zeros")
    emu.bus = "ones"
    drv.start()
    clk.advance(2 * drv.conv_max_ms)
    eq(drv.ready(), True, "timeout")
    # All-ones also fails the configuration read-back (verify_every=2).
    eq(drv.collect(), FAULT_BUS | FAULT_TIMEOUT | FAULT_CONFIG, "ones")
    emu.bus = None
    eq(_convert(drv, emu, clk, 0.0, 25.0), 0, "recovered")
    emu.regs[0] = 0x00  # brown-out: factory defaults, OC detection off
    emu.regs[5] = 0x7F
    emu.regs[6] = 0xFF
    drv.start()
    eq(emu.regs[0] & 0x30, 0x10, "start() rewrote CR0")
    clk.advance(drv.conv_max_ms)
    drv.ready()
    eq(drv.collect(), FAULT_CONFIG, "config lost reported")
    eq((emu.regs[5] << 8) | emu.regs[6], 1600, "thresholds rewritten")


# --- supervision -----------------------------------------------------------------


class _Sup:
    def __init__(self, chip="55", **kw):
        self.clk = ManualClock(WRAP)
        bus = SpiBus()
        if chip == "55":
            self.emu = Max31855Emu("K")
            self.drv = m55.MAX31855(bus, bus.attach(self.emu), "K")
        else:
            self.emu = Max31856Emu("K", clock=self.clk)
            self.drv = m56.MAX31856(bus, bus.attach(self.emu), "K", clock=self.clk)
        self.ch = chm.Channel("tissue", self.drv, self.clk, **kw)
        self.emu.set_state(20.0, 25.0)

    def step(self, n=1):
        out = None
        i = 0
        while i < n:
            self.clk.advance(100)
            self.ch.update(self.clk.ticks_ms())
            out = self.ch.convert()
            i += 1
        return out


def case_supervision_chip_and_bus_faults_debounce_trip_recover():
    for attr, value, st in (
        ("open_circuit", True, chm.ST_SENSOR),
        ("short_gnd", True, chm.ST_SENSOR),
        ("short_vcc", True, chm.ST_SENSOR),
        ("bus", "zeros", chm.ST_BUS),
        ("bus", "ones", chm.ST_BUS),
    ):
        s = _Sup(debounce=3, recover=5)
        s.step(3)
        setattr(s.emu, attr, value)
        eq(s.step(), (None, 25.0 if attr != "bus" else None, chm.ST_SUSPECT), attr + " 1st")
        eq(s.step()[2], chm.ST_SUSPECT, attr + " 2nd")
        eq(ts(s.step()), (None, st), attr + " 3rd")
        setattr(s.emu, attr, None if attr == "bus" else False)
        eq(s.step(4)[2], st, attr + " recovering")
        t, _, status = s.step()
        eq(status, chm.ST_OK, attr + " recovered")
        near(t, 20.0, 0.2, attr)


def case_supervision_range_cj_rate_stuck():
    s = _Sup(t_min_c=-205.0, t_max_c=45.0, max_rate_c_s=1000.0)
    s.step(2)
    s.emu.set_state(50.0, 25.0)
    eq(s.step(3)[2], chm.ST_RANGE, "too warm")
    s.emu.set_state(-230.0, 25.0)
    eq(s.step(3)[2], chm.ST_RANGE, "colder than LN2")
    s.emu.set_state(-196.0, 25.0)
    eq(s.step(5)[2], chm.ST_OK, "LN2 ok")
    s = _Sup(cj_min_c=0.0, cj_max_c=50.0)
    s.step(2)
    s.emu.set_state(20.0, 55.0)
    eq(s.step(3)[2], chm.ST_CJ_RANGE, "CJ high")
    s.emu.set_state(20.0, 25.0)
    eq(s.step(5)[2], chm.ST_OK, "CJ back")
    s = _Sup(max_rate_c_s=20.0, recover=3)
    s.step(5)
    s.emu.set_state(-100.0, 25.0)
    eq(s.step(3)[2], chm.ST_RATE, "jump")
    eq(s.step(60)[2], chm.ST_OK, "healed once plausible")
    s = _Sup(stuck_ms=5000)
    eq(s.step(49)[2], chm.ST_OK, "not yet stuck")
    eq(s.step(2)[2], chm.ST_STUCK, "stuck")
    s.emu.set_state(19.0, 25.0)
    eq(s.step(5)[2], chm.ST_OK, "moving again")


def case_supervision_stale_and_ln2_on_max31856():
    clk = ManualClock(WRAP)
    bus = SpiBus()
    emu = Max31856Emu("K", clock=clk)
    drv = m56.MAX31856(bus, bus.attach(emu), "K")  # no clock: no timeout
    c = chm.Channel("aux", drv, clk, stale_ms=1000)
    emu.set_state(-196.0, 25.0)
    i = 0
    while i < 10:
        clk.advance(100)
        c.update(clk.ticks_ms())
        c.convert()
        i += 1
    eq(c.status, chm.ST_OK, "ok")
    near(c.temperature_c, -196.0, 0.01, "LN2")
    emu.clock = None  # conversion never completes
    while i < 22:
        clk.advance(100)
        c.update(clk.ticks_ms())
        c.convert()
        i += 1
    eq((c.status, c.temperature_c), (chm.ST_STALE, None), "stale")


def case_supervision_calibration():
    cal = chm.Calibration(-193.0, -195.8, 1.0, 0.0)
    s = _Sup(calibration=cal)
    s.emu.set_state(-193.0, 25.0)
    near(s.step(60)[0], -195.8, 0.4, "calibrated LN2")


def case_no_alloc_raw_paths():
    """On MicroPython: raw read + decode + supervision under heap_lock."""
    if sys.implementation.name != "micropython":
        return
    from mpytest import assert_no_alloc

    clk = ManualClock(WRAP)
    bus = SpiBus()
    e55 = Max31855Emu("K")
    d55 = m55.MAX31855(bus, bus.attach(e55))
    e56 = Max31856Emu("K", clock=clk)
    d56 = m56.MAX31856(bus, bus.attach(e56), "K", clock=clk)
    c55 = chm.Channel("tissue", d55, clk)
    c56 = chm.Channel("aux", d56, clk)

    def tick():
        clk.advance(25)
        now = clk.ticks_ms()
        c55.update(now)
        c56.update(now)

    assert_no_alloc(tick, 200)
    e55.short_gnd = True
    e56.open_circuit = True
    assert_no_alloc(tick, 200)
    eq((c55.status, c56.status), (chm.ST_SENSOR, chm.ST_SENSOR), "faults under heap_lock")


def reading55(tc_type, hot, cj):
    """[faults, tc_code, cj_code, temperature] of an emulated MAX31855."""
    bus = SpiBus()
    emu = Max31855Emu(tc_type)
    drv = m55.MAX31855(bus, bus.attach(emu), tc_type)
    emu.set_state(hot, cj)
    f = drv.read_raw()
    return [f, drv.tc_code, drv.cj_code, drv.temperature]


def reading56(tc_type, hot, cj):
    """[faults, tc_code, cj_code, temperature] of an emulated MAX31856."""
    clk = ManualClock(WRAP)
    bus = SpiBus()
    emu = Max31856Emu(tc_type, clock=clk)
    drv = m56.MAX31856(bus, bus.attach(emu), tc_type, clock=clk)
    f = _convert(drv, emu, clk, hot, cj)
    return [f, drv.tc_code, drv.cj_code, drv.temperature]


def names():
    out = []
    for k in sorted(globals()):
        if k.startswith("case_"):
            out.append(k)
    return out


def run_all():
    res = {}
    for name in names():
        try:
            globals()[name]()
            res[name] = "ok"
        except Exception as e:  # noqa: BLE001 - reported per case
            res[name] = "%s: %s" % (type(e).__name__, e)
    return res
