"""The firmware behaves the same when frozen.

Frozen bytecode is built with an optimisation level (MicroPython docs, "MicroPython manifest files":
``opt >= 1`` strips ``assert`` and makes ``__debug__`` False, ``opt >= 3``
drops line numbers), and the RP2040 and pyboard need the firmware frozen to
fit their heap (docs/boards.md). So no behaviour may hang on ``assert`` or
``__debug__``, and the controller must run from ``-O3`` bytecode.
"""

import ast
import tempfile
from pathlib import Path

import boardcheck


def test_no_safety_logic_in_assert_or_debug():
    hits = []
    for path in boardcheck.firmware_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assert):
                hits.append("%s:%d: assert" % (boardcheck.rel(path), node.lineno))
            elif isinstance(node, ast.Name) and node.id == "__debug__":
                hits.append("%s:%d: __debug__" % (boardcheck.rel(path), node.lineno))
    assert hits == [], "stripped when frozen with opt >= 1: " + ", ".join(hits)


def test_optimised_bytecode_really_strips_asserts(tmp_path, mpy):
    """The premise of the check above, on the real toolchain."""
    src = tmp_path / "h_assert_probe.py"
    src.write_text("def f(x):\n    assert x > 0, 'negative'\n    return x\n")
    results = {}
    for opt in (0, 1):
        out = tmp_path / ("O%d" % opt) / "h_assert_probe.mpy"
        proc = boardcheck.mpy_cross(src, out, "x64", ["-O%d" % opt] if opt else [])
        assert proc.returncode == 0, proc.stderr
        run = mpy.run_raw(
            "import h_assert_probe\ntry:\n    h_assert_probe.f(-1)\n    print('passed')\nexcept AssertionError:\n"
            "    print('raised')\n",
            extra_path=[out.parent],
        )
        results[opt] = run.stdout.strip()
    assert results == {0: "raised", 1: "passed"}


def test_controller_runs_from_O3_bytecode(mpy):
    """Two virtual minutes of the treatment scenario (boot, self-test,
    pre-cool, freeze) on the fast-mode runner (boards/sim/fastrun.py), booting the firmware from an
    ``-O3`` .mpy tree instead of the sources."""
    with tempfile.TemporaryDirectory() as d:
        rom = boardcheck.compile_firmware(Path(d) / "rom", opt=3)
        ok, res = boardcheck.run_fastrun(None, duration_s=120, rom=rom, phases=None)
    assert ok, res
    assert res["valve_cycles"] > 0
