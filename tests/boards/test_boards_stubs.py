"""The firmware type-checks against each real port's official MicroPython stubs.

So every ``machine`` call the firmware makes exists, with that signature, on
the ESP32-S3, RP2040, RP2350 and STM32 (pyboard) ports. mypy runs with the
port's stubs on MYPYPATH and MicroPython's own stdlib stubs as the typeshed
; ``--check-untyped-defs`` so unannotated firmware is
checked too. The planted-file tests prove a wrong call is reported on every
port and that the inference-artefact filter does not hide it.
"""

import ast
import re
import textwrap
import warnings
from pathlib import Path

import boardcheck
import pytest

PORTS = sorted(boardcheck.STUB_SETS)
KNOWN = Path(__file__).with_name("mypy_known.txt")


def known_errors() -> set[str]:
    """Known errors waiting for a fix in firmware files outside the board
    definitions ('path: message', line numbers dropped; '  # ...' = note)."""
    out = set()
    for line in KNOWN.read_text().splitlines():
        line = line.split("  # ", 1)[0].strip()
        if line and not line.startswith("#"):
            out.add(line)
    return out


def without_line(error: str) -> str:
    return re.sub(r"^([^:]+):\d+: ", r"\1: ", error)


@pytest.mark.parametrize("board", PORTS)
def test_firmware_type_checks_against_port_stubs(board):
    errors, _ = boardcheck.run_mypy(board)
    known = known_errors()
    new = [e for e in errors if without_line(e) not in known]
    assert new == [], "mypy against %s found:\n%s" % (boardcheck.STUB_SETS[board], "\n".join(new))
    stale = known - {without_line(e) for e in errors}
    if stale:
        warnings.warn("fixed, remove from %s: %s" % (KNOWN.name, sorted(stale)), stacklevel=1)


GOOD = """\
from machine import ADC, PWM, SPI, WDT, Pin

spi = SPI(1, baudrate=1_000_000, polarity=0, phase=0, sck=Pin(12), mosi=Pin(11), miso=Pin(13))
buf = bytearray(4)
spi.readinto(buf, 0)
spi.write_readinto(buf, buf)
cs = Pin(10, Pin.OUT, value=1)
cs.value(0)
cs(1)
estop = Pin(7, Pin.IN, Pin.PULL_UP)
pressed = estop.value() == 0
pwm = PWM(Pin(5), freq=2700, duty_u16=0)
pwm.duty_u16(32768)
adc = ADC(Pin(1))
kpa = adc.read_u16()
wdt = WDT(timeout=2000)
wdt.feed()
"""

BAD = """\
from machine import PWM, SPI, WDT, Pin

spi = SPI(1)
spi.read_all()
pwm = PWM(Pin(5))
pwm.duty_percent(5)
wdt = WDT(timeout_ms=2000)
p = Pin(5, Pin.OUTPUT)


class Dev:
    def __init__(self):
        self.spi = SPI(1)

    def read(self):
        return self.spi.read_all()


from cryo import not_written_yet  # noqa: E402 - unguarded: must be reported
"""

# Patterns that are fine on a board and must not count as errors.
ARTEFACTS = """\
import struct

try:
    from micropython import const
except ImportError:  # host side

    def const(x):
        return x

try:
    from binascii import crc32
except ImportError:  # host side
    from zlib import crc32


def encode(values):
    args = []
    args.append(b"x")
    args.append(7)
    res = {"fault": 0, "reason": ""}
    return "%d %s" % (res["fault"], res["reason"]), struct.pack("<I", crc32(b"x")), args


class Log:
    def __init__(self):
        self._f = None
        self.temp = [None, None]

    def open(self):
        self._f = open("x", "wb")

    def write(self, ch):
        self._f.write(b"x")
        if self.temp[ch] is None:
            return False
        t = self.temp[ch]
        return -10.0 <= t <= 45.0


class Tuner:
    def __init__(self):
        self._at = {"state": "idle"}
        self._sup = [None, None, None]

    def start(self, sp):
        self._at = {"state": "running", "setpoint_c": sp, "cycles": 0}
        self._sup[0] = Log()


def optional_part():
    try:
        from cryo import not_written_yet
    except ImportError:
        return None
    return not_written_yet


def optional_class():
    try:
        from cryo.clock import ManualClock
    except ImportError:
        ManualClock = None
    return ManualClock
"""


@pytest.mark.parametrize("board", PORTS)
def test_planted_errors_are_reported_and_artefacts_are_not(board, tmp_path):
    files = {}
    for name, text in (("good", GOOD), ("bad", BAD), ("artefacts", ARTEFACTS)):
        files[name] = tmp_path / (name + ".py")
        files[name].write_text(textwrap.dedent(text))
    errors, out = boardcheck.run_mypy(board, list(files.values()))
    bad = sorted(e.split(":", 2)[1] + ":" + e.split("  [")[-1] for e in errors if "/bad.py:" in e)
    assert bad == [
        "16:attr-defined]",
        "19:attr-defined]",
        "4:attr-defined]",
        "6:attr-defined]",
        "7:call-arg]",
        "8:attr-defined]",
    ], out
    others = [e for e in errors if "/bad.py:" not in e]
    assert others == [], out


PORT_MODULES = {"esp32": {"esp32s3"}, "rp2": {"rp2040", "rp2350"}, "pyb": {"stm32f4"}}


@pytest.mark.parametrize("board", PORTS)
def test_port_specific_modules_exist_only_on_their_port(board, tmp_path):
    src = tmp_path / "use_port_modules.py"
    names = sorted(PORT_MODULES)
    src.write_text("".join("import %s\n" % m for m in names))
    errors, _ = boardcheck.run_mypy(board, [src])
    missing = {names[int(e.split(":")[1]) - 1] for e in errors if "[import-not-found]" in e}
    assert missing == {m for m in names if board not in PORT_MODULES[m]}, errors


def test_firmware_uses_only_machine_methods_every_port_has():
    """The virtual board's ``machine`` may offer more than a port does (e.g.
    ``Pin.high()`` is missing on esp32, ``ADC.read_uv()`` on rp2/stm32). The
    firmware receives pins/buses by injection, where mypy sees no types, so
    any call to such a method anywhere in firmware/ is an error here."""
    extras = set()
    for board in PORTS:
        extras |= {name.rsplit(".", 1)[1] for name in boardcheck.sim_machine_extras(board)}
    own = set()
    for path in boardcheck.firmware_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                own.add(node.name)
    hits = boardcheck.calls_to(boardcheck.firmware_files(), extras - own)
    assert hits == [], "machine methods missing on some port: " + ", ".join(hits)


def test_sim_only_hooks_are_reached_through_getattr():
    """machine.board_definition()/flash_device() exist only on the virtual
    board: the firmware may use them only as getattr(machine, name, None)."""
    hits = boardcheck.calls_to(boardcheck.firmware_files(), set(boardcheck.SIM_ONLY))
    assert hits == []


def test_sim_extras_are_detected():
    # Known port differences, as the stubs describe them.
    assert "machine.Pin.high" in boardcheck.sim_machine_extras("esp32s3")
    assert "machine.ADC.read_uv" in boardcheck.sim_machine_extras("rp2040")
    assert "machine.ADC.read_uv" not in boardcheck.sim_machine_extras("esp32s3")


def test_firmware_passes_no_keyword_a_port_takes_only_by_position(tmp_path):
    """``spi.readinto(buf, write=0)`` works on the virtual board (Python
    defaults) but raises TypeError on every port (C functions take these
    positionally). Checked on injected objects, which mypy cannot type."""
    planted = tmp_path / "planted.py"
    planted.write_text(
        "def read(spi, buf, pwm):\n"
        "    spi.readinto(buf, write=0xFF)\n"
        "    spi.readinto(buf, 0xFF)\n"
        "    pwm.duty_u16(value=0)\n"
    )
    for board in PORTS:
        methods = boardcheck.positional_only(board)
        assert [h.split(":", 1)[1] for h in boardcheck.keyword_calls([planted], methods)] == [
            "2: .readinto(write=...)",
            "4: .duty_u16(value=...)",
        ]
        hits = boardcheck.keyword_calls(boardcheck.firmware_files(), methods)
        assert hits == [], "%s: %s" % (board, ", ".join(hits))
