"""Targets for the end-to-end board checks: the virtual board or a real one.

The same MicroPython snippet runs on either target, so every check written
against the virtual board is reused on hardware (``--port /dev/ttyACM0``):

- :class:`SimTarget` runs the snippet under the unix port with the virtual
  board built from a board definition (``boards/<name>/board.json``), a
  ``ManualClock`` and the emulated chips/plant.
- :class:`DeviceTarget` runs it on a board over its USB serial port with
  mpremote's ``SerialTransport`` (raw REPL, no soft reset: boot.py has
  already driven the valves closed). The firmware must be on the board
  (``cryo flash``) with its ``/board.json``.

Both give a snippet the same names: ``defn`` (the board definition),
``board`` (a ``cryo.board.Board``), ``advance(ms)`` (virtual time on the sim,
a real sleep on hardware) and ``result(obj)``.
"""

from __future__ import annotations

import json
import textwrap
import time

import boardcheck
import mpyrun

_MARK = "\x1e@@RESULT@@"

_RESULT = (
    """
import json as _json
def result(obj):
    print(%r + _json.dumps(obj))
"""
    % _MARK
)

# Callback state for the interrupt checks: ``c.tick`` (timer) and ``c.pin``
# (pin IRQ) count in small ints only, allocation-free as a hard ISR must be.
COUNTER = """
class C:
    def __init__(self):
        self.n = 0
        self.e = 0
    def tick(self, t):
        self.n += 1
    def pin(self, p):
        self.e += 1
c = C()
"""

_SIM_PROLOGUE = """
import json, vboard
import plant as plant_mod
from cryo.clock import ManualClock
defn = json.loads(%(defn)r)
_clock = ManualClock((1 << 30) - 1000)
_world = vboard.World(board=defn, plant_params=plant_mod.load("default"), seed=5,
                      clock=_clock, realtime=False)
vboard.install(_world)
from cryo.board import Board
board = Board(defn, _clock)
def advance(ms):
    _clock.advance(ms)
    _world.advance_to(_clock.ticks_ms())
"""

_DEVICE_PROLOGUE = """
import time
from cryo.board import Board, load_definition
defn = load_definition(%(path)r)
board = Board(defn)
def advance(ms):
    time.sleep_ms(ms)
"""


def _parse(stdout: str):
    lines = [
        ln[len(_MARK) :] for ln in stdout.replace("\r", "").split("\n") if ln.startswith(_MARK)
    ]
    if not lines:
        raise AssertionError("the snippet reported no result; output:\n" + stdout[-3000:])
    return json.loads(lines[-1])


class SimTarget:
    """The virtual board, wired from a real board's definition."""

    kind = "sim"
    ticks_period = 1 << 30  # the ManualClock wraps like a 32-bit board

    def __init__(self, board: str = "sim"):
        self.board = board
        self.definition = boardcheck.load_board(board)

    def run(self, snippet: str, timeout: float = 120):
        code = (
            _RESULT
            + _SIM_PROLOGUE % {"defn": json.dumps(self.definition)}
            + textwrap.dedent(snippet)
        )
        proc = mpyrun.run_raw(code, timeout=timeout)
        if proc.returncode != 0:
            raise mpyrun.MicroPythonError(
                "virtual board (%s definition) failed:\n%s" % (self.board, proc.stderr[-3000:])
            )
        return _parse(proc.stdout)


class DeviceTarget:
    """A real board on a serial port (or anything mpremote can open)."""

    kind = "device"

    def __init__(self, port: str, definition_path: str = "/board.json", timeout: float = 2):
        from mpremote.transport_serial import SerialTransport

        self.port = port
        self.definition_path = definition_path
        self.transport = SerialTransport(port, baudrate=115200, timeout=timeout)
        # No soft reset: the board keeps its pin levels (valves closed by
        # boot.py) and mpremote's Ctrl-C stops main.py's loop, whose
        # ``finally`` drives the valves closed (Controller.run). A board
        # still printing its boot messages can garble the first exchange:
        # retry a few times until a probe comes back clean.
        from mpremote.transport import TransportError

        for attempt in range(5):
            try:
                self.transport.enter_raw_repl(soft_reset=False)
                if self.exec(_RESULT + "result(6 * 7)\n", timeout=5) == 42:
                    break
            except (TransportError, AssertionError):
                if attempt == 4:
                    raise
                time.sleep(0.5)
        self.definition = self.eval_json("__import__('json').dumps(%s)" % self._load_expr())
        self.board = self.definition.get("name", "?")
        # 32-bit boards wrap ticks at 2**30; the unix port behind `cryo sim`
        # wraps where its build does (2**62 on a 64-bit build, 2**30 on the
        # 32-bit one), as that interpreter reports on its own.
        unix = self.identity()["platform"] in ("linux", "darwin")
        self.ticks_period = mpyrun.facts()["ticks_period"] if unix else 1 << 30

    def _load_expr(self):
        return "__import__('cryo.board', None, None, ['load_definition']).load_definition(%r)" % (
            self.definition_path
        )

    def eval_json(self, expr: str):
        out = self.exec(_RESULT + "result(_json.loads(%s))\n" % expr)
        return out

    def exec(self, code: str, timeout: float = 30):
        """Run ``code`` on the board and return what it passed to ``result``."""
        out, err = self.transport.exec_raw(code, timeout=timeout)
        if err:
            raise AssertionError(
                "the board raised (is the firmware flashed? `cryo flash --port %s`):\n%s"
                % (self.port, err.decode("utf-8", "replace"))
            )
        return _parse(out.decode("utf-8", "replace"))

    def run(self, snippet: str, timeout: float = 30):
        code = (
            _RESULT + _DEVICE_PROLOGUE % {"path": self.definition_path} + textwrap.dedent(snippet)
        )
        return self.exec(code, timeout=timeout)

    def identity(self) -> dict:
        return self.exec(
            _RESULT
            + """
import sys, os
un = getattr(os, "uname", None)      # the unix port has none
u = un() if un else None
result({"platform": sys.platform, "machine": u.machine if u else sys.platform,
        "release": u.release if u else "",
        "version": list(sys.implementation.version[:3]), "mpy": sys.implementation._mpy})
"""
        )

    def close(self):
        try:
            self.transport.exit_raw_repl()
        finally:
            self.transport.close()


# MCU as os.uname().machine names it on each port's official builds.
UNAME_MACHINE = {
    "ESP32-S3": "ESP32S3",
    "RP2040": "RP2040",
    "RP2350": "RP2350",
    "STM32F405": "STM32F405",
}


def identity_problems(ident: dict, defn: dict) -> list[str]:
    """Why the connected board does not match its definition (empty = it does)."""
    probs = []
    want = UNAME_MACHINE.get(defn.get("mcu"), defn.get("mcu", "?"))
    if want not in ident["machine"].replace("-", ""):
        probs.append("os.uname().machine %r is not a %s" % (ident["machine"], defn.get("mcu")))
    ver = tuple(ident["version"])
    need = tuple(int(x) for x in defn.get("micropython", "0.0.0").split("."))
    if ver[:2] != need[:2]:
        probs.append(
            "MicroPython %s on the board; the definition is validated with %s"
            % (".".join(map(str, ver)), defn.get("micropython"))
        )
    mpy = ident["mpy"]
    if (mpy & 0xFF, (mpy >> 8) & 3) != (6, 3):
        probs.append(
            ".mpy %d.%d on the board; the firmware is built as 6.3" % (mpy & 0xFF, (mpy >> 8) & 3)
        )
    arch = (
        boardcheck.MPY_ARCHS[(mpy >> 10) & 0xF]
        if (mpy >> 10) & 0xF < len(boardcheck.MPY_ARCHS)
        else None
    )
    mine = defn.get("mpy_cross_arch")
    if arch is not None and mine in boardcheck.MPY_ARCHS:
        a, m = boardcheck.MPY_ARCHS.index(arch), boardcheck.MPY_ARCHS.index(mine)
        arm = range(
            boardcheck.MPY_ARCHS.index("armv6"), boardcheck.MPY_ARCHS.index("armv7emdp") + 1
        )
        # ARM Thumb builds load native code from armv6m up to their own arch.
        if not (a == m or (a in arm and m in arm and m <= a)):
            probs.append("the board runs %s code; the definition compiles for %s" % (arch, mine))
    return probs
