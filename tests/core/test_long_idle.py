"""Time comparisons after days of idle, across the 2**30 ms tick wrap.

On a 32-bit board ``ticks_diff`` of two instants more than 2**29 ms apart
(6.2 days) wraps to a negative value. Every timestamp the firmware keeps is
either refreshed every tick, re-armed when a phase starts, or aged so it
never falls that far behind. These scenarios hold the stale ones past 6.2
and 12.4 days (hourly evaluations, no samples) and check the behaviour a
wrap would break: a dead required sensor stays a SENSOR condition, a
channel whose probe was broken for a week recovers once it reads again
(the valve idle for days: tests/safety/test_valve_wrap.py).
"""

import core_scenarios as SC
from core_rig import Rig

from cryo.clock import ManualClock
from cryo.interlock import conditions as C
from cryo.supervision.channel import ST_OK, Channel

HOUR = 3600 * 1000


def dead_sensor_stays_a_fault(days=13.0):
    """The tissue probe stops delivering samples; the interlock is
    evaluated every hour for ``days``: SENSOR must be active every time."""
    rig = Rig(seed=41, config=SC.FAST, plant=SC.FAST_PLANT)
    rig.step(3)
    il = rig.ctl.il
    now = rig.now
    misses = 0
    n = int(days * 24)
    k = 0
    while k < n:
        now = rig.clock.add(now, HOUR)
        il.evaluate(now)
        if not il.active & (1 << C.SENSOR):
            misses += 1
        k += 1
    return misses


def channel_recovers_after_a_week_broken():
    """A MAX31855 channel on the emulated chip: open for a week (polled
    hourly), then connected again: it reads OK within a second."""
    from chips.bus import SpiBus
    from chips.max31855 import Max31855Emu

    from cryo.sensing.max31855 import MAX31855

    clk = ManualClock((1 << 30) - 700)
    bus = SpiBus()
    emu = Max31855Emu("K")
    drv = MAX31855(bus, bus.attach(emu), "K")
    ch = Channel("tissue", drv, clk)
    emu.set_state(20.0, 25.0)
    k = 0
    while k < 10:
        clk.advance(100)
        ch.update(clk.ticks_ms())
        k += 1
    ok_before = ch.status == ST_OK
    emu.open_circuit = True
    k = 0
    while k < 7 * 24:
        clk.advance(HOUR)
        ch.update(clk.ticks_ms())
        k += 1
    emu.open_circuit = False
    emu.set_state(21.0, 25.0)
    k = 0
    while k < 10:
        clk.advance(100)
        ch.update(clk.ticks_ms())
        ch.convert()
        k += 1
    return ok_before, ch.status == ST_OK


def test_a_dead_required_sensor_stays_a_fault_for_weeks():
    assert dead_sensor_stays_a_fault() == 0


def test_channel_recovers_after_a_week_without_samples():
    assert channel_recovers_after_a_week_broken() == (True, True)


def test_long_idle_on_micropython(mpy):
    here = __file__.rsplit("/", 1)[0]
    res = mpy.run(
        """
import sys
sys.path.append(%r)
sys.path.append(%r)
import test_long_idle as T
result({"dead": T.dead_sensor_stays_a_fault(), "chan": T.channel_recovers_after_a_week_broken()})
"""
        % (here, here.rsplit("/", 2)[0] + "/boards/sim")
    )
    assert res["dead"] == 0
    assert res["chan"] == [True, True]
