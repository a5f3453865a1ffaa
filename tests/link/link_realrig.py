"""The real controller on the virtual board, in virtual time, with the channel.

The virtual device is the core tests' (tests/core/core_rig.py: ``vboard.World``
in fast mode, ``ManualClock``, ``cryo.board.Board``,
``cryo.controller.Controller``); ``loop(ms, channel)`` runs the tick like ``cryo.core.loop.Loop`` does on
hardware (tick, then ``link.poll()``, then valve sub-ticks every
``service_ms`` with the plant stepped between them until the next tick),
charging each poll its measured cost in virtual time, and records the valve
output after every tick. MicroPython
and CPython.
"""

from core_rig import MemLog, Rig
from link_fakes import POLL_CHARGE_MS


class RealRig:
    def __init__(self, seed=1, start_ms=0, plant="default", config=None):
        # The core tests' virtual device (world, board layer, controller with
        # require_wdt), with the treatment log in RAM: storage is not under
        # test here, and the fuzzer must not fill a directory.
        rig = Rig(seed=seed, start_ms=start_ms, config=config, plant=plant, log=MemLog())
        self.clock = rig.clock
        self.world = rig.world
        self.board = rig.board
        self.ctl = rig.ctl
        self.period = rig.period
        self.valve_trace = bytearray()
        self.max_late_ms = 0
        self.polls = 0

    def tick(self):
        now = self.clock.ticks_ms()
        self.world.advance_to(now)
        self.ctl.tick(now)
        self.ctl.idle(now)  # the loop's idle point after the tick
        if self.world.wdt_expired(now):
            self.world.wdt_fed_ms = now
        self.valve_trace.append(1 if self.world.valve_is_open() else 0)

    def start_treatment(self):
        for _ in range(3):
            self.tick()
            self.service_until(self.clock.add(self.clock.ticks_ms(), self.period))
        self.ctl.start()
        self.world.set_input("handpiece", 1)
        self.world.set_input("footswitch", 1)

    def hold_for_tuning(self):
        """Hold-to-run inputs for an engineer's autotune/step test without
        starting a treatment: the footswitch goes down while the handpiece
        is still in its holder (a press with the handpiece out starts a
        treatment), then the handpiece is lifted."""
        self.world.set_input("footswitch", 1)
        self.tick()
        self.service_until(self.clock.add(self.clock.ticks_ms(), self.period))
        self.world.set_input("handpiece", 1)

    def loop(self, ms, channel=None, on_tick=None, charge=True):
        """Tick every period for ``ms``; after each tick poll once (as ``Controller._loop``).

        ``charge``: advance virtual time by ``POLL_CHARGE_MS`` per poll, a
        fixed cost several times the measured median (bench_link prints
        it): the wall clock would let a preempted test process shift a
        tick. Off for tests about state only.
        """
        c = self.clock
        end = c.add(c.ticks_ms(), ms)
        deadline = c.ticks_ms()
        while c.diff(end, c.ticks_ms()) > 0:
            late = c.diff(c.ticks_ms(), deadline)
            if late > self.max_late_ms:
                self.max_late_ms = late
            self.tick()
            if on_tick is not None:
                on_tick()
            if channel is not None:
                channel.poll()
                if charge:
                    c.advance(POLL_CHARGE_MS)
                self.polls += 1
            deadline = c.add(deadline, self.period)
            self.service_until(deadline)

    def service_until(self, deadline):
        """The wait for the next tick, as ``Controller.run`` spends it
        (``vboard.World.wait_for_tick``)."""
        self.world.wait_for_tick(self.ctl, deadline)
