"""The virtual board's world: pins, SPI chips, plant, watchdog, scenario.

One :class:`World` per virtual board process (``vboard.world``). The sim
``machine`` module (boards/sim/machine.py) forwards every hardware access
here, so the firmware's real drivers talk to emulated chips at frame level and
the valve pins drive the plant.

Time: the world reads its ``clock`` (``cryo.clock`` interface). In fast
virtual time the runner owns a ``ManualClock`` and calls :meth:`advance_to`
after moving it; in real time (``cryo sim`` on a pty) the clock is the board
clock and the plant is integrated lazily whenever the firmware reads hardware
(:meth:`sync`), so it advances with wall time.

Allocation: pin writes, pin reads and SPI transfers are allocation-free when
no plant step is due (the firmware's safety path may run with the heap
locked). A plant step allocates (floats); in real time it is skipped while
the heap is locked and done at the next access.

Valves in series: cryogen reaches the nozzle only while the solenoid AND
the master valve are open, each open when its pin is energised unless a
scenario fault sticks it (``valve_stuck`` / ``master_stuck``: None, "open",
"closed"). ``flow_ms`` counts the ms the path was open with pressure in the
dewar; ``uncommanded_ms`` the part of it with the solenoid pin de-energised
(a single fault the master valve must contain).

Timers: ``machine.Timer`` objects are armed in a fixed table here. In fast
virtual time they fire in :meth:`advance_to` (and :meth:`sync`) for every
period boundary crossed, in order, with the clock set back to the boundary
while the callback runs — so they fire even when a test advances time
without running the control loop (a hung loop). In real time each armed
timer has an interpreter thread (``_thread``) that fires it on the wall
clock, whatever the main thread is doing. ``hard=True`` callbacks (timers
and pin IRQs) run with the heap locked, as MicroPython runs hard ISRs
(MicroPython docs, reference/isr_rules.rst): an allocating hard handler raises
MemoryError here as it does on a board.

Resets: :meth:`hard_reset` is what ``machine.reset()`` and an expired
watchdog do. In real time the process tells the ``cryo sim`` relay over the
control pipe (``SIM_CTRL_FD``) and waits to be killed and restarted; in fast
time it raises :class:`BoardReset`, which the runner catches to reboot.
"""

import json
import sys
import time

import plant as _plant

try:
    from micropython import heap_lock, heap_unlock
except ImportError:  # CPython without the test shim: nothing to lock

    def heap_lock():
        return 0

    def heap_unlock():
        return 0


try:
    import _thread
except ImportError:  # a unix port built without threads: see docs/virtual-board.md
    _thread = None

# Hard callbacks run with the heap locked only under MicroPython: CPython
# has no heap lock, and its stand-in must not pretend to test allocation.
_LOCK_HEAP = sys.implementation.name == "micropython"

_PLANT_STEP_MS = 20  # plant integration granularity
_MAX_CATCHUP_MS = 5000  # real time: longest gap integrated in one sync
_STATE_BYTES = 4096  # real time: fixed-size state record
_STATE_EVERY_S = 1.0  # real time: state saved at least this often (plant time)
_PANEL_MS = 100  # real time: front-panel file read at most this often
_MAX_TIMERS = 4  # armed machine.Timer objects at once (a fixed table, like a port's alarm pool)


class BoardReset(BaseException):
    """Fast mode: the virtual board resets (machine.reset() or watchdog)."""

    def __init__(self, cause):
        super().__init__(cause)
        self.cause = cause


class Channel:
    """One thermocouple channel: chip emulator + scenario faults on its reading."""

    def __init__(self, name, chip, source):
        self.name = name
        self.chip = chip
        self.source = source  # 'probe', 'probe2' or 'aux'
        self.version = -1
        self.hot_c = 25.0
        self.stuck = False
        self.extra_noise_c = 0.0
        self.drift_c_per_s = 0.0
        self.offset_c = 0.0


def sim_dir():
    f = _plant.__file__
    i = f.rfind("/")
    return f[:i] if i >= 0 else "."


def load_board(path=None):
    """The sim board definition (boards/sim/board.json) as a dict."""
    if path is None:
        path = sim_dir() + "/board.json"
    with open(path) as f:
        return json.load(f)


def _make_chip(kind, tc_type, clock):
    if kind == "max31855":
        from chips.max31855 import Max31855Emu

        return Max31855Emu(tc_type, clock)
    if kind == "max31856":
        from chips.max31856 import Max31856Emu

        try:
            return Max31856Emu(tc_type, clock)
        except TypeError:
            return Max31856Emu(tc_type)
    raise ValueError("board.json: unknown thermocouple chip %r; allowed: max31855, max31856" % kind)


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
        self.seed = seed
        self._noise = _plant.Noise(seed + 7919)
        self.levels = {}  # pin id -> level (outputs: driven level; inputs: physical)
        self.modes = {}
        self.pwm = {}  # pin id -> [freq, duty_u16]
        self.irqs = {}  # pin id -> (handler, trigger, pin, hard)
        # Roles from the board definition.
        self.valve_id = board["valve"]["pin"]
        self.valve_active = 1 if board["valve"].get("active_high", True) else 0
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
        # Thermocouple chips by CS pin.
        self.channels = {}
        self.cs = {}  # cs pin id -> Channel
        sources = {"tissue": "probe", "tissue2": "probe2", "aux": "aux"}
        for name, spec in board["thermocouples"].items():
            chip = _make_chip(spec["chip"], spec.get("type", "K"), clock)
            ch = Channel(name, chip, sources.get(name, "probe"))
            self.channels[name] = ch
            self.cs[spec["cs"]] = ch
            self.levels[spec["cs"]] = 1
        self.selected = None
        adc = board.get("pressure_adc", {})
        self.adc_id = adc.get("pin")
        self._adc_fs = float(adc.get("full_scale_kpa", 400.0))
        self._adc_zero = float(adc.get("zero_fraction", 0.1))
        self._adc_span = float(adc.get("span_fraction", 0.8))
        self.adc_offline = False
        # Valve bookkeeping (integer ms, allocation-free on pin writes):
        # since the last plant step, the ms each pin was energised and the
        # ms both were; the stuck faults are applied at the plant step.
        self.valve_stuck = None  # None, 'open' or 'closed' (scenario)
        self.master_stuck = None  # the same for the master valve
        self._t_last = clock.ticks_ms()
        self._t_edge = self._t_last
        self._sol_ms = 0
        self._mst_ms = 0
        self._both_ms = 0
        self._valve_on = 0
        self._master_on = 0
        self.valve_cycles = 0
        self.flow_ms = 0  # path open (both valves) with pressure in the dewar
        self.uncommanded_ms = 0  # ... of which with the solenoid pin de-energised
        # Armed machine.Timer objects (fixed table) and the timer being run.
        self.timers = [None] * _MAX_TIMERS
        self._in_timer = False
        self.version = 0
        # Watchdog and resets.
        self.wdt_timeout_ms = 0
        self.wdt_fed_ms = 0
        self.wdt_starve_until = None
        self.resets = 0
        self.reset_cause = None
        self.ctrl = None  # real time: control pipe to the cryo sim relay
        self.flash = None  # the board's FlashBlockDevice (for power cuts)
        self.state_file = None  # real time: host file the state survives resets in
        self._next_save_s = 0.0
        self.scenario = None
        # Real time: the front panel (cryo sim --panel FILE): a host file
        # holding the physical inputs as JSON, {"footswitch": 1, ...}; the
        # technician's hands. Read at most every _PANEL_MS of board time.
        self.panel = None
        self._panel_text = None
        self._panel_next = 0
        self.serial_in = bytearray()
        self.pending = []  # runner events (fast mode) from the scenario
        self.log = []  # scenario events applied: (t_ms, text)
        self._channel_values()

    # ------------------------------------------------------------- pins
    def _apply_input(self, role):
        pid = self.inputs[role]
        self.levels[pid] = self.logical[role] ^ self.invert[pid]

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
            self._valve_edge()
            return
        ch = self.cs.get(pid)
        if ch is not None:
            if v == 0:
                if self.realtime:
                    self.sync()
                self._present(ch)
                self.selected = ch
                ch.chip.select()
            else:
                ch.chip.deselect()
                if self.selected is ch:
                    self.selected = None

    def _present(self, ch):
        # The chip sees the plant's latest temperatures (its float NIST work
        # runs once per plant step, when the chip is next selected).
        if ch.version != self.version:
            ch.version = self.version
            ch.chip.set_state(ch.hot_c, self.plant.cold_junction_c)

    def present_all(self):
        """Bring every chip up to the plant now, so a measurement of the
        firmware's tick (allocation, time) does not include the emulators."""
        for ch in self.channels.values():
            self._present(ch)

    def _valve_edge(self):
        # Integer bookkeeping of the energised times since the last plant
        # step. An edge written "before" the last one (a timer callback runs
        # with the clock set back to its boundary) counts from the last one.
        now = self.clock.ticks_ms()
        d = self.clock.diff(now, self._t_edge)
        if d > 0:
            self._count_on(d)
            self._t_edge = now
        on = 1 if self.levels[self.valve_id] == self.valve_active else 0
        if on and not self._valve_on:
            self.valve_cycles += 1
        self._valve_on = on
        self._master_on = 1 if self.levels[self.master_id] == self.master_active else 0

    def _count_on(self, d):
        if self._valve_on:
            self._sol_ms += d
            if self._master_on:
                self._both_ms += d
        if self._master_on:
            self._mst_ms += d

    def valve_is_open(self):
        """The solenoid's pin is energised (what the firmware commands)."""
        return bool(self._valve_on)

    def cryogen_path_open(self):
        """Solenoid and master valve both open now, each by its pin or stuck
        open by a scenario fault: cryogen flows if the dewar has pressure."""
        return bool(
            _effective(self.valve_stuck, self._valve_on)
            and _effective(self.master_stuck, self._master_on)
        )

    # -------------------------------------------------------------- SPI
    def spi_transfer(self, wbuf, rbuf):
        ch = self.selected
        if ch is None:
            if rbuf is not None:
                i = 0
                n = len(rbuf)
                while i < n:
                    rbuf[i] = 0xFF
                    i += 1
            return
        ch.chip.transfer(wbuf, rbuf)

    # -------------------------------------------------------------- ADC
    def adc_u16(self):
        """Supply-pressure transducer code (int, allocation-free): computed at
        each plant step, so scenario changes show at the next step (20 ms)."""
        if self.realtime:
            self.sync()
        if self.adc_offline:
            return 0
        return self._adc_code

    def _adc_update(self):
        p = self.plant.supply_pressure_kpa / self._adc_fs
        if p > 1.0:
            p = 1.0
        self._adc_code = int(65535 * (self._adc_zero + self._adc_span * p))

    # ------------------------------------------------------------- time
    def sync(self):
        """Real time: integrate the plant up to now (lazy, on hardware access).
        Fast time (the runner's sub-ticks): also fire the timers due by now."""
        now = self.clock.ticks_ms()
        if self._timers_here():
            self.run_timers(now)
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
        if self._timers_here():
            self.run_timers(now)
        self._advance(now)

    def _advance(self, now):
        clock = self.clock
        elapsed = clock.diff(now, self._t_last)
        if elapsed <= 0:
            return
        if elapsed > _MAX_CATCHUP_MS and self.realtime:
            self._t_last = clock.add(now, -_MAX_CATCHUP_MS)
            self._t_edge = self._t_last
            self._sol_ms = self._mst_ms = self._both_ms = 0
            elapsed = _MAX_CATCHUP_MS
        if self.scenario is not None:
            self.scenario.apply_due(self, now)
            if self.realtime and self.pending:
                self._realtime_events()
        if self.panel is not None:
            self.poll_panel(now)
        path, unc = self._path_ms(now, elapsed)
        if self.plant.supply_pressure_kpa > 0.0:
            self.flow_ms += path
            self.uncommanded_ms += unc
        # The master valve is already in ``path`` (series valves).
        self.plant.step(elapsed / 1000.0, path / elapsed, True)
        self._t_last = now
        self._channel_values(elapsed / 1000.0)
        self.version += 1
        if self.state_file is not None and self.plant.t_s >= self._next_save_s:
            self._next_save_s = self.plant.t_s + _STATE_EVERY_S
            self.save_state()

    def _path_ms(self, now, elapsed):
        """(ms the series path was open, ms of that with the solenoid pin
        de-energised) since the last plant step; the stuck faults hold for
        the whole step (scenario events apply at plant steps)."""
        d = self.clock.diff(now, self._t_edge)
        if d > 0:
            self._count_on(d)
            self._t_edge = now
        sol, mst, both = self._sol_ms, self._mst_ms, self._both_ms
        self._sol_ms = self._mst_ms = self._both_ms = 0
        vs, ms = self.valve_stuck, self.master_stuck
        unc = 0
        if vs == "closed" or ms == "closed":
            path = 0
        elif vs == "open":
            # Only a stuck solenoid lets cryogen past a de-energised pin.
            path = elapsed if ms == "open" else mst
            unc = elapsed - sol if ms == "open" else mst - both
        elif ms == "open":
            path = sol
        else:
            path = both
        path = min(max(path, 0), elapsed)
        return path, min(max(unc, 0), path)

    # ------------------------------------------------------------ timers
    def _timers_here(self):
        # Fast time fires timers as time advances; real time has a thread
        # per timer, unless the port has no _thread (then on each access).
        return not self.realtime or _thread is None

    def timer_arm(self, t):
        """``machine.Timer.init``: (re)arm ``t``, first due one period from now."""
        self.timer_disarm(t)
        i = 0
        free = -1
        while i < _MAX_TIMERS:
            o = self.timers[i]
            if o is not None and t._id >= 0 and o._id == t._id:
                self.timer_disarm(o)  # a hardware timer id is one peripheral
                o = None
            if o is None and free < 0:
                free = i
            i += 1
        if free < 0:
            raise OSError(
                12, "virtual board: all %d timers are armed; deinit() one first" % _MAX_TIMERS
            )
        clock = self.clock
        t._due = clock.add(clock.ticks_ms(), t._period)
        t._gen += 1
        self.timers[free] = t
        if self.realtime and _thread is not None:
            _thread.start_new_thread(self._timer_thread, (t, t._gen))

    def timer_disarm(self, t):
        """``machine.Timer.deinit``: ``t`` no longer fires (its thread ends)."""
        t._gen += 1
        i = 0
        while i < _MAX_TIMERS:
            if self.timers[i] is t:
                self.timers[i] = None
            i += 1

    def _next_due(self, now):
        clock = self.clock
        best = None
        i = 0
        while i < _MAX_TIMERS:
            t = self.timers[i]
            if (
                t is not None
                and clock.diff(now, t._due) >= 0
                and (best is None or clock.diff(t._due, best._due) < 0)
            ):
                best = t
            i += 1
        return best

    def run_timers(self, now):
        """Fire every armed timer due by ``now``, earliest boundary first,
        once per boundary crossed. Fast time: the world is stepped to the
        boundary and the clock set back to it while the callback runs, so
        the callback sees the time it would have run at on a board.
        Allocation-free while none is due."""
        if self._in_timer:
            return
        clock = self.clock
        rewind = not self.realtime and hasattr(clock, "advance")
        while True:
            t = self._next_due(now)
            if t is None:
                return
            due = t._due
            if t._periodic:
                t._due = clock.add(due, t._period)
            else:
                self.timer_disarm(t)
            back = 0
            if rewind:
                self._advance(due)
                back = clock.diff(now, due)
                clock.advance(-back)
            self._in_timer = True
            try:
                dispatch(t._cb, t, t._hard)
            except BaseException:
                # As a port does with an uncaught exception in a timer
                # callback: the timer stops (and the test sees the error).
                self.timer_disarm(t)
                raise
            finally:
                self._in_timer = False
                if back:
                    clock.advance(back)

    def _timer_thread(self, t, gen):
        """Real time: fire ``t`` on the wall clock until it is disarmed or
        re-armed, whatever the firmware's main thread is doing."""
        clock = self.clock
        while t._gen == gen:
            wait = clock.diff(t._due, clock.ticks_ms())
            if wait > 0:
                time.sleep_ms(wait if wait < _PLANT_STEP_MS else _PLANT_STEP_MS)
                continue
            if t._periodic:
                t._due = clock.add(t._due, t._period)
            else:
                self.timer_disarm(t)
            try:
                dispatch(t._cb, t, t._hard)
            except Exception as e:  # noqa: BLE001 - a port reports it and stops the timer
                self.timer_disarm(t)
                print("Uncaught exception in Timer callback:", repr(e))

    def _channel_values(self, dt=0.0):
        p = self.plant
        self._adc_update()
        for ch in self.channels.values():
            if ch.stuck:
                continue
            v = p.probe_c
            if ch.source == "probe2":
                v = p.probe2_c
            elif ch.source == "aux":
                v = p.aux_c
            ch.offset_c += ch.drift_c_per_s * dt
            v += ch.offset_c
            if ch.extra_noise_c:
                v += ch.extra_noise_c * self._noise.gauss()
            ch.hot_c = v

    def poll_panel(self, now, force=False):
        """Apply the front-panel file's inputs when its content changed.

        The host writes the file in place (``host_tools.sim.write_panel``);
        a half-written or empty read is ignored and read again next time.
        Keys: the board's inputs (``estop``, ``footswitch``, ``handpiece``),
        values 0/1 (logical: 1 = pressed / held / e-stop loop closed)."""
        if not force and self.clock.diff(now, self._panel_next) < 0:
            return
        self._panel_next = self.clock.add(now, _PANEL_MS)
        try:
            self.panel.seek(0)
            text = self.panel.read()
        except OSError:
            return
        if isinstance(text, bytes):
            text = text.decode()
        if text == self._panel_text or not text.strip():
            return
        try:
            d = json.loads(text)
        except ValueError:
            return  # caught mid-write: read again next time
        self._panel_text = text
        if not isinstance(d, dict):
            return
        for role in d:
            if role in self.inputs and (1 if d[role] else 0) != self.logical[role]:
                self.set_input(role, d[role])
                self.log.append((now, "panel %s=%d" % (role, 1 if d[role] else 0)))

    def _realtime_events(self):
        while self.pending:
            ev = self.pending.pop(0)
            name = ev["event"]
            if name == "wdt_starve":
                time.sleep_ms(int(ev["ms"]))  # the firmware hangs here
            elif name == "reset":
                self.hard_reset("reset")
            elif name == "power_cut":
                self.power_cut()
            # serial: injected by the cryo sim relay; call: fast mode only

    # ------------------------------------------------ state across resets
    def state(self):
        """What survives a reset of the board: the plant, the physical
        inputs and injected faults (not the electronics)."""
        ch = {}
        for name, c in self.channels.items():
            chip = c.chip
            ch[name] = [
                c.stuck,
                c.hot_c,
                c.extra_noise_c,
                c.drift_c_per_s,
                c.offset_c,
                chip.open_circuit,
                chip.short_gnd,
                chip.short_vcc,
                chip.bus,
            ]
        outs = []
        for pid in self.levels:
            if self.modes.get(pid) == 1:
                outs.append([pid, self.levels[pid]])
        return {
            "plant": self.plant.state(),
            "outputs": outs,
            "inputs": dict(self.logical),
            "valve_stuck": self.valve_stuck,
            "master_stuck": self.master_stuck,
            "adc_offline": self.adc_offline,
            "channels": ch,
        }

    def restore(self, st, keep_outputs=False):
        """Restore the world; ``keep_outputs``: a soft reset, where output
        pins keep their levels (docs/reference/reset_boot.rst) until the
        firmware drives them — the reason boot.py closes the valves first."""
        self.plant.restore(st["plant"])
        if keep_outputs:
            for pid, level in st.get("outputs", ()):
                self.modes[pid] = 1
                self.levels[pid] = level
            self._valve_edge()
        for role, v in st["inputs"].items():
            if role in self.inputs:
                self.logical[role] = v
                self._apply_input(role)
        if "valve_supply" in self.inputs and "valve_supply" not in st["inputs"]:
            # a state saved before the read-back existed: it follows the loop
            self.logical["valve_supply"] = self.logical["estop"]
            self._apply_input("valve_supply")
        self.valve_stuck = st["valve_stuck"]
        self.master_stuck = st.get("master_stuck")  # absent in older state files
        self.adc_offline = st["adc_offline"]
        for name, v in st["channels"].items():
            c = self.channels.get(name)
            if c is None:
                continue
            c.stuck, c.hot_c, c.extra_noise_c, c.drift_c_per_s, c.offset_c = v[:5]
            c.chip.open_circuit, c.chip.short_gnd, c.chip.short_vcc, c.chip.bus = v[5:]
            c.version = -1
        self._channel_values()

    def save_state(self):
        """Real time: write the state to the relay's state file (padded, so a
        shorter record never leaves a tail of the previous one)."""
        f = self.state_file
        if f is None:
            return
        data = json.dumps(self.state()).encode()
        if len(data) > _STATE_BYTES:
            return
        f.seek(0)
        f.write(data)
        f.write(b" " * (_STATE_BYTES - len(data)))
        f.flush()

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
        for ch in self.channels.values():
            self.levels[self._cs_of(ch)] = 1
            ch.chip.deselect()
        self.selected = None
        self._valve_edge()
        self.wdt_timeout_ms = 0
        self.irqs.clear()
        i = 0
        while i < _MAX_TIMERS:  # a reset stops every timer
            if self.timers[i] is not None:
                self.timer_disarm(self.timers[i])
            i += 1
        for st in self.pwm.values():
            st[1] = 0

    def _cs_of(self, ch):
        for pid in self.cs:
            if self.cs[pid] is ch:
                return pid
        return None

    def hard_reset(self, cause="reset"):
        """machine.reset(): real time asks the relay to restart the process."""
        self.reset_cause = cause
        if self.ctrl is not None:
            try:
                self.save_state()
            except Exception:  # noqa: BLE001 - a reset must happen anyway
                pass
            self.ctrl.write(b"R\n")
            while True:  # the relay kills and restarts this process
                time.sleep_ms(100)
        raise BoardReset(cause)

    def power_cut(self):
        """The flash lost power: the whole board goes down now."""
        self.reset_cause = "power"
        if self.ctrl is not None:
            try:
                self.save_state()
            except Exception:  # noqa: BLE001 - the board goes down anyway
                pass
            self.ctrl.write(b"P\n")
            while True:
                time.sleep_ms(100)
        raise BoardReset("power")


def _effective(stuck, energised):
    """A valve's state: its pin's, unless a scenario fault sticks it."""
    if stuck is None:
        return energised
    return 1 if stuck == "open" else 0


def dispatch(cb, arg, hard):
    """Run an IRQ or timer callback; a hard one with the heap locked, as
    MicroPython runs hard interrupt handlers (MicroPython docs,
    reference/isr_rules.rst: a hard ISR cannot allocate), so an allocating
    handler raises MemoryError here as it would on a board."""
    if hard and _LOCK_HEAP:
        heap_lock()
        try:
            cb(arg)
        finally:
            heap_unlock()
    else:
        cb(arg)


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


def make_flash(path=None, block_size=4096, block_count=512, ram_at=None):
    """The board's flash chip: a FlashBlockDevice (flash.py) whose power cut takes the
    whole board down (real time: the relay restarts the process; fast time:
    BoardReset('power') unwinds to the runner, past any ``except OSError``).

    ``ram_at``: address of memory outside the MicroPython heap that holds the
    chip's contents (an emulated Cortex-M board, boards/qemu-mps2), erased
    here; the firmware's heap then carries only what a real board's does."""
    from flash import FlashBlockDevice, PowerCut

    class BoardFlash(FlashBlockDevice):
        def writeblocks(self, block_num, buf, offset=None):
            try:
                return FlashBlockDevice.writeblocks(self, block_num, buf, offset)
            except PowerCut:
                _power_lost()

        def ioctl(self, op, arg):
            try:
                return FlashBlockDevice.ioctl(self, op, arg)
            except PowerCut:
                _power_lost()

        def readblocks(self, block_num, buf, offset=0):
            try:
                return FlashBlockDevice.readblocks(self, block_num, buf, offset)
            except PowerCut:
                _power_lost()

        def reboot(self):
            self._dead = True
            return BoardFlash(
                self.path, self.block_size, self.block_count, _shared=(self._ram, self._file)
            )

    if ram_at is None:
        return BoardFlash(path, block_size, block_count)
    import uctypes

    ram = uctypes.bytearray_at(ram_at, block_size * block_count)
    blank = b"\xff" * block_size
    mv = memoryview(ram)
    i = 0
    while i < block_count:
        mv[i * block_size : (i + 1) * block_size] = blank
        i += 1
    return BoardFlash(None, block_size, block_count, _shared=(ram, None))


def _power_lost():
    w = world
    if w is None:
        raise OSError(5)
    w.power_cut()


def mount_root(dev, rom=None, sim=None):
    """Mount ``dev`` (littlefs2, formatted if blank) as '/'; the host's
    firmware tree at /rom and boards/sim at /sim (read-only by convention,
    like frozen modules). Returns the mounted VfsLfs2."""
    import os
    import sys

    import vfs

    try:
        fs = vfs.VfsLfs2(dev)
    except OSError:
        vfs.VfsLfs2.mkfs(dev)
        fs = vfs.VfsLfs2(dev)
    try:
        vfs.umount("/")
    except OSError:
        pass
    vfs.mount(fs, "/")
    paths = ["", ".frozen", "/lib"]
    if rom:
        vfs.mount(vfs.VfsPosix(rom), "/rom")
        paths.append("/rom")
    if sim:
        vfs.mount(vfs.VfsPosix(sim), "/sim")
        paths.append("/sim")
    sys.path[:] = paths
    os.chdir("/")
    # Firmware modules imported from host paths before the switch would
    # resolve their submodules there: import them again from /rom.
    for name in list(sys.modules):
        if name == "cryo" or name.startswith("cryo."):
            del sys.modules[name]
    return fs


def remount_root(dev):
    """After a power cut: mount the rebooted flash device as '/' again."""
    import vfs

    try:
        vfs.umount("/")
    except OSError:
        pass
    try:
        fs = vfs.VfsLfs2(dev)
    except OSError:
        vfs.VfsLfs2.mkfs(dev)
        fs = vfs.VfsLfs2(dev)
    vfs.mount(fs, "/")
    return fs
