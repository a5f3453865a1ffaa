"""Live link: telemetry rate achieved and what the channel costs the loop.

Figures (MicroPython unix port on this machine):

* ``poll()`` cost, median / p99 (µs), with the controller in FREEZE on the
  virtual board: idle (nothing to read), under a flood of valid ``status``
  requests (each poll executes one and queues the reply), a flood of
  garbage lines (each poll rejects one), and oversize lines (each poll scans
  its 576-byte budget). Printed beside the real ``Controller.tick`` median
  measured in the same run, and as a fraction of the 100 ms tick period.
* bytes allocated per poll (idle must be 0).
* telemetry rate in device time (real controller, virtual time, 10 Hz asked)
  and end to end in real time (MicroPython process → pipes → TCP relay →
  pyserial → ``host_tools.device.link``), 10 Hz asked, 3 s.
"""

import sys
import time
from pathlib import Path

import mpyrun

LINK = Path(__file__).resolve().parents[1] / "tests" / "link"
CORE = LINK.parent / "core"  # link_rigs builds on core_rig's virtual device

_SNIPPET = """
import gc, random
gc.threshold(200000)
from link_rigs import RealRig
from cryo.link.channel import CommandChannel
from cryo.link.framing import encode
from link_fakes import SinkStream
import link_fuzz as fuzzgen

class Endless:
    def __init__(self, make):
        self.make = make
        self.buf = b""
        self.pos = 0
    def readinto(self, buf):
        if self.pos >= len(self.buf):
            self.buf = self.make()
            self.pos = 0
        n = min(len(buf), len(self.buf) - self.pos)
        buf[0:n] = self.buf[self.pos:self.pos + n]
        self.pos += n
        return n

class Idle:
    def readinto(self, buf):
        return 0

class Drain:
    def write(self, mv):
        return len(mv)

r = RealRig(seed=3)
r.start_treatment()
r.loop(20000)                       # into FREEZE, valve cycling
status = encode({"id": 1, "cmd": "status"})
random.seed(1)
out = {}
for name, src in (("idle", Idle()),
                  ("status flood", Endless(lambda: status)),
                  ("garbage flood", Endless(lambda: b"x" * 60 + b"\\n")),
                  ("oversize lines", Endless(lambda: b"9" * 2000 + b"\\n")),
                  ("fuzz flood", Endless(fuzzgen.one))):
    ch = CommandChannel(r.ctl, src, Drain())
    ts = time_us(ch.poll, 600)
    out[name] = [ts[len(ts) // 2], ts[len(ts) * 99 // 100], bytes_per_call(ch.poll, 100)]

def tick():
    r.clock.advance(r.period)
    r.tick()
ts = time_us(tick, 300)
out["tick"] = [ts[len(ts) // 2], ts[len(ts) * 99 // 100]]

# telemetry rate, device time
sink = SinkStream()
ch = CommandChannel(r.ctl, Idle(), sink)
ch._cmd_telemetry({"rate_hz": 10})
t0 = r.clock.ticks_ms()
r.loop(30000, ch)
n = len(sink.lines())
out["tel_device_hz"] = n * 1000 / r.clock.diff(r.clock.ticks_ms(), t0)
result(out)
"""


def _device_time():
    return mpyrun.run(_SNIPPET, extra_path=[LINK, CORE], timeout=300)


def _end_to_end(seconds=3.0, rate=10):
    sys.path.insert(0, str(LINK))
    from link_devrig import DeviceRig

    from host_tools.device.link import Link

    with DeviceRig(1, "treat") as rig, Link(rig.url) as link:
        link.set_telemetry(rate)
        link.drain_telemetry()
        t0 = time.monotonic()
        time.sleep(seconds)
        tel = link.drain_telemetry()
        dt = time.monotonic() - t0
        t_rt = []
        for _ in range(20):
            a = time.monotonic()
            link.request("hello")
            t_rt.append((time.monotonic() - a) * 1000)
    t_rt.sort()
    return len(tel) / dt, t_rt[len(t_rt) // 2]


def run():
    r = _device_time()
    tick_med = r["tick"][0]
    rows = [("Controller.tick (peer), median / p99", f"{r['tick'][0]} / {r['tick'][1]} µs")]
    for name in ("idle", "status flood", "garbage flood", "oversize lines", "fuzz flood"):
        med, p99, b = r[name]
        rows.append(
            (
                f"poll(), {name}: median / p99",
                f"{med} / {p99} µs  ({med / tick_med:.2f}× a tick, "
                f"{p99 / 1000:.2f}% of the 100 ms period at p99), {b:.0f} B/poll",
            )
        )
    rows.append(("telemetry, device time (10 Hz asked)", f"{r['tel_device_hz']:.2f} Hz"))
    hz, rtt = _end_to_end()
    rows.append(("telemetry, end to end real time (10 Hz asked)", f"{hz:.2f} Hz"))
    rows.append(("request round trip (hello), median", f"{rtt:.1f} ms (one 100 ms tick max)"))
    return rows


if __name__ == "__main__":
    for k, v in run():
        print(f"{k:<50} {v}")
