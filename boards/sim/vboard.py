"""The virtual board's world: one :class:`World` per virtual board process.

The sim ``machine`` module (boards/sim/machine.py) forwards every hardware
access to ``vboard.world``: the firmware's real drivers talk to emulated
chips at frame level, the valve pins drive the plant. The world holds the
pin levels and the board's roles (board.json), and steps its parts:

- thermocouples.py: the emulated chips on the SPI bus, by chip select;
- valves.py: the solenoid and the master valve in series, as the plant
  sees them (flow, uncommanded flow, stuck faults);
- pressure.py: the supply-pressure transducer on the ADC pin;
- plant.py: the tissue, cryogen line and sensors; scenario.py: timed events;
- timers.py: the armed ``machine.Timer`` objects; isr.py: hard callbacks;
- panel.py: the real-time front panel; persist.py: what survives a reset;
- rootfs.py: the flash chip and the root filesystem (re-exported here).

Time: the world reads its ``clock`` (``cryo.clock`` interface). In fast
virtual time the runner owns a ``ManualClock`` and calls :meth:`advance_to`
after moving it; in real time (``cryo sim`` on a pty) the clock is the board
clock and the plant is integrated lazily whenever the firmware reads hardware
(:meth:`sync`), so it advances with wall time.

Allocation: pin writes, pin reads and SPI transfers are allocation-free when
no plant step is due (the safety path may run with the heap locked). A plant
step allocates; in real time it waits while the heap is locked.

Resets: :meth:`hard_reset` is what ``machine.reset()`` and an expired
watchdog do. In real time the process tells the ``cryo sim`` relay over the
control pipe (``SIM_CTRL_FD``) and waits to be killed and restarted; in fast
time it raises :class:`BoardReset`, which the runner catches to reboot.
"""

import json
import time

import persist
import plant as _plant
import scenario as _scenario
from isr import dispatch
from panel import FrontPanel
from pressure import PressureTransducer
from rootfs import make_flash, mount_root, remount_root  # noqa: F401 - the world's public API
from thermocouples import Thermocouples
from timers import TimerTable
from valves import OPEN, SeriesValves

_PLANT_STEP_MS = 20  # plant integration granularity
_MAX_CATCHUP_MS = 5000  # real time: longest gap integrated in one sync


class BoardReset(BaseException):
    """Fast mode: the virtual board resets (machine.reset() or watchdog)."""

    def __init__(self, cause):
        super().__init__(cause)
        self.cause = cause


def load_board(path=None):
    """The sim board definition (boards/sim/board.json) as a dict.

    A variant names the definition it differs from in ``"base"`` (a file
    beside it) and gives only the top-level fields it replaces, so it
    follows every other change of its base (board_proportional.json)."""
    if path is None:
        f = __file__
        i = f.rfind("/")
        path = (f[:i] if i >= 0 else ".") + "/board.json"
    with open(path) as f:
        d = json.load(f)
    base = d.pop("base", None)
    if base is None:
        return d
    i = path.rfind("/")
    out = load_board((path[:i] if i >= 0 else ".") + "/" + base)
    for k in d:
        out[k] = d[k]
    return out


class World:
    def __init__(self, board=None, plant_params=None, seed=0, clock=None, realtime=True):
        if board is None:
            board = load_board()
        if plant_params is None:
            plant_params = _plant.load("default")
        if clock is None:
            from cryo.clock import BoardClock

            clock = BoardClock()
        self.board = board
        self.clock = clock
        self.realtime = realtime
        self.plant = _plant.Plant(plant_params, seed)
        self.levels = {}  # pin id -> level (outputs: driven level; inputs: physical)
        self.modes = {}
        self.pwm = {}  # pin id -> [freq, duty_u16]
        self.irqs = {}  # pin id -> (handler, trigger, pin, hard)
        # Roles from the board definition.
        self.valve_id = board["valve"]["pin"]
        self.valve_active = 1 if board["valve"].get("active_high", True) else 0
        # A proportional valve opens by its PWM's duty, a solenoid by its pin.
        self.valve_proportional = board["valve"].get("kind") == "proportional"
        self.master_id = board["master_valve"]["pin"]
        self.master_active = 1 if board["master_valve"].get("active_high", True) else 0
        self.inputs = {}  # role -> pin id
        self.invert = {}  # pin id -> invert flag
        for role, spec in board["inputs"].items():
            self.inputs[role] = spec["pin"]
            self.invert[spec["pin"]] = 1 if spec.get("invert", False) else 0
        # Logical input states (scenario): e-stop loop closed, not pressed,
        # handpiece in its holder; the valve driver's supply (read back
        # after the hardwired e-stop contact) present while the loop is closed.
        self.logical = {"estop": 1, "footswitch": 0, "handpiece": 0, "valve_supply": 1}
        for role in self.inputs:
            self._apply_input(role)
        # Safe power-up levels: every output low (valves de-energised).
        self.levels[self.valve_id] = 1 - self.valve_active
        self.levels[self.master_id] = 1 - self.master_active
        # Thermocouple chips by CS pin, deselected.
        self.tcs = Thermocouples(board, clock, seed)
        self.channels = self.tcs.channels  # by name: the scenario's faults go here
        for pid in self.tcs.by_cs:
            self.levels[pid] = 1
        self.pressure = PressureTransducer(board)
        self.adc_id = self.pressure.pin
        self._t_last = clock.ticks_ms()
        self.valves = SeriesValves(clock, self._t_last)
        self.timers = TimerTable(clock, realtime, self._advance)
        self.version = 0
        # Watchdog and resets.
        self.wdt_timeout_ms = 0
        self.wdt_fed_ms = 0
        self.reset_cause = None
        self.uid = None  # hex of the flash chip's unique id, when the host gave it
        self.ctrl = None  # real time: control pipe to the cryo sim relay
        self.flash = None  # the board's FlashBlockDevice (for power cuts)
        self.state_file = None  # real time: persist.StateFile (keep_state)
        self.scenario = None
        self.panel = None  # real time: panel.FrontPanel (attach_panel)
        self.serial_in = bytearray()
        self.pending = []  # runner events (fast mode) from the scenario
        self.log = []  # scenario events applied: (t_ms, text)
        self._channel_values()

    # The valves' figures and faults under the world's names (docs/virtual-board.md).
    valve_cycles = property(lambda w: w.valves.cycles)
    flow_ms = property(lambda w: w.valves.flow_ms)
    uncommanded_ms = property(lambda w: w.valves.uncommanded_ms)
    valve_stuck = property(
        lambda w: w.valves.solenoid_stuck, lambda w, v: setattr(w.valves, "solenoid_stuck", v)
    )
    master_stuck = property(
        lambda w: w.valves.master_stuck, lambda w, v: setattr(w.valves, "master_stuck", v)
    )
    # The transducer lost (tests' faults, persist.py) under the world's name.
    adc_offline = property(
        lambda w: w.pressure.offline, lambda w, v: setattr(w.pressure, "offline", v)
    )

    # ------------------------------------------------------------- pins
    def _apply_input(self, role):
        pid = self.inputs[role]
        self.levels[pid] = self.logical[role] ^ self.invert[pid]

    def hold_input(self, role, logical):
        """Set a logical input's level without an edge (restored state)."""
        self.logical[role] = logical
        self._apply_input(role)

    def set_input(self, role, logical):
        """Scenario: set a logical input (estop: 1 = loop closed/ok).

        A level change calls the pin's IRQ handler at once, so a pulse (0
        then 1 before the next tick) fires it like an edge on a board. The
        e-stop also sets ``valve_supply`` (the hardwired contact in the
        valve driver's supply), when the board has that input."""
        if role not in self.inputs:
            raise ValueError("board has no input %r; inputs: %s" % (role, ", ".join(self.inputs)))
        self._set_level(role, 1 if logical else 0)
        if role == "estop" and "valve_supply" in self.inputs:
            self._set_level("valve_supply", self.logical["estop"])

    def _set_level(self, role, logical):
        self.logical[role] = logical
        pid = self.inputs[role]
        old = self.levels[pid]
        self._apply_input(role)
        new = self.levels[pid]
        irq = self.irqs.get(pid)
        if irq is not None and old != new:
            handler, trigger, pin, hard = irq
            if (new and trigger & 1) or (not new and trigger & 2):
                dispatch(handler, pin, hard)

    def read_pin(self, pid):
        if self.realtime:
            self.sync()
        return self.levels[pid]

    def write_pin(self, pid, v):
        """Drive an output. Allocation-free (safety path: valve off)."""
        self.levels[pid] = v
        if pid == self.valve_id or pid == self.master_id:
            self.valve_edge()
            return
        if pid in self.tcs.by_cs:
            if v == 0 and self.realtime:
                self.sync()
            self.tcs.chip_select(pid, v, self.version, self.plant)

    def present_all(self):
        """Bring every chip up to the plant now, so a measurement of the
        firmware's tick (allocation, time) does not include the emulators."""
        self.tcs.present_all(self.version, self.plant)

    def valve_edge(self):
        """The valve outputs changed (or may have): tell the series valves."""
        if self.valve_proportional:
            st = self.pwm.get(self.valve_id)
            duty = st[1] if st is not None else 0
            # per mille, rounded up: any duty > 0 opens the valve a little
            sol = (duty * OPEN + 65534) // 65535 if duty > 0 else 0
        else:
            sol = OPEN if self.levels[self.valve_id] == self.valve_active else 0
        self.valves.drive(sol, OPEN if self.levels[self.master_id] == self.master_active else 0)

    def pwm_edge(self, pid):
        """A PWM's duty changed: the proportional valve's drives the plant."""
        if pid == self.valve_id and self.valve_proportional:
            self.valve_edge()

    def valve_is_open(self):
        """The cryogen valve is driven open: the solenoid's pin energised or
        the proportional valve's duty > 0 (what the firmware commands)."""
        return self.valves.solenoid_energised()

    def valve_opening(self):
        """How far the firmware drives the cryogen valve open, 0..1 (a
        solenoid: 0 or 1)."""
        return self.valves.opening() / OPEN

    def cryogen_path_open(self):
        """Solenoid and master valve both open now, each by its pin or stuck
        open by a scenario fault: cryogen flows if the dewar has pressure."""
        return self.valves.path_open()

    # ---------------------------------------------------------- SPI, ADC
    def spi_transfer(self, wbuf, rbuf):
        self.tcs.transfer(wbuf, rbuf)

    def adc_u16(self):
        """Supply-pressure transducer code (int, allocation-free): computed at
        each plant step, so scenario changes show at the next step (20 ms)."""
        if self.realtime:
            self.sync()
        return self.pressure.read_u16()

    # ------------------------------------------------------------- time
    def sync(self):
        """Real time: integrate the plant up to now (lazy, on hardware access).
        Fast time (the runner's sub-ticks): also fire the timers due by now."""
        now = self.clock.ticks_ms()
        if self.timers.fire_on_access():
            self.timers.run(now)
        if self.clock.diff(now, self._t_last) < _PLANT_STEP_MS:
            return
        try:
            probe = [now]  # allocation probe: fails when the heap is locked
        except MemoryError:
            return
        del probe
        self.advance_to(now)

    def wait_for_tick(self, ctl, deadline, on_sub=None):
        """Spend the wait until the next tick at ``deadline`` as
        ``Controller.run`` does on a board: the plant stepped and
        ``ctl.service_valve(now)`` called every ``ctl.service_ms`` (so the
        valve's time-proportioning resolution is the sub-tick), then the
        clock and plant brought to ``deadline`` for the caller's
        ``ctl.tick(deadline)``. ``on_sub(now)`` is called after each valve
        sub-tick. Returns the ms the valve was open meanwhile."""
        clock = self.clock
        sub = ctl.service_ms
        left = clock.diff(deadline, clock.ticks_ms())
        open_ms = 0
        while left > 0:
            step = sub if 0 < sub < left else left
            clock.advance(step)
            left -= step
            now = clock.ticks_ms()
            self.advance_to(now)
            if left > 0:
                ctl.service_valve(now)
                if on_sub is not None:
                    on_sub(now)
            if self.valve_is_open():
                open_ms += step
        return open_ms

    def advance_to(self, now):
        """Integrate plant, scenario and channels from the last step to
        ``now``. Fast time: timers due by ``now`` fire first, each at its
        boundary (the world is stepped to it, then the callback runs)."""
        if self.timers.fire_on_access():
            self.timers.run(now)
        self._advance(now)

    def _advance(self, now):
        clock = self.clock
        elapsed = clock.diff(now, self._t_last)
        if elapsed <= 0:
            return
        if elapsed > _MAX_CATCHUP_MS and self.realtime:
            self._t_last = clock.add(now, -_MAX_CATCHUP_MS)
            self.valves.restart(self._t_last)
            elapsed = _MAX_CATCHUP_MS
        if self.scenario is not None:
            self.scenario.apply_due(self, now)
            if self.realtime and self.pending:
                _scenario.handle_in_place(self)
        if self.panel is not None:
            self.panel.poll(self, now)
        path, unc = self.valves.take_path_ms(now, elapsed)
        self.valves.account(path, unc, self.plant.supply_pressure_kpa > 0.0)
        # The master valve is already in ``path`` (series valves).
        self.plant.step(elapsed / 1000.0, path / (elapsed * OPEN), True)
        self._t_last = now
        self._channel_values(elapsed / 1000.0)
        self.version += 1
        if self.state_file is not None and self.state_file.due(self.plant.t_s):
            self.save_state()

    def _channel_values(self, dt=0.0):
        self.pressure.update(self.plant)
        self.tcs.update(self.plant, dt)

    def attach_panel(self, f):
        """Real time: the front-panel file (``cryo sim --panel``), opened "rb"."""
        self.panel = FrontPanel(f, self.clock)

    # ------------------------------------------------ state across resets
    def state(self):
        """What survives a reset of the board (persist.py)."""
        return persist.snapshot(self)

    def restore(self, st, keep_outputs=False):
        """Restore the world; ``keep_outputs``: a soft reset (persist.py)."""
        persist.restore(self, st, keep_outputs)
        self._channel_values()

    def keep_state(self, f):
        """Real time: save the state in the relay's state file ``f``."""
        self.state_file = persist.StateFile(f)

    def save_state(self):
        """Real time: write the state to the relay's state file now."""
        if self.state_file is not None:
            self.state_file.save(self)

    # ---------------------------------------------------- watchdog/reset
    def wdt_start(self, timeout_ms):
        self.wdt_timeout_ms = timeout_ms
        self.wdt_fed_ms = self.clock.ticks_ms()
        if self.ctrl is not None:
            self.ctrl.write(("W%d\n" % timeout_ms).encode())

    def wdt_feed(self):
        self.wdt_fed_ms = self.clock.ticks_ms()
        if self.ctrl is not None:
            self.ctrl.write(b"F\n")

    def wdt_expired(self, now):
        return (
            self.wdt_timeout_ms > 0 and self.clock.diff(now, self.wdt_fed_ms) > self.wdt_timeout_ms
        )

    def outputs_off(self):
        """Reset/power loss: every output de-energised (valves close)."""
        for pid in self.levels:
            if self.modes.get(pid) == 1:
                self.levels[pid] = 0
        self.levels[self.valve_id] = 1 - self.valve_active
        self.levels[self.master_id] = 1 - self.master_active
        for st in self.pwm.values():
            st[1] = 0
        self.tcs.deselect_all(self.levels)
        self.valve_edge()
        self.wdt_timeout_ms = 0
        self.irqs.clear()
        self.timers.disarm_all()

    def hard_reset(self, cause="reset"):
        """machine.reset(): real time asks the relay to restart the process."""
        self._go_down(cause, b"R\n")

    def power_cut(self):
        """The flash lost power: the whole board goes down now."""
        self._go_down("power", b"P\n")

    def _go_down(self, cause, request):
        self.reset_cause = cause
        if self.ctrl is not None:
            try:
                self.save_state()
            except Exception:  # noqa: BLE001 - the board goes down anyway
                pass
            self.ctrl.write(request)
            while True:  # the relay kills and restarts this process
                time.sleep_ms(100)
        raise BoardReset(cause)


world = None


def get():
    """The current world, creating a default real-time one on first use."""
    global world
    if world is None:
        world = World()
    return world


def install(w):
    global world
    world = w
    return w
