"""A MicroPython "device" running the real cryo.controller.Controller for end-to-end tests.

``micropython link_ctl_device.py [hold] [seed=N]``: the virtual board and
plant in virtual time (``link_realrig.RealRig``: tick, ``link.poll()``, valve
sub-ticks every ``service_ms`` with the plant stepped between them), the
channel on the real ``StdioStream`` (stdin/stdout), **unpaced**: virtual
time runs as fast as the CPU allows, so a 10-minute autotune on the
calibrated default plant takes seconds. ``hold``: the engineer holds the
hold-to-run inputs (footswitch first, then the handpiece: no treatment
starts). Exits when stdin closes.
"""

import sys

from link_realrig import RealRig

from cryo.link.channel import CommandChannel
from cryo.link.stdio import StdioStream

seed = 1
for arg in sys.argv:
    if arg.startswith("seed="):
        seed = int(arg[5:])
rig = RealRig(seed=seed)
ctl = rig.ctl
c = rig.clock
for _ in range(5):
    rig.tick()
    rig.service_until(c.add(c.ticks_ms(), rig.period))
if "hold" in sys.argv:
    rig.hold_for_tuning()
print("rig ready")  # DeviceRig waits for this line (noise to the link client)
stream = StdioStream()
ch = CommandChannel(ctl, stream, stream)
deadline = c.ticks_ms()
n = 0
while not stream.closed:
    rig.tick()
    ch.poll()
    deadline = c.add(deadline, rig.period)
    rig.service_until(deadline)
    n += 1
    if n % 200 == 0:
        import gc

        gc.collect()
