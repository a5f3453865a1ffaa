"""Properties over random temperatures and random fault sequences (hypothesis)."""

import pytest
from chips.bus import SpiBus
from chips.max31855 import Max31855Emu
from chips.max31856 import Max31856Emu
from hypothesis import given, settings
from hypothesis import strategies as st

from cryo import thermocouple as tc
from cryo.clock import ManualClock
from cryo.sensing import max31855 as m55
from cryo.sensing import max31856 as m56
from cryo.supervision.channel import ST_OK, Channel


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["K", "T"]),
    st.floats(-270.0, 400.0),
    st.floats(-20.0, 70.0),
)
def test_max31855_correction_within_one_lsb(tc_type, hot, cj):
    bus = SpiBus()
    emu = Max31855Emu(tc_type)
    drv = m55.MAX31855(bus, bus.attach(emu), tc_type)
    emu.set_state(hot, cj)
    f = drv.read_raw()
    if f:  # only a true 0.00/0.0000 frame may be rejected
        assert drv.tc_code == 0 and drv.cj_code == 0
        return
    t = drv.temperature
    assert t is not None
    # Half an LSB of the chip's linear scale, seen through S_nom / S(T),
    # plus half a CJ LSB amplified by S(CJ)/S(T).
    s_hot = tc.seebeck_uv_per_c(tc_type, hot)
    s_cj = tc.seebeck_uv_per_c(tc_type, cj)
    bound = (0.125 * m55.S_NOM_MV[tc_type] * 1000 + 0.03125 * s_cj) / s_hot + 0.01
    assert t == pytest.approx(hot, abs=bound)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["K", "T"]), st.floats(-200.0, 400.0), st.floats(-20.0, 70.0))
def test_max31856_linearization_within_half_lsb(tc_type, hot, cj):
    clk = ManualClock()
    bus = SpiBus()
    emu = Max31856Emu(tc_type, clock=clk)
    drv = m56.MAX31856(bus, bus.attach(emu), tc_type, clock=clk)
    emu.set_state(hot, cj)
    drv.start()
    clk.advance(drv.conv_max_ms)
    assert drv.ready()
    f = drv.collect()
    if f:
        assert drv.tc_code == 0 and drv.cj_code == 0  # the all-zero ambiguity
        return
    assert drv.temperature == pytest.approx(hot, abs=0.5 / 128 + 0.5 / 64 + 1e-6)


_FAULTS = st.sampled_from(["none", "none", "none", "open", "gnd", "vcc", "zeros", "ones"])


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["55", "56"]),
    st.lists(st.tuples(_FAULTS, st.floats(-196.0, 30.0)), min_size=5, max_size=60),
)
def test_no_number_from_a_faulty_sample(chip, steps):
    """Whatever the fault sequence: a reading is only ever given out with
    status OK, never for a sample the chip or bus flagged, and then close
    to the true temperature (the stuck/rate rules may withhold more)."""
    clk = ManualClock((1 << 30) - 1000)
    bus = SpiBus()
    if chip == "55":
        emu = Max31855Emu("K")
        drv = m55.MAX31855(bus, bus.attach(emu), "K")
        ms, tol = 100, 0.4
    else:
        emu = Max31856Emu("K", clock=clk)
        drv = m56.MAX31856(bus, bus.attach(emu), "K", clock=clk)
        ms, tol = 250, 0.02
    ch = Channel("tissue", drv, clk, max_rate_c_s=1000.0, rate_noise_c=300.0)
    recent = []
    for fault, hot in steps:
        recent = (recent + [hot])[-4:]  # the 56 reports the conversion in flight
        emu.open_circuit = fault == "open"
        emu.short_gnd = fault == "gnd"
        emu.short_vcc = fault == "vcc"
        emu.bus = fault if fault in ("zeros", "ones") else None
        emu.set_state(hot, 25.0)
        clk.advance(ms)
        ch.update(clk.ticks_ms())
        t, _, status = ch.convert()
        if status != ST_OK:
            assert t is None
            continue
        assert drv.faults == 0
        assert fault == "none" or chip == "56"  # 56: OVUV/OPEN come with the data
        assert any(abs(t - h) <= tol for h in recent), (t, recent)
