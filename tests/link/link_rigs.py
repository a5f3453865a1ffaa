"""Closed loops in virtual time that serve the command channel.

``RigController``: a stand-in controller closing a loop of real parts
(``PID``, ``LoopTimer``, ``SolenoidValve``) around the plant model, with
the tiny configuration table of link_fakes.py (fuzz and end-to-end tests).
``RealRig``: the real controller on the virtual board (tests/core/core_rig.py:
``vboard.World`` in fast mode, ``ManualClock``, ``cryo.board.Board``,
``cryo.controller.Controller``); ``loop(ms, channel)`` runs the tick like
``cryo.core.loop.Loop`` does on hardware (tick, then ``link.poll()``, then
valve sub-ticks every ``service_ms`` with the plant stepped between them
until the next tick), charging each poll a fixed cost in virtual time
(``POLL_CHARGE_MS``), and records the valve output after every tick. MicroPython and CPython.

Run as a script, the module is the device of the end-to-end tests: a rig
and the real channel on the real ``StdioStream`` (the process's
stdin/stdout), polled once after every tick like the controller loop does.
It exits when stdin closes and prints "rig ready" first
(``link_devrig.DeviceRig`` starts it and waits for that):

``micropython link_rigs.py rig SPEED [treat] [settle=S]``: ``RigController``
ticking every 100 ms of virtual time in 100/SPEED ms of real time; ``treat``
starts a treatment, ``settle=S`` first runs S s of virtual time unpaced.

``micropython link_rigs.py ctl [hold] [seed=N]``: ``RealRig``, **unpaced**:
virtual time runs as fast as the CPU allows, so a 10-minute autotune on the
calibrated default plant takes seconds. ``hold``: the engineer holds the
hold-to-run inputs (footswitch first, then the handpiece: no treatment
starts).
"""

import sys
import time

from core_rig import MemLog, Rig
from link_fakes import POLL_CHARGE_MS, SCHEMA, RecordingPin, check_param

from cryo.link.errors import NotNow


class RigController:
    """The stand-in with a closed loop. It offers no autotune or step test
    (the channel answers ``E_UNSUPPORTED``): those run against the real
    controller (test_ctl_e2e.py, test_real_controller.py).

    ``tick(now_ms)`` is the control tick; ``run_for(ms, channel,
    poll_budget)`` is a scheduler like the controller loop: tick at each
    deadline, poll the channel in the slack (test_fuzz_mpy.py);
    the device script below paces the tick against real time instead.
    """

    def __init__(self, clock, plant="default", seed=1, period_ms=100):
        # the plant model and loop parts only where a loop runs (FakeController
        # users, e.g. bench_link under CPython, need not have them on the path)
        from plant import Plant, load

        from cryo.actuation.valve import SolenoidValve
        from cryo.pid import PID, LoopTimer

        self.clock = clock
        self.period_ms = period_ms
        self.plant = Plant(load(plant), seed)
        self.pin = RecordingPin()
        self.valve = SolenoidValve(self.pin, clock, window_ms=300, min_on_ms=50, min_off_ms=50)
        self.config = {"pid.kp": 0.1, "pid.ki": 0.01, "pid.kd": 0.0, "freeze.setpoint_c": -30.0}
        c = self.config
        self.pid = PID(c["pid.kp"], c["pid.ki"], c["pid.kd"])
        self.timer = LoopTimer(clock, period_ms)
        self.audit = []
        self.phase = "IDLE"
        self.mode = "auto"
        self.demand = 0.0
        self.service = False
        self.ticks = 0
        self.max_late_ms = 0
        self.polls = 0

    # ---- the tick ----------------------------------------------------
    def tick(self, now_ms):
        self.ticks += 1
        dt = self.timer.dt_s(now_ms)
        self.plant.step(dt, 1.0 if self.valve.is_open else 0.0, True)
        measured = self.plant.probe_c
        if self.phase == "FREEZE":
            self.demand = self.pid.update(self.config["freeze.setpoint_c"], measured, dt)
        else:
            self.demand = 0.0
        self.valve.permit = self.phase == "FREEZE"
        self.valve.request(self.demand)
        self.valve.refresh(now_ms)
        self.valve.service(now_ms)

    def start_treatment(self):
        self.phase = "FREEZE"

    def run_for(self, ms, channel=None, poll_budget_ms=2):
        """Tick every period for ``ms`` of virtual time; poll in the slack.

        Each poll that did work advances virtual time by ``POLL_CHARGE_MS``
        (a fixed cost several times the measured median, bench_link: the
        wall clock would let a preempted test process stretch a poll);
        polling stops when less than ``poll_budget_ms`` remains before the
        next deadline (the real loop then sleeps until the deadline).
        """
        clock = self.clock
        end = clock.add(clock.ticks_ms(), ms)
        deadline = clock.ticks_ms()
        while clock.diff(end, clock.ticks_ms()) > 0:
            now = clock.ticks_ms()
            late = clock.diff(now, deadline)
            if late > self.max_late_ms:
                self.max_late_ms = late
            self.tick(now)
            deadline = clock.add(deadline, self.period_ms)
            if channel is not None:
                busy = True
                while busy and clock.diff(deadline, clock.ticks_ms()) > poll_budget_ms:
                    busy = channel.poll()
                    if busy:
                        clock.advance(POLL_CHARGE_MS)
                    self.polls += 1
            left = clock.diff(deadline, clock.ticks_ms())
            if left > 0:
                clock.advance(left)

    # ---- controller interface for the channel -------------------------
    def status(self):
        p = self.plant
        return {
            "t_ms": self.clock.ticks_ms(),
            "phase": self.phase,
            "setpoint_c": self.config["freeze.setpoint_c"],
            "temps": {"tissue": p.probe_c, "aux": p.aux_c},
            "cj_c": p.cold_junction_c,
            "demand": self.demand,
            "valve": self.valve.is_open,
            "p": self.pid.p_term,
            "i": self.pid.i_term,
            "d": self.pid.d_term,
            "faults": [],
            "alarms": [],
            "mode": self.mode,
            "overruns": self.timer.overruns,
            "audit_n": len(self.audit),
            "last_audit": self.audit[-1] if self.audit else None,
        }

    def get_param(self, name):
        if name not in self.config:
            raise ValueError("unknown parameter %r; known: %s" % (name, ", ".join(SCHEMA)))
        return self.config[name]

    def set_param(self, name, value, role):
        check_param(name, value, role)
        old = self.config[name]
        self.config[name] = value
        if name.startswith("pid."):
            c = self.config
            self.pid.set_gains(c["pid.kp"], c["pid.ki"], c["pid.kd"])
        self.audit.append({"what": name, "old": old, "new": value, "role": role})
        return value

    def save_config(self, role):
        return True

    def ack_fault(self, role):
        return {"faults": []}

    def request_service_mode(self, role):
        if self.phase != "IDLE":
            raise NotNow("service mode only when idle: a treatment is running (%s)" % self.phase)
        self.service = True


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

    def loop(self, ms, channel=None, on_tick=None, charge=True, until=None):
        """Tick every period for ``ms`` (None: no end); after each tick poll
        once (as ``Controller._loop``); stop early when ``until()`` is true.

        ``charge``: advance virtual time by ``POLL_CHARGE_MS`` per poll, a
        fixed cost several times the measured median (bench_link prints
        it): the wall clock would let a preempted test process shift a
        tick. Off for tests about state only.
        """
        c = self.clock
        end = None if ms is None else c.add(c.ticks_ms(), ms)
        deadline = c.ticks_ms()
        while (end is None or c.diff(end, c.ticks_ms()) > 0) and not (until and until()):
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


# ---- the device process of the end-to-end tests ---------------------------


def _arg(prefix, default):
    for a in sys.argv:
        if a.startswith(prefix):
            return float(a[len(prefix) :])
    return default


def _paced_rig(speed):
    """``RigController`` paced against real time: (controller, step(channel))."""
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


def _device_main():
    import gc

    from cryo.link.channel import CommandChannel
    from cryo.link.stdio import StdioStream

    if sys.argv[1] == "ctl":
        rig = RealRig(seed=int(_arg("seed=", 1)))
        rig.loop(5 * rig.period)
        if "hold" in sys.argv:
            rig.hold_for_tuning()
        print("rig ready")  # noise to the link client
        stream = StdioStream()
        ch = CommandChannel(rig.ctl, stream, stream)
        n = [0]

        def collect():
            n[0] += 1
            if n[0] % 200 == 0:
                gc.collect()

        rig.loop(None, ch, collect, False, lambda: stream.closed)
        return
    ctl, step = _paced_rig(float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
    print("rig ready")  # noise to the link client
    stream = StdioStream()
    ch = CommandChannel(ctl, stream, stream)
    while not stream.closed:
        step(ch)


if __name__ == "__main__":
    _device_main()
