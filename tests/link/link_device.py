"""A MicroPython "device" for end-to-end link tests: a controller and the
real channel on the real ``StdioStream`` (the process's stdin/stdout),
polled once after every tick like the controller loop does. Exits when stdin
closes; prints "rig ready" first (``link_devrig.DeviceRig`` waits for it).

``micropython link_device.py rig SPEED [treat] [settle=S]``: the rig loop
(``link_fakes.RigController``: real PID, valve and plant model) ticking every
100 ms of virtual time in 100/SPEED ms of real time; ``treat`` starts a
treatment, ``settle=S`` first runs S s of virtual time unpaced.

``micropython link_device.py ctl [hold] [seed=N]``: the real
``cryo.controller.Controller`` on the virtual board (``link_realrig.RealRig``:
tick, poll, valve sub-ticks every ``service_ms`` with the plant stepped
between them), **unpaced**: virtual time runs as fast as the CPU allows, so
a 10-minute autotune on the calibrated default plant takes seconds. ``hold``:
the engineer holds the hold-to-run inputs (footswitch first, then the
handpiece: no treatment starts).
"""

import gc
import sys
import time

from cryo.link.channel import CommandChannel
from cryo.link.stdio import StdioStream


def _arg(prefix, default):
    for a in sys.argv:
        if a.startswith(prefix):
            return float(a[len(prefix) :])
    return default


def rig_loop(speed):
    """The rig loop, paced against real time: (controller, step(channel))."""
    from link_fakes import RigController

    from cryo.clock import ManualClock

    clock = ManualClock()
    ctl = RigController(clock)
    if "treat" in sys.argv:
        ctl.start_treatment()
    n = int(_arg("settle=", 0) * 1000) // ctl.period_ms
    while n > 0:
        ctl.tick(clock.ticks_ms())
        clock.advance(ctl.period_ms)
        n -= 1
    step_real = int(ctl.period_ms / speed)
    t_real = [time.ticks_ms()]

    def step(ch):
        ctl.tick(clock.ticks_ms())
        ch.poll()
        t_real[0] = time.ticks_add(t_real[0], step_real)
        wait = time.ticks_diff(t_real[0], time.ticks_ms())
        if wait > 0:
            time.sleep_ms(wait)
        else:
            t_real[0] = time.ticks_ms()
        clock.advance(ctl.period_ms)

    return ctl, step


def real_controller():
    """The real controller in unpaced virtual time: (controller, step(channel))."""
    from link_realrig import RealRig

    rig = RealRig(seed=int(_arg("seed=", 1)))
    c = rig.clock
    for _ in range(5):
        rig.tick()
        rig.service_until(c.add(c.ticks_ms(), rig.period))
    if "hold" in sys.argv:
        rig.hold_for_tuning()
    deadline = [c.ticks_ms()]
    n = [0]

    def step(ch):
        rig.tick()
        ch.poll()
        deadline[0] = c.add(deadline[0], rig.period)
        rig.service_until(deadline[0])
        n[0] += 1
        if n[0] % 200 == 0:
            gc.collect()

    return rig.ctl, step


if sys.argv[1] == "ctl":
    ctl, step = real_controller()
else:
    ctl, step = rig_loop(float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
print("rig ready")  # noise to the link client
stream = StdioStream()
ch = CommandChannel(ctl, stream, stream)
while not stream.closed:
    step(ch)
