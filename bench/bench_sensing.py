"""Sensing cost under MicroPython: one reading + supervision step.

Drivers talk to the emulated chips through the chips.bus SPI double, so the
raw-read figures include the emulator's Python transfer (on a board the SPI
peripheral does that part in hardware): the "decode only" row isolates the
driver's own work. Allocation is measured with the collector paused.

The MAX31855 correction is measured three ways in the same run: the float
NIST path it used before (``max31855.correct``: back out V, add E(T_CJ),
NIST inverse + Newton, about a hundred boxed floats), the integer path
(``temperature_cc``, allocation-free) and ``.temperature`` on a new reading
(integer path + one float) and on an unchanged one (cached float). The
"changing" supervision steps read a fixed-frame chip that cycles through
four frames, so every reading is new and no emulator float math is counted.
"""

import mpyrun

_SNIPPET = """
from chips.bus import SpiBus, CsPin
from chips.max31855 import Max31855Emu
from chips.max31856 import Max31856Emu
from cryo.sensing.max31855 import MAX31855
from cryo.sensing.max31856 import MAX31856
from cryo.supervision.channel import Channel
from cryo.clock import ManualClock
from cryo import thermocouple as tc

clk = ManualClock()
bus = SpiBus()
e55 = Max31855Emu("K")
d55 = MAX31855(bus, bus.attach(e55), "K")
e55.set_state(-196.0, 25.0)
c55 = Channel("tissue", d55, clk, expect_change=False)

class Frame:
    # fixed frame, no emulation work: isolates the driver's decode
    def select(self): self.p = 0
    def deselect(self): pass
    def transfer(self, w, r):
        r[0] = 0xF7; r[1] = 0x38; r[2] = 0x19; r[3] = 0x00
dfix = MAX31855(bus, CsPin(bus, Frame()), "K")

class Cycle:
    # four precomputed LN2-ish frames (tc -560..-563, cj 400..403): every
    # read is a new reading, integer-only transfer
    def __init__(self):
        self.fr = bytearray(16)
        i = 0
        while i < 4:
            tc = (-560 - i) & 0x3FFF
            cj = (400 + i) & 0xFFF
            w = (tc << 18) | (cj << 4)
            self.fr[4 * i] = w >> 24; self.fr[4 * i + 1] = (w >> 16) & 0xFF
            self.fr[4 * i + 2] = (w >> 8) & 0xFF; self.fr[4 * i + 3] = w & 0xFF
            i += 1
        self.n = 0
    def select(self): self.n = (self.n + 4) & 15
    def deselect(self): pass
    def transfer(self, w, r):
        n = self.n; f = self.fr
        r[0] = f[n]; r[1] = f[n + 1]; r[2] = f[n + 2]; r[3] = f[n + 3]
dcyc = MAX31855(bus, CsPin(bus, Cycle()), "K")
ccyc = Channel("tissue", dcyc, clk, expect_change=False, max_rate_c_s=1000)
from cryo.sensing import max31855 as m55

e56 = Max31856Emu("K", clock=clk)
d56 = MAX31856(bus, bus.attach(e56), "K", clock=clk)
e56.set_state(-196.0, 25.0)
c56 = Channel("aux", d56, clk, expect_change=False)
for i in range(40):
    clk.advance(100)
    c55.update(clk.ticks_ms()); c55.convert()
    c56.update(clk.ticks_ms()); c56.convert()
    ccyc.update(clk.ticks_ms()); ccyc.convert()

def step55():
    clk.advance(100)
    c55.update(clk.ticks_ms())
    c55.convert()

def stepcyc():
    clk.advance(100)
    ccyc.update(clk.ticks_ms())
    ccyc.convert()

def newtemp():
    dcyc.read_raw()
    return dcyc.temperature

def newcc():
    dcyc.read_raw()
    return dcyc.temperature_cc

def before():
    # what .temperature computed before: the float NIST correction
    return m55.correct("K", d55.tc_code * 0.25, d55.cj_code * 0.0625)

def upd55():
    c55.update(clk.ticks_ms())

def collect56():
    d56.busy = True
    d56.collect()

def step56():
    clk.advance(200)
    c56.update(clk.ticks_ms())
    c56.convert()

def med(fn, n=400):
    ts = time_us(fn, n)
    return ts[len(ts) // 2]

out = {}
out["read55"] = [med(d55.read_raw), bytes_per_call(d55.read_raw, 200)]
out["decode55"] = [med(dfix.read_raw), bytes_per_call(dfix.read_raw, 200)]
out["before55"] = [med(before), bytes_per_call(before, 100)]
out["temp55"] = [med(lambda: d55.temperature), bytes_per_call(lambda: d55.temperature, 100)]
out["new55"] = [med(newtemp), bytes_per_call(newtemp, 100)]
out["cc55"] = [med(newcc), bytes_per_call(newcc, 100)]
out["rd55"] = [med(dcyc.read_raw), bytes_per_call(dcyc.read_raw, 100)]
out["stepcyc"] = [med(stepcyc), bytes_per_call(stepcyc, 100)]
out["upd55"] = [med(upd55), bytes_per_call(upd55, 200)]
out["step55"] = [med(step55), bytes_per_call(step55, 100)]
out["collect56"] = [med(collect56), bytes_per_call(collect56, 200)]
out["temp56"] = [med(lambda: d56.temperature), bytes_per_call(lambda: d56.temperature, 100)]
def new56():
    d56.tc_code ^= 1  # a new code every call (the float cache misses)
    return d56.temperature
out["new56"] = [med(new56), bytes_per_call(new56, 100)]
out["cc56"] = [med(lambda: d56.temperature_cc), bytes_per_call(lambda: d56.temperature_cc, 100)]
out["step56"] = [med(step56), bytes_per_call(step56, 100)]
out["emf"] = [med(lambda: tc.emf_mv("K", 25.0)), bytes_per_call(lambda: tc.emf_mv("K", 25.0), 100)]
out["inv"] = [med(lambda: tc.temperature_c("K", -5.8289)),
              bytes_per_call(lambda: tc.temperature_c("K", -5.8289), 100)]
out["inv_cryo"] = [med(lambda: tc.temperature_c("K", -6.2)),
                   bytes_per_call(lambda: tc.temperature_c("K", -6.2), 100)]
out["noalloc"] = [assert_no_alloc(d55.read_raw, 100), assert_no_alloc(upd55, 100),
                  assert_no_alloc(collect56, 100), assert_no_alloc(newcc, 100),
                  assert_no_alloc(lambda: d56.temperature_cc, 100)]
result(out)
"""


def run():
    r = mpyrun.run(_SNIPPET, timeout=300)

    def row(key, label):
        us, b = r[key]
        return (label, f"{us} µs median, {b:.0f} B allocated")

    rd_us = r["rd55"][0]

    def new(key, label):  # minus the fixed-frame read the figure includes
        us, b = r[key]
        return (label, f"{max(us - rd_us, 0)} µs median (+{rd_us} µs read), {b:.0f} B allocated")

    b_before = r["before55"][1]
    b_after = r["new55"][1] - r["rd55"][1]
    return [
        row("decode55", "MAX31855 read_raw, driver only (fixed frame)"),
        row("read55", "MAX31855 read_raw via emulated chip (integer path)"),
        row("before55", "MAX31855 correction, float NIST path (before)"),
        new("new55", "MAX31855 .temperature, new reading (integer path)"),
        row("temp55", "MAX31855 .temperature, unchanged reading (cached)"),
        new("cc55", "MAX31855 .temperature_cc (int centi-°C)"),
        (
            "MAX31855 correction allocation, before / after",
            f"{b_before:.0f} B / {b_after:.0f} B per new reading "
            f"({b_before / max(b_after, 1):.0f}x less; "
            f"{r['before55'][0] / max(r['new55'][0] - rd_us, 1):.1f}x faster)",
        ),
        row("upd55", "Channel.update on MAX31855 (read + supervision, int)"),
        row("step55", "MAX31855 reading + supervision step (update+convert)"),
        row("stepcyc", "MAX31855 step, new reading every step (fixed frames)"),
        row("collect56", "MAX31856 collect via emulated chip (integer path)"),
        row("new56", "MAX31856 .temperature, new reading (float path)"),
        row("temp56", "MAX31856 .temperature, unchanged reading (cached)"),
        row("cc56", "MAX31856 .temperature_cc (int centi-°C)"),
        row("step56", "MAX31856 reading + supervision step (update+convert)"),
        row("emf", "thermocouple.emf_mv('K', 25 °C)"),
        row("inv", "thermocouple.temperature_c('K', LN2 EMF)"),
        row("inv_cryo", "thermocouple.temperature_c('K', -6.2 mV, Newton)"),
        ("raw paths allocation-free (heap_lock)", " / ".join(str(x) for x in r["noalloc"])),
    ]
