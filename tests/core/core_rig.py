"""Virtual-board rig for the core tests: emulated chips + plant + the real
firmware (board layer, drivers, valves, interlock, protocol, controller) in
virtual time. Runs unchanged under CPython and MicroPython.

``Rig(seed, start_ms, config, plant)`` builds the sim world (boards/sim
vboard.World, fast mode, ManualClock that wraps at 2**30), the board
(cryo.board.Board from boards/sim/board.json) and the Controller with a
treatment log in a temporary directory (cryo.storage.log.TreatmentLog).
``step()`` advances one tick: clock → plant → ``controller.tick(now)``.
"""

import os

import vboard

from cryo.clock import ManualClock


def _tmpdir(tag):
    base = os.getenv("TMPDIR") or "/tmp"
    n = 0
    while True:
        path = "%s/cryo_core_%s_%d_%d" % (base, tag, os.getpid() if hasattr(os, "getpid") else 0, n)
        try:
            os.mkdir(path)
            return path
        except OSError:
            n += 1


class MemLog:
    """A RAM stand-in for TreatmentLog, for tests whose storage is not under test."""

    def __init__(self):
        self.active = False
        self.full = False
        self.events = []
        self.samples = 0
        self.room = True
        self.capped = None

    def capacity_bytes(self):
        return 1 << 20

    def has_room_for(self, seconds):
        return self.room

    def free_bytes(self):
        return 0 if not self.room else 1 << 20

    def bytes_for(self, seconds):
        return seconds * 160

    def begin_session(self, header, now_ms=0, expected_s=None):
        if not self.room:
            raise OSError("no room")
        self.active = True
        return 1

    def sample_c(self, *a):
        self.samples += 1
        return True

    def commit_soon(self):
        pass

    def event(self, code, arg=0, arg2=0, now_ms=None, commit=True):
        if len(self.events) < 500:
            self.events.append((code, arg, arg2))

    def end_session(self, summary=None, now_ms=None):
        self.active = False
        return summary


def make_log(clock, tag="log"):
    from cryo.storage.log import TreatmentLog

    return TreatmentLog(root=_tmpdir(tag) + "/logs", clock=clock)


class Rig:
    """The real firmware on the virtual board in virtual time.

    ``persist``: a directory for the safety state and the device event log
    (``safety.bin``, ``events.bin``), kept across ``reboot``; None: a fresh
    one per rig (still real files: the controller always has its memory).
    """

    def __init__(
        self,
        seed=1,
        start_ms=0,
        config=None,
        plant="default",
        log=True,
        board=None,
        app=None,
        persist=None,
        audit=None,
    ):
        import plant as plant_mod

        self.clock = ManualClock(start_ms)
        self._defn = board if board is not None else vboard.load_board()
        self.world = vboard.World(
            board=self._defn,
            plant_params=plant_mod.load(plant),
            seed=seed,
            clock=self.clock,
            realtime=False,
        )
        vboard.install(self.world)
        self.log = make_log(self.clock) if log is True else log
        self.persist = persist if persist is not None else _tmpdir("persist")
        self.config = {"require_wdt": True}
        if config:
            for k in config:
                self.config[k] = config[k]
        self._app = app
        self._audit = audit
        self.resets = 0
        self._build()

    def _build(self):
        from cryo.board import Board
        from cryo.controller import Controller
        from cryo.storage.events import DeviceEventLog
        from cryo.storage.safety_state import SafetyState

        self.board = Board(self._defn, self.clock)
        self.ctl = Controller(
            self.board,
            self.config,
            log=self.log,
            app=self._app,
            audit=self._audit,
            state=SafetyState(self.persist + "/safety.bin"),
            events=DeviceEventLog(self.persist + "/events.bin"),
        )
        self.period = self.ctl.period_ms

    def reboot(self, cause="power"):
        """A reset of the board (``power``: a power cut; ``reset``: the reset
        line; ``wdt``: the watchdog): every output de-energised at once, then
        the firmware starts again on the same flash; the patient, the plant
        and the inputs stay as they are."""
        self.world.outputs_off()
        self.world.reset_cause = cause
        if self.log is not None and hasattr(self.log, "root"):
            from cryo.storage.log import TreatmentLog

            self.log = TreatmentLog(root=self.log.root, clock=self.clock)
        self.resets += 1
        self._build()

    @property
    def now(self):
        return self.clock.ticks_ms()

    def step(self, n=1, on_sub=None, sub=False):
        """``n`` ticks. With ``sub`` (or an ``on_sub(now)`` callback) each
        tick follows a period of valve sub-ticks as ``run()`` spends it
        (``World.wait_for_tick``); without, the valve is serviced at the
        tick only (the fast test plant's 10x spray is tuned for that: with
        sub-tick pulses its surface swings faster than the rate check)."""
        ctl = self.ctl
        w = self.world
        c = self.clock
        i = 0
        while i < n:
            now = c.add(c.ticks_ms(), self.period)
            if sub or on_sub is not None:
                w.wait_for_tick(ctl, now, on_sub)
            else:
                c.advance(self.period)
                w.advance_to(now)
            ctl.tick(now)
            ctl.idle(now)
            if w.wdt_expired(now):
                self.resets += 1
                w.wdt_fed_ms = now  # the test observes the bite; the board would reboot
            i += 1

    def skip(self, ms):
        """Time passes without a tick (a stalled loop)."""
        self.clock.advance(ms)
        self.world.advance_to(self.clock.ticks_ms())

    # -- operator actions on the virtual board --------------------------
    def hold(self, on=True):
        self.world.set_input("footswitch", 1 if on else 0)
        self.world.set_input("handpiece", 1 if on else 0)

    def hold_for_tuning(self):
        """The engineer's hold-to-run for a TUNE run: the footswitch goes
        down with the handpiece still holstered (a press with it out would
        start a treatment), then the handpiece is lifted."""
        self.world.set_input("footswitch", 1)
        self.step(1)
        self.world.set_input("handpiece", 1)
        self.step(1)

    def start(self):
        """IDLE → READY (self-test) → PRECOOL via the footswitch."""
        self.step(3)
        self.ctl.start()
        self.world.set_input("handpiece", 1)
        self.world.set_input("footswitch", 1)
        self.step(1)

    def phase(self):
        return self.ctl.protocol.state

    def wait_thawed(self, max_ticks=3000):
        """Tick until the site counts as thawed (no re-freezing before)."""
        i = 0
        while self.ctl.site.frozen and i < max_ticks:
            self.step(1)
            i += 1
        return not self.ctl.site.frozen

    def run_until(self, phase, max_ticks=3000):
        i = 0
        while self.ctl.protocol.state != phase and i < max_ticks:
            self.step(1)
            i += 1
        return self.ctl.protocol.state == phase

    def run_until_regulating(self, max_ticks=3000):
        """Tick into FREEZE and on until the solenoid's proof at its entry
        passed (the interlock grants the permit: the regulator runs)."""
        i = 0
        while not (self.ctl.protocol.state == 4 and self.ctl.il.permit) and i < max_ticks:
            self.step(1)
            i += 1
        return self.ctl.protocol.state == 4 and self.ctl.il.permit

    def valves_closed(self):
        b = self.board
        return (
            not b.valve_energised() and b.master_pin.value() == 0 and not self.world.valve_is_open()
        )
