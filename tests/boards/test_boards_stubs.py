"""The firmware type-checks against each real port's official MicroPython stubs.

So every ``machine`` call the firmware makes exists, with that signature, on
the ESP32-S3, RP2040, RP2350 and STM32 (pyboard) ports. mypy runs with the
port's stubs on MYPYPATH and MicroPython's own stdlib stubs as the typeshed
(micropython.md §7); ``--check-untyped-defs`` so unannotated firmware is
checked too. The planted-file tests prove a wrong call is reported on every
port and that the inference-artefact filter does not hide it.
"""

import textwrap

import boardcheck
import pytest

PORTS = sorted(boardcheck.STUB_SETS)


@pytest.mark.parametrize("board", PORTS)
def test_firmware_type_checks_against_port_stubs(board):
    errors, _ = boardcheck.run_mypy(board)
    assert errors == [], "mypy against %s found:\n%s" % (
        boardcheck.STUB_SETS[board],
        "\n".join(errors),
    )


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
"""


@pytest.mark.parametrize("board", PORTS)
def test_planted_errors_are_reported_and_artefacts_are_not(board, tmp_path):
    files = {}
    for name, text in (("good", GOOD), ("bad", BAD), ("artefacts", ARTEFACTS)):
        files[name] = tmp_path / (name + ".py")
        files[name].write_text(textwrap.dedent(text))
    errors, out = boardcheck.run_mypy(board, list(files.values()))
    bad = sorted(e.split(":", 2)[1] + ":" + e.split("  [")[-1] for e in errors if "/bad.py:" in e)
    assert bad == ["4:attr-defined]", "6:attr-defined]", "7:call-arg]", "8:attr-defined]"], out
    others = [e for e in errors if "/bad.py:" not in e]
    assert others == [], out


@pytest.mark.parametrize(
    "module, ports",
    [("esp32", {"esp32s3"}), ("rp2", {"rp2040", "rp2350"}), ("pyb", {"stm32f4"})],
)
def test_port_specific_modules_exist_only_on_their_port(module, ports, tmp_path):
    src = tmp_path / ("use_%s.py" % module)
    src.write_text("import %s\n" % module)
    for board in PORTS:
        errors, _ = boardcheck.run_mypy(board, [src])
        missing = any("[import-not-found]" in e for e in errors)
        assert missing == (board not in ports), (board, module, errors)
