"""Test-only closed loop exposing the controller interface of docs/link.md.

Besides ``cryo.controller.Controller`` (link_realrig.py), the link
tests run the channel against this loop built from real parts:
``PID``, ``LoopTimer``, ``SolenoidValve`` and the plant model, in
virtual time (``ManualClock``). MicroPython and CPython. It offers no
autotune or step test (the channel answers ``E_UNSUPPORTED``): those run
against the real controller (test_ctl_e2e.py, test_real_controller.py).

``tick(now_ms)`` is the control tick; ``run_for(ms, channel, poll_budget)``
is a scheduler like the controller loop: tick at each deadline, poll the
channel in the slack (test_fuzz_mpy.py); link_device.py paces the tick
against real time instead.
"""

import time

from link_fakes import SCHEMA, RecordingPin, check_param
from plant import Plant, load

from cryo.actuation.valve import SolenoidValve
from cryo.link.errors import NotNow
from cryo.pid import PID, LoopTimer


class RigController:
    def __init__(self, clock, plant="default", seed=1, period_ms=100):
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

        Each poll advances virtual time by its measured cost (µs, real);
        polling stops when less than ``poll_budget_ms`` remains before the
        next deadline (the real loop then sleeps until the deadline).
        """
        clock = self.clock
        end = clock.add(clock.ticks_ms(), ms)
        acc_us = 0
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
                    t0 = time.ticks_us()
                    busy = channel.poll()
                    acc_us += time.ticks_diff(time.ticks_us(), t0)
                    if acc_us >= 1000:
                        clock.advance(acc_us // 1000)
                        acc_us %= 1000
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
