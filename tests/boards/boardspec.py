"""What a real board definition (``boards/<name>/board.json``) must satisfy.

The schema's *shape* is the virtual board's (``docs/virtual-board.md``,
``boards/sim/board.json``); this module adds what only a real board needs:
every pin exists on that MCU/module and can do its job (ADC-capable, not a
strapping, flash or USB pin, on the right SPI bus), no pin is used twice,
the SPI mode and clock suit the thermocouple chips, the watchdog timeout
fits the port and the clinical limit, and the toolchain facts (mpy-cross
arch, MicroPython version, stub package) agree with each other.

``validate(defn, name)`` returns a list of messages, each naming the field,
what was wrong and what is allowed; an empty list means valid.
"""

from __future__ import annotations

import re

THERMOCOUPLE_CHANNELS = ("tissue", "tissue2", "aux", "tissue3")
INPUTS = ("estop", "footswitch", "handpiece")
# Optional: the valve driver's supply read back after the hardwired e-stop contact.
OPTIONAL_INPUTS = ("valve_supply",)
CHIPS = {
    # chip: (SPI phase it needs, thermocouple types, max SPI clock Hz)
    # MAX31855: data change on SCK falling edge, sample on rising -> mode 0
    # (DS55). MAX31856: "CPHA bit polarity must be set to 1" (DS56 Table 5).
    # Both: f_SCL 5 MHz max.
    "max31855": (0, ("K", "T"), 5_000_000),
    "max31856": (1, ("K", "T"), 5_000_000),
}
# cryo.alarms drives "red" (high priority), "yellow" (medium/low) and "green"
# (no alarm) by these names (IEC 60601-1-8 colours); "heartbeat" is spare.
LED_NAMES = ("green", "yellow", "red", "heartbeat")
# IEC 60601-1-8: auditory alarm pulse fundamental 150-1000 Hz.
BUZZER_HZ = (150, 1000)
# A hung firmware must leave the valve closed within this time: the watchdog
# resets the MCU, reset releases the valve pins, gate pull-downs close it.
WATCHDOG_MS_MAX_CLINICAL = 2000
# The tick (thermocouple conversion ~100 ms) plus a littlefs erase and a GC
# pause must fit comfortably, or the watchdog bites during normal use.
WATCHDOG_MS_MIN = 500

# .mpy v6.3 = MicroPython 1.23 ... 1.29.
MPY_VERSION_FOR = ((1, 23), "6.3")


def _gpio(lo, hi, minus=()):
    return frozenset(range(lo, hi + 1)) - frozenset(minus)


# --- MCU / module pin rules --------------------------------------------------

# ESP32-S3 (ESP32-S3-WROOM-1 N8R8 on a DevKitC-1): GPIO 0-21, 26-48 exist.
_S3_EXIST = _gpio(0, 48, range(22, 26))
_S3_FLASH = frozenset(range(26, 33))  # SPI flash (SPICS0, SPICLK, SPID/Q/WP/HD)
_S3_OCTAL_PSRAM = frozenset(range(33, 38))  # octal PSRAM on R8 modules
_S3_USB = frozenset((19, 20))  # native USB D-/D+ (the REPL)
_S3_UART0 = frozenset((43, 44))  # boot log / fallback console
_S3_STRAPPING = frozenset((0, 3, 45, 46))  # boot mode, JTAG src, VDD_SPI, ROM log
_S3_RGB_LED = frozenset((38, 48))  # DevKitC-1 v1.1 / v1.0 addressable LED
_S3_ADC1 = _gpio(1, 10)  # ADC2 (11-20) is taken by Wi-Fi; use ADC1 only

# RP2040 / RP2350A: GPIO 0-29; ADC on 26-29. On the Pico/Pico 2 boards GPIO 23
# (SMPS mode), 24 (VBUS sense) and 29 (VSYS/3 ADC) are internal; 25 is the
# on-board LED.
_PICO_EXIST = _gpio(0, 29)
_PICO_INTERNAL = frozenset((23, 24, 29))
_PICO_ADC = frozenset((26, 27, 28))
_PICO_LED = 25

# pyboard v1.1 (STM32F405RG): board names -> CPU pins (boards/PYBV11/pins.csv).
PYB_PINS = {
    "X1": "A0", "X2": "A1", "X3": "A2", "X4": "A3", "X5": "A4", "X6": "A5",
    "X7": "A6", "X8": "A7", "X9": "B6", "X10": "B7", "X11": "C4", "X12": "C5",
    "X17": "B3", "X18": "C13", "X19": "C0", "X20": "C1", "X21": "C2", "X22": "C3",
    "Y1": "C6", "Y2": "C7", "Y3": "B8", "Y4": "B9", "Y5": "B12", "Y6": "B13",
    "Y7": "B14", "Y8": "B15", "Y9": "B10", "Y10": "B11", "Y11": "B0", "Y12": "B1",
}  # fmt: skip
# ADC123_IN0..7 on A0-A7, IN8/9 on B0/B1, IN10..15 on C0-C5 (STM32F405 datasheet).
_PYB_ADC = frozenset(["A%d" % i for i in range(8)] + ["B0", "B1"] + ["C%d" % i for i in range(6)])
_PYB_RESERVED = {
    "B3": "X17 is the pyboard's USR switch",
    "A13": "SWDIO / red LED(1)",
    "A14": "SWCLK / green LED(2)",
    "A15": "yellow LED(3)",
    "B4": "blue LED(4)",
    "B6": "X9 is I2C(1) to the on-board MMA7660 accelerometer (4.7 kOhm pull-up)",
    "B7": "X10 is I2C(1) to the on-board MMA7660 accelerometer (4.7 kOhm pull-up)",
    "A11": "USB D-",
    "A12": "USB D+",
    "C13": None,  # usable as input only (RTC domain, 3 mA max output)
}
# Hardware SPI buses on the pyboard are fixed (MICROPY_HW_SPIn_* in mpconfigboard.h).
_PYB_SPI = {
    1: {"sck": "X6", "miso": "X7", "mosi": "X8"},
    2: {"sck": "Y6", "miso": "Y7", "mosi": "Y8"},
}

# Everything the validator knows per MCU: port, mpy-cross arch, WDT maximum.
MCUS = {
    "ESP32-S3": {"port": "esp32", "arch": "xtensawin", "wdt_max_ms": None, "min_mp": (1, 20)},
    # RP2040 watchdog: 24-bit counter decremented twice per µs (erratum
    # RP2040-E1) -> 0xFFFFFF / 2 µs = 8388 ms, the limit machine.WDT enforces.
    "RP2040": {"port": "rp2", "arch": "armv6m", "wdt_max_ms": 8388, "min_mp": (1, 20)},
    # RP2350 fixed the double decrement: 24 bits of 1 µs -> 16777 ms.
    "RP2350": {"port": "rp2", "arch": "armv7m", "wdt_max_ms": 16777, "min_mp": (1, 24)},
    # STM32F405 IWDG: 40 kHz LSI / 256 prescaler x 4095 reload ~ 26 s (LSI
    # may run 17-47 kHz, so the documented ceiling is taken conservatively).
    # machine.PWM on stm32 arrived in MicroPython 1.28 (micropython PR #18881).
    "STM32F405": {"port": "stm32", "arch": "armv7emsp", "wdt_max_ms": 22000, "min_mp": (1, 28)},
}

# MicroPython board builds and their official stub packages (pinned).
MICROPYTHON_BOARDS = {
    "ESP32_GENERIC_S3": ("ESP32-S3", "micropython-esp32-esp32-generic-s3-stubs"),
    "RPI_PICO": ("RP2040", "micropython-rp2-rpi-pico-stubs"),
    "RPI_PICO2": ("RP2350", "micropython-rp2-rpi-pico2-stubs"),
    "PYBV11": ("STM32F405", "micropython-stm32-pybv11-stubs"),
}

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_PIN_STM = re.compile(r"^[A-H](?:[0-9]|1[0-5])$")


VIRTUAL = "virtual"
# The virtual board has no port watchdog maximum: the clinical limit applies.
MCUS_VIRTUAL = {"port": "sim", "arch": None, "wdt_max_ms": None, "min_mp": (1, 23)}


class PinRules:
    """Which pins a given MCU/module allows for which job."""

    def __init__(self, mcu):
        self.mcu = mcu

    def canonical(self, pin):
        """The physical pin a JSON value names (aliases collapse), or raise ValueError."""
        if self.mcu == "STM32F405":
            if not isinstance(pin, str):
                raise ValueError("pyboard pins are names like 'X1', 'Y12' or 'B12'")
            if pin in PYB_PINS:
                return PYB_PINS[pin]
            if _PIN_STM.match(pin) and pin[0] in "ABC" or pin == "D2":
                return pin
            raise ValueError(
                "no pin %r on the pyboard v1.1 (X1-X12, X17-X22, Y1-Y12 or A0..C15)" % pin
            )
        if not isinstance(pin, int) or isinstance(pin, bool):
            raise ValueError("%s pins are GPIO numbers (int)" % self.mcu)
        if self.mcu == "ESP32-S3":
            if pin not in _S3_EXIST:
                raise ValueError("ESP32-S3 has GPIO 0-21 and 26-48 only")
            return pin
        if pin not in _PICO_EXIST:
            raise ValueError("%s has GPIO 0-29 only" % self.mcu)
        return pin

    def problem(self, pin, job):
        """Why ``pin`` cannot do ``job`` ('out', 'in', 'adc', 'pwm', 'cs'), or None."""
        p = self.canonical(pin)
        if self.mcu == "ESP32-S3":
            if p in _S3_FLASH:
                return "GPIO%d drives the module's SPI flash" % p
            if p in _S3_OCTAL_PSRAM:
                return "GPIO%d is wired to the octal PSRAM on N8R8 modules" % p
            if p in _S3_USB:
                return "GPIO%d is native USB (the REPL / cryo link)" % p
            if p in _S3_UART0:
                return "GPIO%d is UART0 (boot log)" % p
            if p in _S3_STRAPPING:
                return (
                    "GPIO%d is a strapping pin: its level at reset selects boot mode/flash voltage, "
                    "and a valve or switch on it can glitch or stop the boot" % p
                )
            if p in _S3_RGB_LED:
                return "GPIO%d drives the DevKitC-1's RGB LED" % p
            if job == "adc" and p not in _S3_ADC1:
                return "GPIO%d is not on ADC1 (GPIO 1-10; ADC2 is unusable with Wi-Fi)" % p
            return None
        if self.mcu in ("RP2040", "RP2350"):
            if p in _PICO_INTERNAL:
                return "GPIO%d is internal on the Pico (SMPS mode / VBUS sense / VSYS ADC)" % p
            if p == _PICO_LED and job != "out":
                return "GPIO25 is the Pico's on-board LED (output only)"
            if job == "adc" and p not in _PICO_ADC:
                return "GPIO%d has no ADC; use GPIO 26, 27 or 28" % p
            return None
        # STM32F405 / pyboard
        why = _PYB_RESERVED.get(p, "")
        if why:
            return "%s is reserved: %s" % (pin, why)
        if p == "C13" and job != "in":
            return "C13 (X18) can only be an input (RTC domain, 3 mA drive)"
        if job == "adc" and p not in _PYB_ADC:
            return "%s has no ADC channel (A0-A7, B0, B1, C0-C5)" % pin
        if job == "pwm" and p not in _PYB_PWM:
            return "%s has no timer channel for machine.PWM" % pin
        return None

    def spi_problem(self, bus, role, pin):
        """Why ``pin`` cannot be ``role`` ('sck', 'mosi', 'miso') of SPI ``bus``, or None."""
        p = self.canonical(pin)
        if self.mcu in ("RP2040", "RP2350"):
            # GPIO n: SPI instance (n >> 3) & 1, function n & 3 = RX, CSn, SCK, TX.
            want = {"miso": 0, "sck": 2, "mosi": 3}[role]
            if (p >> 3) & 1 != bus or p & 3 != want:
                return "GPIO%d is not SPI%d %s (GPIO n is SPI(n>>3&1) and %s needs n&3 == %d)" % (
                    p,
                    bus,
                    role.upper(),
                    role,
                    want,
                )
            return None
        if self.mcu == "ESP32-S3":
            if bus not in (1, 2):
                return "ESP32-S3 machine.SPI ids are 1 (SPI2) and 2 (SPI3)"
            return None  # any GPIO through the GPIO matrix
        # stm32: the bus id fixes the pins (validate() checks them).
        return None


# Timer channels usable by machine.PWM on STM32F405 pins broken out on the pyboard.
_PYB_PWM = frozenset(
    ["A0", "A1", "A2", "A3", "A5", "A6", "A7", "B0", "B1", "B6", "B7", "B8", "B9", "B10", "B11"]
    + ["B14", "B15", "C6", "C7"]
)


def _version(text):
    m = _VERSION.match(text or "")
    return tuple(int(g) for g in m.groups()) if m else None


class VirtualPinRules:
    """The virtual board (boards/sim): any pin id exists and can do any job."""

    mcu = VIRTUAL

    def canonical(self, pin):
        if isinstance(pin, bool) or not isinstance(pin, (int, str)):
            raise ValueError("pins are ints or pin names")
        return pin

    def problem(self, pin, job):
        return None

    def spi_problem(self, bus, role, pin):
        return None


def validate(defn, name):
    """All problems with one real board definition (empty list = valid)."""
    if not isinstance(defn, dict):
        return ["%s: board.json must be a JSON object" % name]
    return _validate(defn, name, None)


def validate_virtual(defn, name="sim"):
    """The rules that hold for the virtual board too: one SPI mode per bus,
    fail-safe input and valve levels, buzzer band, LED names, pressure
    scaling, tick and watchdog (clinical limit). Skipped: the MCU's pins and
    the toolchain facts, which a virtual board does not have."""
    if not isinstance(defn, dict):
        return ["%s: board.json must be a JSON object" % name]
    return _validate(defn, name, VirtualPinRules())


def _validate(defn, name, virtual_rules):
    errs = []

    def err(field, msg):
        errs.append("%s: %s: %s" % (name, field, msg))

    if virtual_rules is not None:
        if "spi" not in defn:
            err("spi", "missing")
            return errs
        mcu = VIRTUAL
        facts = MCUS_VIRTUAL
        rules = virtual_rules
    else:
        mcu, facts = _check_toolchain(defn, name, err)
        if mcu is None:
            return errs
        rules = PinRules(mcu)
    return _check_wiring(defn, mcu, facts, rules, err, errs)


def _check_toolchain(defn, name, err):
    """Toolchain facts of a real board; (mcu, facts) or (None, None) to stop."""
    missing = False
    for key in ("name", "mcu", "port", "micropython", "mpy_cross_arch", "stubs", "spi"):
        if key not in defn:
            err(key, "missing (required for a real board)")
            missing = True
    if missing:
        return None, None
    if defn["name"] != name:
        err("name", "%r must equal the folder name %r" % (defn["name"], name))
    mcu = defn["mcu"]
    if mcu not in MCUS:
        err("mcu", "%r unknown; allowed: %s" % (mcu, ", ".join(sorted(MCUS))))
        return None, None
    facts = MCUS[mcu]
    if defn["port"] != facts["port"]:
        err("port", "%r does not run %s; the %s port does" % (defn["port"], mcu, facts["port"]))
    if defn["mpy_cross_arch"] != facts["arch"]:
        err(
            "mpy_cross_arch",
            "%s needs -march=%s, not %r" % (mcu, facts["arch"], defn["mpy_cross_arch"]),
        )
    ver = _version(defn["micropython"])
    if ver is None:
        err("micropython", "%r is not a release number like '1.29.0'" % defn["micropython"])
    elif ver[:2] < facts["min_mp"]:
        err("micropython", "%s needs MicroPython >= %d.%d" % (mcu, *facts["min_mp"]))
    if ver is not None and "mpy_version" in defn:
        want = MPY_VERSION_FOR[1] if ver[:2] >= MPY_VERSION_FOR[0] else None
        if want and defn["mpy_version"] != want:
            err(
                "mpy_version",
                "MicroPython %s loads .mpy %s, not %r"
                % (defn["micropython"], want, defn["mpy_version"]),
            )
    mpboard = defn.get("micropython_board")
    if mpboard not in MICROPYTHON_BOARDS:
        err(
            "micropython_board",
            "%r unknown; allowed: %s" % (mpboard, ", ".join(sorted(MICROPYTHON_BOARDS))),
        )
    else:
        bmcu, stub_pkg = MICROPYTHON_BOARDS[mpboard]
        if bmcu != mcu:
            err("micropython_board", "%s is a %s build, the board says %s" % (mpboard, bmcu, mcu))
        pkg, _, pin_ver = str(defn["stubs"]).partition("==")
        if pkg != stub_pkg:
            err("stubs", "%s's official stubs are %s, not %r" % (mpboard, stub_pkg, pkg))
        elif not pin_ver.startswith(defn["micropython"]):
            err(
                "stubs",
                "pin %r to the validated MicroPython %s" % (defn["stubs"], defn["micropython"]),
            )

    return mcu, facts


# What each port's machine.Timer / Pin.irq really offer (MicroPython 1.29
# sources): rp2 has only virtual timers (ports/rp2/machine_timer.c: any id but
# -1 is "Timer doesn't exist"); stm32's machine.Timer is the soft timer of
# shared/runtime/softtimer.c, run from the PendSV interrupt (hard=True: in
# that interrupt; its hardware timers are pyb.Timer); esp32's are the four
# hardware timers of the ESP32-S3's two timer groups, whose interrupt only
# schedules the callback (ports/esp32/machine_timer.c, which as read for
# this rule also raises ValueError for hard=True), and esp32's Pin.irq takes
# handler, trigger and wake, no hard (ports/esp32/machine_pin.c).
# Where each port's frozen _boot.py / main.c mounts the internal flash
# (MicroPython 1.29: ports/stm32/main.c init_flash_fs mounts "/flash";
# ports/rp2/modules/_boot.py and ports/esp32/modules/_boot.py mount "/"; the
# virtual board's ROM, boards/sim/vboard.py mount_root, mounts "/").
FLASH_ROOT = {"rp2": "/", "esp32": "/", "stm32": "/flash", "sim": "/"}

SAFETY_TIMER = {
    # port: (allowed ids, hard required (True) / forbidden (False) / free (None))
    "rp2": ((-1,), True),
    "stm32": ((-1,), True),
    "esp32": ((0, 1, 2, 3), False),
    "sim": ((-1, 0, 1, 2, 3), None),
}
ESTOP_IRQ_HARD = {"rp2": True, "stm32": True, "esp32": False, "sim": None}


def _check_interrupts(defn, port, err):
    """The safety timer and the e-stop interrupt use what the port offers,
    hard wherever the port can run the callback in interrupt context."""
    st = defn.get("safety_timer")
    ids, hard = SAFETY_TIMER[port]
    if not isinstance(st, dict):
        err(
            "safety_timer",
            'missing: {"id": %d, "hard": %s} on %s (a timer that closes both valves when the '
            "control loop stops)" % (ids[0], "false" if hard is False else "true", port),
        )
    else:
        if st.get("id") not in ids or isinstance(st.get("id"), bool):
            err(
                "safety_timer.id",
                "%r; %s's machine.Timer ids are %s"
                % (st.get("id"), port, ", ".join(str(i) for i in ids)),
            )
        if hard is not None and st.get("hard", False) is not hard:
            err(
                "safety_timer.hard",
                "must be %s on %s: %s"
                % (
                    "true" if hard else "false",
                    port,
                    "the callback must run in interrupt context to preempt a hung loop"
                    if hard
                    else "its machine.Timer only schedules callbacks and rejects hard=True",
                ),
            )
    est = (defn.get("inputs") or {}).get("estop")
    want = ESTOP_IRQ_HARD[port]
    if isinstance(est, dict) and want is not None and est.get("irq_hard", False) is not want:
        err(
            "inputs.estop.irq_hard",
            "must be %s on %s: %s"
            % (
                "true" if want else "false",
                port,
                "a hard pin interrupt records the loop opening even while the VM is busy"
                if want
                else "its Pin.irq has no 'hard' keyword (a TypeError at boot)",
            ),
        )


def _check_wiring(defn, mcu, facts, rules, err, errs):
    used = {}

    def pin(field, value, job):
        try:
            phys = rules.canonical(value)
        except ValueError as e:
            err(field, "%r: %s" % (value, e))
            return None
        why = rules.problem(value, job)
        if why:
            err(field, "%r cannot be used: %s" % (value, why))
        if phys in used:
            err(field, "%r is already used by %s" % (value, used[phys]))
        used[phys] = field
        return phys

    spi = defn["spi"]
    if not isinstance(spi, dict):
        err("spi", "must be an object with id, baudrate, polarity, phase, sck, mosi, miso")
        return errs
    bus = spi.get("id")
    if mcu == "STM32F405":
        # stm32's machine.SPI raises "explicit choice of sck/mosi/miso is not
        # implemented": the bus id fixes the pins, which are reserved here.
        if bus not in _PYB_SPI:
            err(
                "spi.id",
                "%r; pyboard hardware SPI buses are 1 (X6/X7/X8) and 2 (Y6/Y7/Y8)" % (bus,),
            )
        for role in ("sck", "mosi", "miso"):
            if role in spi:
                err(
                    "spi." + role,
                    "must be omitted on stm32: SPI(%r) has fixed pins and "
                    "machine.SPI rejects explicit ones" % (bus,),
                )
            elif bus in _PYB_SPI:
                pin("spi(%s).%s" % (bus, role), _PYB_SPI[bus][role], "spi")
    else:
        for role in ("sck", "mosi", "miso"):
            if role not in spi:
                err("spi." + role, "missing")
                continue
            if pin("spi." + role, spi[role], "spi") is not None:
                why = rules.spi_problem(bus, role, spi[role])
                if why:
                    err("spi." + role, why)

    tcs = defn.get("thermocouples")
    if not isinstance(tcs, dict) or sorted(tcs) != sorted(THERMOCOUPLE_CHANNELS):
        err("thermocouples", "must name exactly the channels %s" % ", ".join(THERMOCOUPLE_CHANNELS))
        tcs = tcs if isinstance(tcs, dict) else {}
    for ch, tc in sorted(tcs.items()):
        field = "thermocouples.%s" % ch
        if not isinstance(tc, dict):
            err(field, "must be an object with cs, chip, type")
            continue
        chip = tc.get("chip")
        if chip not in CHIPS:
            err(field + ".chip", "%r unknown; allowed: %s" % (chip, ", ".join(CHIPS)))
            continue
        phase, types, max_hz = CHIPS[chip]
        if tc.get("type") not in types:
            err(field + ".type", "%r; %s supports %s" % (tc.get("type"), chip, "/".join(types)))
        if spi.get("phase") != phase:
            err(
                "spi.phase",
                "%s on %s needs SPI phase %d; all chips on one bus share its mode"
                % (chip, ch, phase),
            )
        if not isinstance(spi.get("baudrate"), int) or not 100_000 <= spi["baudrate"] <= max_hz:
            err(
                "spi.baudrate",
                "%r; %s allows 100 kHz ... %d Hz" % (spi.get("baudrate"), chip, max_hz),
            )
        if "cs" not in tc:
            err(field + ".cs", "missing")
        else:
            pin(field + ".cs", tc["cs"], "out")

    for field in ("valve", "master_valve"):
        out = defn.get(field)
        if not isinstance(out, dict) or "pin" not in out:
            err(field, "must be an object with pin and active_high")
            continue
        pin(field + ".pin", out["pin"], "out")
        if out.get("active_high") is not True:
            err(
                field + ".active_high",
                "must be true: the normally-closed valve opens only while driven high, so a "
                "reset (pins high-Z, gate pull-down) closes it",
            )

    inputs = defn.get("inputs")
    if not isinstance(inputs, dict):
        err("inputs", "must map estop, footswitch and handpiece to {pin, pull, invert}")
        inputs = {}
    for role in INPUTS + tuple(r for r in OPTIONAL_INPUTS if r in inputs):
        field = "inputs." + role
        inp = inputs.get(role)
        if not isinstance(inp, dict) or "pin" not in inp:
            err(field, "must be an object with pin, pull and invert")
            continue
        pin(field + ".pin", inp["pin"], "in")
        pull, invert = inp.get("pull"), inp.get("invert", False)
        if pull not in ("up", "down"):
            err(
                field + ".pull",
                "%r; real boards declare 'up' or 'down' (fit the resistor "
                "externally too) so a cut wire has a known level" % (pull,),
            )
        elif (pull == "up") != (invert is True):
            err(
                field + ".invert",
                "%r with pull %r: a cut wire reads %d, the active level; it must read "
                "inactive (e-stop tripped, footswitch released, handpiece in holder, "
                "valve supply absent)" % (invert, pull, 1 if pull == "up" else 0),
            )
        ext = inp.get("external_pull_ohms")
        if ext is not None and (not isinstance(ext, int) or not 1000 <= ext <= 47000):
            err(field + ".external_pull_ohms", "%r; a 1k ... 47k resistor at the pin" % (ext,))
        if mcu == "RP2350" and pull == "down" and not (isinstance(ext, int) and ext <= 8200):
            err(
                field + ".pull",
                "RP2350-E9: an internal pull-down cannot hold a floating input "
                "low; fit an external pull-down <= 8.2 kOhm (external_pull_ohms) or wire to GND "
                "with a pull-up",
            )

    _check_interrupts(defn, facts["port"], err)
    root = defn.get("flash_root", "/")
    if root != FLASH_ROOT[facts["port"]]:
        err(
            "flash_root",
            "%r; the %s port's _boot.py mounts the internal flash at %r"
            % (root, facts["port"], FLASH_ROOT[facts["port"]]),
        )

    buz = defn.get("buzzer")
    if not isinstance(buz, dict) or "pin" not in buz:
        err("buzzer", "must be an object with pin and freq")
    else:
        pin("buzzer.pin", buz["pin"], "pwm")
        if not isinstance(buz.get("freq"), int) or not BUZZER_HZ[0] <= buz["freq"] <= BUZZER_HZ[1]:
            err(
                "buzzer.freq",
                "%r Hz; IEC 60601-1-8 wants a 150-1000 Hz fundamental" % buz.get("freq"),
            )

    leds = defn.get("leds")
    if not isinstance(leds, dict) or not {"red", "yellow"} <= set(leds):
        err("leds", "needs 'red' and 'yellow' (IEC 60601-1-8 high / medium priority colours)")
    else:
        for led, spec in sorted(leds.items()):
            if led not in LED_NAMES:
                err("leds." + led, "unknown; allowed: %s" % ", ".join(LED_NAMES))
            if not isinstance(spec, dict) or "pin" not in spec:
                err("leds." + led, "must be an object with pin")
                continue
            pin("leds.%s.pin" % led, spec["pin"], "out")

    adc = defn.get("pressure_adc")
    if not isinstance(adc, dict) or "pin" not in adc:
        err(
            "pressure_adc",
            "must be an object with pin, full_scale_kpa, zero_fraction, span_fraction",
        )
    else:
        pin("pressure_adc.pin", adc["pin"], "adc")
        atten = adc.get("atten")
        if facts["port"] == "esp32" and atten != "ATTN_11DB":
            err(
                "pressure_adc.atten",
                "%r; esp32 needs 'ATTN_11DB' (the default 0 dB reads only ~0-0.95 V, "
                "the transducer's divided output goes to ~3.1 V)" % (atten,),
            )
        elif facts["port"] != "esp32" and atten is not None:
            err(
                "pressure_adc.atten",
                "must be omitted on %s: its machine.ADC has no attenuator (no atten "
                "keyword)" % facts["port"],
            )
        zero, span = adc.get("zero_fraction"), adc.get("span_fraction")
        if not (
            isinstance(zero, float)
            and isinstance(span, float)
            and 0 < zero
            and 0 < span
            and zero + span <= 1.0
        ):
            err(
                "pressure_adc",
                "zero_fraction %r + span_fraction %r must be > 0 and fit in the "
                "ADC range (<= 1.0) so a 0 V wire break reads below zero" % (zero, span),
            )

    wdt = (defn.get("watchdog") or {}).get("timeout_ms")
    if not isinstance(wdt, int) or isinstance(wdt, bool):
        err("watchdog.timeout_ms", "must be an integer number of milliseconds")
    else:
        top = WATCHDOG_MS_MAX_CLINICAL
        if facts["wdt_max_ms"] is not None:
            top = min(top, facts["wdt_max_ms"])
        tick = defn.get("tick_ms")
        if not isinstance(tick, int) or not 20 <= tick <= 200:
            err("tick_ms", "%r; the controller's period_ms range is 20 ... 200 ms" % (tick,))
        elif wdt < 5 * tick:
            err(
                "watchdog.timeout_ms",
                "%d < 5 ticks of %d ms: one slow tick would reset" % (wdt, tick),
            )
        if not WATCHDOG_MS_MIN <= wdt <= top:
            err(
                "watchdog.timeout_ms",
                "%d; allowed %d ... %d ms on %s (clinical limit %d ms)"
                % (wdt, WATCHDOG_MS_MIN, top, mcu, WATCHDOG_MS_MAX_CLINICAL),
            )
    return errs
