"""Sensing cost under MicroPython: one reading + supervision step.

Drivers talk to the emulated chips through the chips.bus SPI double, so the
raw-read figures include the emulator's Python transfer (on a board the SPI
peripheral does that part in hardware): the "decode only" row isolates the
driver's own work. Allocation is measured with the collector paused.
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

e56 = Max31856Emu("K", clock=clk)
d56 = MAX31856(bus, bus.attach(e56), "K", clock=clk)
e56.set_state(-196.0, 25.0)
c56 = Channel("aux", d56, clk, expect_change=False)
for i in range(40):
    clk.advance(100)
    c55.update(clk.ticks_ms()); c55.convert()
    c56.update(clk.ticks_ms()); c56.convert()

def step55():
    clk.advance(100)
    c55.update(clk.ticks_ms())
    c55.convert()

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
out["temp55"] = [med(lambda: d55.temperature), bytes_per_call(lambda: d55.temperature, 100)]
out["upd55"] = [med(upd55), bytes_per_call(upd55, 200)]
out["step55"] = [med(step55), bytes_per_call(step55, 100)]
out["collect56"] = [med(collect56), bytes_per_call(collect56, 200)]
out["temp56"] = [med(lambda: d56.temperature), bytes_per_call(lambda: d56.temperature, 100)]
out["step56"] = [med(step56), bytes_per_call(step56, 100)]
out["emf"] = [med(lambda: tc.emf_mv("K", 25.0)), bytes_per_call(lambda: tc.emf_mv("K", 25.0), 100)]
out["inv"] = [med(lambda: tc.temperature_c("K", -5.8289)),
              bytes_per_call(lambda: tc.temperature_c("K", -5.8289), 100)]
out["inv_cryo"] = [med(lambda: tc.temperature_c("K", -6.2)),
                   bytes_per_call(lambda: tc.temperature_c("K", -6.2), 100)]
out["noalloc"] = [assert_no_alloc(d55.read_raw, 100), assert_no_alloc(upd55, 100),
                  assert_no_alloc(collect56, 100)]
result(out)
"""


def run():
    r = mpyrun.run(_SNIPPET, timeout=300)

    def row(key, label):
        us, b = r[key]
        return (label, f"{us} µs median, {b:.0f} B allocated")

    return [
        row("decode55", "MAX31855 read_raw, driver only (fixed frame)"),
        row("read55", "MAX31855 read_raw via emulated chip (integer path)"),
        row("temp55", "MAX31855 .temperature (NIST correction, float path)"),
        row("upd55", "Channel.update on MAX31855 (read + supervision, int)"),
        row("step55", "MAX31855 reading + supervision step (update+convert)"),
        row("collect56", "MAX31856 collect via emulated chip (integer path)"),
        row("temp56", "MAX31856 .temperature (float path)"),
        row("step56", "MAX31856 reading + supervision step (update+convert)"),
        row("emf", "thermocouple.emf_mv('K', 25 °C)"),
        row("inv", "thermocouple.temperature_c('K', LN2 EMF)"),
        row("inv_cryo", "thermocouple.temperature_c('K', -6.2 mV, Newton)"),
        ("raw paths allocation-free (heap_lock)", " / ".join(str(x) for x in r["noalloc"])),
    ]
