"""A MicroPython "device" for end-to-end link tests: rig loop + channel on stdio.

Run as ``micropython link_device.py SPEED [treat] [settle=S]``: the loop ticks every
100 ms of virtual time and takes 100/SPEED ms of real time, polling the
channel once after each tick (like the controller loop), on the real
``StdioStream`` over the process's stdin/stdout. Exits when stdin closes.
"""

import sys
import time

from link_rig import RigController

from cryo.clock import ManualClock
from cryo.link.channel import CommandChannel
from cryo.link.stdio import StdioStream

speed = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
clock = ManualClock()
ctl = RigController(clock)
if "treat" in sys.argv:
    ctl.start_treatment()
for arg in sys.argv:
    if arg.startswith("settle="):  # run S s of virtual time unpaced first
        n = int(float(arg[7:]) * 1000) // ctl.period_ms
        while n > 0:
            ctl.tick(clock.ticks_ms())
            clock.advance(ctl.period_ms)
            n -= 1
print("rig ready")  # DeviceRig waits for this line (noise to the link client)
stream = StdioStream()
ch = CommandChannel(ctl, stream, stream)
step_real = int(ctl.period_ms / speed)
t_real = time.ticks_ms()
while not stream.closed:
    ctl.tick(clock.ticks_ms())
    ch.poll()
    t_real = time.ticks_add(t_real, step_real)
    wait = time.ticks_diff(t_real, time.ticks_ms())
    if wait > 0:
        time.sleep_ms(wait)
    else:
        t_real = time.ticks_ms()
    clock.advance(ctl.period_ms)
