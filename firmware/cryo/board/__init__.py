"""Board layer: ``machine`` objects built from a board definition dict.

The only firmware module that imports ``machine``. Everything above it gets
pins, buses and clocks from a :class:`Board`, so the same controller runs on
the virtual board (boards/sim, whose ``machine`` is emulated) and on real
boards (boards/<name>/board.json; schema in docs/virtual-board.md).

Valves are driven closed in the constructor *before* anything else is built:
a board object that exists has safe outputs, whatever fails later.

Single-fault hardware (docs/boards.md): a periodic safety timer
(:meth:`Board.start_safety_timer`), a pin interrupt on the e-stop loop
(:meth:`Board.watch_estop`), the reset cause (:meth:`Board.reset_cause`) and
an optional read-back of the valve driver's supply (``Board.valve_supply``).
"""

import time

import machine
from micropython import const

from cryo import paths
from cryo.board.definition import CHANNELS, BoardError, pin_id, validate
from cryo.clock import BoardClock

__all__ = ("CHANNELS", "Board", "BoardError", "validate")

# Time for a reply of a few dozen bytes to leave the UART/USB buffer.
_RESET_DRAIN_MS = const(100)

# machine.reset_cause() values by constant name. Ports define only some of
# them (rp2: PWRON_RESET and WDT_RESET; stm32's SOFT_RESET is 0), so each is
# looked up with getattr: a name the port lacks never matches.
_RESET_NAMES = (
    ("PWRON_RESET", "power"),
    ("HARD_RESET", "hard"),
    ("WDT_RESET", "wdt"),
    ("SOFT_RESET", "soft"),
    ("DEEPSLEEP_RESET", "deepsleep"),
)


def reset_cause_name(cause, mach):
    """The name of ``mach.reset_cause()``'s value ``cause`` (see
    ``Board.reset_cause``). Ports number the causes differently (the
    constants live in each port's ``machine``), so the value is matched by
    constant name; a cause the port names otherwise is "unknown"."""
    for attr, name in _RESET_NAMES:
        if getattr(mach, attr, None) == cause:
            return name
    return "unknown"


def _output(spec, where):
    """Output pin driven to its inactive level at once (Signal if active low)."""
    pid = pin_id(spec, where)
    active_high = spec.get("active_high", True)
    pin = machine.Pin(pid, machine.Pin.OUT, value=0 if active_high else 1)
    if active_high:
        return pin
    sig = machine.Signal(pin, invert=True)
    sig.value(0)
    return sig


def _spi(s):
    """The thermocouple bus, with explicit keywords so each port's stub checks the call.

    Pins are passed only when the definition gives them: stm32's
    ``machine.SPI`` raises "explicit choice of sck/mosi/miso is not
    implemented" for any pin argument (even None), so its definitions omit
    them and the bus id fixes the pins. ``validate`` allows all three or none.
    """
    sid = s.get("id", 1)
    baud = s.get("baudrate", 1000000)
    pol = s.get("polarity", 0)
    pha = s.get("phase", 0)
    if "sck" not in s:
        return machine.SPI(sid, baudrate=baud, polarity=pol, phase=pha)
    return machine.SPI(
        sid,
        baudrate=baud,
        polarity=pol,
        phase=pha,
        sck=machine.Pin(s["sck"]),
        mosi=machine.Pin(s["mosi"]),
        miso=machine.Pin(s["miso"]),
    )


def _adc(spec):
    """The pressure ADC; ``atten`` (e.g. "ATTN_11DB") only where the port has it.

    esp32's ADC reads only ~0-0.95 V at its default 0 dB attenuation, so the
    ESP32-S3 definition asks for ATTN_11DB; rp2 and stm32 have no attenuator
    (their machine.ADC takes no ``atten`` keyword), so their definitions omit it.
    """
    pin = machine.Pin(pin_id(spec, "pressure_adc"))
    name = spec.get("atten")
    if name is None:
        return machine.ADC(pin)
    level = getattr(machine.ADC, str(name), None) if str(name).startswith("ATTN_") else None
    if level is None:
        raise BoardError(
            "board definition: pressure_adc.atten %r: this port's machine.ADC has no such "
            "attenuation (esp32: ATTN_0DB, ATTN_2_5DB, ATTN_6DB, ATTN_11DB; other ports: "
            "omit the field)" % (name,)
        )
    return machine.ADC(pin, atten=level)


class Board:
    """Hardware of one board, built from its definition dict.

    Attributes: ``spi``, ``cs`` (channel -> Pin, idle high),
    ``tc`` (channel -> {"chip", "type"}), ``valve_pin``, ``valve_pwm`` (a
    proportional valve's PWM on ``valve_pin``; None for a solenoid),
    ``valve_min_demand``, ``master_pin``,
    ``estop`` (1 = loop closed; 0 = pressed or broken), ``footswitch``,
    ``handpiece`` (raw input Pins; the definition's ``invert`` says that 0
    means pressed/active, see :meth:`active_level`), ``valve_supply``
    (raw input Pin reading the valve driver's supply after the hardwired
    e-stop contact, or None if the board has none), ``buzzer``
    (PWM or None), ``leds`` (name -> Pin), ``pressure_adc`` (ADC or None),
    ``pressure`` (transducer scaling dict), ``rtc``, ``wdt`` (None until
    :meth:`start_watchdog`), ``safety_timer`` (None until
    :meth:`start_safety_timer`), ``clock``, ``tick_ms``, ``definition``.
    """

    def __init__(self, definition, clock=None):
        validate(definition)
        d = definition
        self.definition = d
        self.name = d.get("name", "board")
        # Safe state first: both valves de-energised before anything else.
        v = d["valve"]
        self.valve_pin = _output(v, "valve")
        self.valve_pwm = None
        self.valve_min_demand = float(v.get("min_demand", 0.0))
        if v.get("kind", "solenoid") == "proportional":
            # The pin was driven low first; the PWM takes it over at duty 0.
            self.valve_pwm = machine.PWM(self.valve_pin, freq=v["freq"], duty_u16=0)
        self.master_pin = _output(d["master_valve"], "master_valve")
        self.valve_service_cycles = v.get("service_cycles")  # None: no rating given
        self.clock = clock if clock is not None else BoardClock()
        self.spi = _spi(d["spi"])
        self.cs = {}
        self.tc = {}
        for name, spec in d["thermocouples"].items():
            self.cs[name] = machine.Pin(spec["cs"], machine.Pin.OUT, value=1)
            self.tc[name] = {"chip": spec["chip"], "type": spec.get("type", "K")}
        inputs = d["inputs"]
        self.estop = self._input(inputs["estop"], "inputs.estop")
        self.footswitch = self._input(inputs["footswitch"], "inputs.footswitch")
        self.handpiece = self._input(inputs["handpiece"], "inputs.handpiece")
        self.valve_supply = None
        if "valve_supply" in inputs:
            self.valve_supply = self._input(inputs["valve_supply"], "inputs.valve_supply")
        self.buzzer = None
        if "buzzer" in d:
            pin = machine.Pin(pin_id(d["buzzer"], "buzzer"), machine.Pin.OUT, value=0)
            self.buzzer = machine.PWM(pin, freq=d["buzzer"].get("freq", 2700), duty_u16=0)
        self.leds = {}
        for name, spec in d.get("leds", {}).items():
            self.leds[name] = _output(spec, "leds." + name)
        self.pressure_adc = None
        self.pressure = d.get("pressure_adc")
        if self.pressure is not None:
            self.pressure_adc = _adc(self.pressure)
        self.rtc = machine.RTC()
        self.wdt = None
        self.safety_timer = None
        self.watchdog_ms = d.get("watchdog", {}).get("timeout_ms", 0)
        # None when the definition has none: the controller then keeps its own default.
        self.tick_ms = d.get("tick_ms")

    def _input(self, spec, where):
        pid = pin_id(spec, where)
        pull = spec.get("pull")
        # The raw pin: the safety path compares raw levels; ``invert`` in the
        # definition says which level means active (see active_level()).
        if pull == "up":
            return machine.Pin(pid, machine.Pin.IN, machine.Pin.PULL_UP)
        if pull == "down":
            return machine.Pin(pid, machine.Pin.IN, machine.Pin.PULL_DOWN)
        # No pull: None, as the MicroPython docs define it (-1 would mean "leave
        # the pull as it was", e.g. from before a soft reset). The port stubs
        # 1.29.0.post1 type ``pull`` as int only, hence the narrow ignore.
        return machine.Pin(pid, machine.Pin.IN, None)  # type: ignore[arg-type]

    def active_level(self, role):
        """Pin level meaning pressed/active for input ``role`` (e-stop: loop
        closed; valve_supply: supply present)."""
        spec = self.definition["inputs"].get(role)
        if spec is None:
            raise BoardError(
                "board definition has no input %r; inputs: %s"
                % (role, ", ".join(self.definition["inputs"]))
            )
        return 0 if spec.get("invert", False) else 1

    def start_safety_timer(self, period_ms, callback):
        """Start the periodic safety timer: ``callback(timer)`` every
        ``period_ms``, beside the control loop. Returns the ``machine.Timer``
        (``deinit()`` stops it); a second call replaces the first timer.

        Which timer, and whether the callback runs in hard interrupt context,
        is the board's (``safety_timer`` in the definition; docs/boards.md
        per board). A hard callback must not allocate: integer-only work on
        preallocated state (e.g. ``Interlock.heartbeat_check``)."""
        if isinstance(period_ms, bool) or not isinstance(period_ms, int) or period_ms < 1:
            raise ValueError(
                "start_safety_timer: period_ms must be an int number of ms >= 1, got %r"
                % (period_ms,)
            )
        if not callable(callback):
            raise TypeError("start_safety_timer: callback must be callable, got %r" % (callback,))
        spec = self.definition.get("safety_timer")
        if spec is None:
            raise BoardError(
                "board definition %r has no 'safety_timer' (an object like "
                '{"id": -1, "hard": true}; docs/boards.md)' % (self.name,)
            )
        if self.safety_timer is not None:
            self.safety_timer.deinit()
            self.safety_timer = None
        tid = spec["id"]
        period = machine.Timer.PERIODIC
        # ``hard`` is passed only when the board asks for it: a port whose
        # machine.Timer predates the keyword rejects it, and without it each
        # port keeps its own default.
        if spec.get("hard", False):
            t = machine.Timer(tid, mode=period, period=period_ms, callback=callback, hard=True)
        else:
            t = machine.Timer(tid, mode=period, period=period_ms, callback=callback)
        self.safety_timer = t
        return t

    def watch_estop(self, handler):
        """Interrupt on the edge where the normally-closed e-stop loop opens:
        ``handler(pin)`` runs then, hard (``inputs.estop.irq_hard``) where
        the port supports it. ``handler`` must be allocation-free (e.g. a
        bound method setting an integer flag); None disarms the interrupt.
        A loop that opens and closes again between two control ticks is
        still seen, through the flag, at the next tick."""
        pin = self.estop
        if handler is None:
            pin.irq(handler=None)
            return
        # active_level("estop") is the level of a closed loop: the loop
        # opens on the edge away from it.
        if self.active_level("estop"):
            trigger = machine.Pin.IRQ_FALLING
        else:
            trigger = machine.Pin.IRQ_RISING
        if self.definition["inputs"]["estop"].get("irq_hard", False):
            pin.irq(handler=handler, trigger=trigger, hard=True)
        else:
            pin.irq(handler=handler, trigger=trigger)

    def reset_cause(self):
        """Why the board last reset: "power", "hard", "wdt", "soft",
        "deepsleep" or "unknown" (``machine.reset_cause()``; which causes a
        port can tell apart is the port's own: rp2 reports only power-on and
        watchdog)."""
        return reset_cause_name(machine.reset_cause(), machine)

    def safe_outputs(self):
        """Drive both valves closed (allocation-free; any time, any state)."""
        if self.valve_pwm is not None:
            self.valve_pwm.duty_u16(0)
        else:
            self.valve_pin.value(0)
        self.master_pin.value(0)

    def valve_energised(self):
        """The valve output reads back energised (pin level, or PWM duty > 0)."""
        if self.valve_pwm is not None:
            return self.valve_pwm.duty_u16() != 0
        return self.valve_pin.value() != 0

    def reset(self):
        """Hard-reset the board (the caller closed the valves): every pin
        back to its reset state, the watchdog disarmed, boot.py again. The
        short wait lets the reply that announced it leave the serial line."""
        time.sleep_ms(_RESET_DRAIN_MS)
        machine.reset()

    def start_watchdog(self, timeout_ms=None):
        """Start the hardware watchdog (cannot be stopped once started)."""
        t = timeout_ms if timeout_ms is not None else self.watchdog_ms
        if t and self.wdt is None:
            self.wdt = machine.WDT(timeout=t)
        return self.wdt

    def sensor(self, name):
        """The driver of thermocouple channel ``name`` (its chip and type
        from the definition). Each driver module is imported for a chip the
        board has: a module (and the MAX31855's NIST tables) costs heap."""
        spec = self.tc[name]
        if spec["chip"] == "max31856":
            from cryo.sensing.max31856 import MAX31856

            return MAX31856(self.spi, self.cs[name], spec["type"], clock=self.clock)
        from cryo.sensing.max31855 import MAX31855

        return MAX31855(self.spi, self.cs[name], spec["type"])

    def _pressure_scale(self):
        p = self.pressure
        return (
            p.get("zero_fraction", 0.1),
            p.get("span_fraction", 0.8),
            float(p.get("full_scale_kpa", 400.0)),
        )

    def pressure_kpa(self):
        """Supply pressure from the transducer (float, control path)."""
        if self.pressure_adc is None:
            return None
        zero, span, fs = self._pressure_scale()
        frac = self.pressure_adc.read_u16() / 65535.0
        return (frac - zero) / span * fs

    def pressure_code(self, kpa):
        """The raw ADC code the transducer gives at ``kpa`` (limits are
        compared as raw codes in the safety path); saturates at full scale."""
        zero, span, fs = self._pressure_scale()
        f = kpa / fs
        if f > 1.0:
            f = 1.0
        return int(65535 * (zero + span * f))


def load_definition(path=None):
    """The board definition: the file ``path``, by default ``board.json``
    at each of ``paths.FLASH_ROOTS`` in turn ("/" then "/flash": boot.py
    needs it to close the valves before it knows where this board mounts
    its flash, and a port that mounts only "/flash" has nothing at "/"),
    else the definition a virtual board reports
    (``machine.board_definition()``)."""
    import json

    tried = (
        [path]
        if path is not None
        else [paths.on_flash(paths.BOARD_PATH, r) for r in paths.FLASH_ROOTS]
    )
    for p in tried:
        try:
            with open(p) as f:
                return json.load(f)
        except OSError:
            pass
        except ValueError as e:
            raise BoardError("board definition %s is not valid JSON: %s" % (p, e))
    get = getattr(machine, "board_definition", None)
    if get is not None:
        return get()
    raise BoardError(
        "no board definition: %s not found and this port has no built-in one" % " or ".join(tried)
    )


def safe_valves(definition=None):
    """Minimal boot-time safe state: both valve pins driven inactive.

    Used by boot.py before anything else is imported.
    """
    d = definition if definition is not None else load_definition()
    _output(d["valve"], "valve")
    _output(d["master_valve"], "master_valve")


def last_reset():
    """Why this board last reset ("soft", "power", ... as ``Board.reset_cause``)."""
    return reset_cause_name(machine.reset_cause(), machine)


def unique_id():
    """Hex of the chip's unique id, as the host's probe reads it (None: the
    port has none)."""
    from binascii import hexlify

    get = getattr(machine, "unique_id", None)
    return None if get is None else hexlify(get()).decode()


def rtc_seconds(board):
    """Callable -> seconds since 2000-01-01 from the board's RTC (None if none).

    ``machine.RTC().datetime()`` is (year, month, day, weekday, hours,
    minutes, seconds, subseconds) on every port; the log and the audit trail
    stamp their entries with it.
    """
    r = getattr(board, "rtc", None)
    if r is None or not hasattr(r, "datetime"):
        return None

    def seconds():
        y, mo, d, _wd, h, mi, s = r.datetime()[:7]
        # Days since 2000-01-01 (civil-from-days inverse, valid 2000..2099).
        a = (14 - mo) // 12
        yy = y + 4800 - a
        m = mo + 12 * a - 3
        jdn = d + (153 * m + 2) // 5 + 365 * yy + yy // 4 - yy // 100 + yy // 400 - 32045
        days = jdn - 2451545  # JDN of 2000-01-01
        return days * 86400 + h * 3600 + mi * 60 + s

    return seconds


def reset_after(ms):
    """Hard-reset the board in ``ms`` milliseconds (a one-shot virtual timer,
    which also fires while the board sits at the REPL): the end of a
    time-limited service unlock. Returns the timer (keep a reference)."""
    return machine.Timer(-1, mode=machine.Timer.ONE_SHOT, period=ms, callback=_reset)


def _reset(_timer):
    machine.reset()


def build(path=None, clock=None):
    return Board(load_definition(path), clock)


def flash_root(definition=None):
    """Where this board's flash filesystem is mounted: the definition's
    ``flash_root`` ("/" when absent; the pyboard's _boot.py mounts its
    internal flash at "/flash")."""
    d = definition if definition is not None else load_definition()
    return d.get("flash_root", "/")


def mount_flash(path="/"):
    """Make sure a filesystem is mounted at ``path`` (the board's flash).

    Real ports' frozen ``_boot.py`` and the virtual board's ROM mount the
    flash before boot.py runs; this mounts the device the port offers
    (``machine.flash_device()`` on the virtual board) only if nothing is
    mounted there, formatting a blank device. What is mounted is read from
    the mount table (``vfs.mount()``): ``os.statvfs("/")`` also answers for
    the virtual root of a port that mounts its flash at "/flash" only.
    Returns a short status string; BoardError names the mount points.
    """
    import vfs

    points = [p for _fs, p in vfs.mount()]
    if path in points:
        return "mounted"
    get = getattr(machine, "flash_device", None)
    if get is None:
        raise BoardError(
            "no filesystem mounted at %s (mounted: %s): the board definition's flash_root "
            "must name where this port mounts its flash" % (path, ", ".join(points) or "none")
        )
    bdev = get()
    try:
        vfs.mount(vfs.VfsLfs2(bdev), path)
        return "mounted now"
    except OSError:
        vfs.VfsLfs2.mkfs(bdev)
        vfs.mount(vfs.VfsLfs2(bdev), path)
        return "formatted"


def use_flash(root=None):
    """boot.py's step 2, in one place for every boot: the flash checked (and
    if need be mounted) at ``root`` (default the definition's
    ``flash_root``), every firmware file named from there
    (``cryo.paths.set_root``) and the working directory there, where the
    app slots and the host's raw REPL commands expect it. Returns
    ``mount_flash``'s status; BoardError leaves the root as it was."""
    import os

    if root is None:
        root = flash_root()
    status = mount_flash(root)
    paths.set_root(root)
    os.chdir(root)
    return status
