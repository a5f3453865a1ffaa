"""Every firmware module cross-compiles for every real board's architecture.

mpy-cross uses MicroPython's own compiler, so this also rejects syntax the
boards cannot run (``match``, positional-only ``/``, ``{**d}``). Plain
bytecode carries no architecture (header arch 0, loads on any port with the
same .mpy major version); ``@micropython.native`` / ``viper`` functions are
compiled to machine code for ``-march`` and must carry that arch.
"""

import boardcheck
import pytest


def _archs():
    archs = list(boardcheck.REQUIRED_ARCHS)
    for d in boardcheck.board_dirs():
        arch = boardcheck.load_board(d.name).get("mpy_cross_arch")
        if arch and arch not in archs and d.name != "sim":
            archs.append(arch)
    return archs


@pytest.mark.parametrize("march", _archs())
def test_every_firmware_module_compiles(march, tmp_path):
    files = boardcheck.firmware_files()
    assert files
    failures = []
    for src in files:
        out = tmp_path / (boardcheck.rel(src).replace("/", "__") + ".mpy")
        # -O1: what boards/<name>/manifest.py freezes with.
        proc = boardcheck.mpy_cross(src, out, march, ["-O1"])
        if proc.returncode != 0:
            failures.append("%s: %s" % (boardcheck.rel(src), proc.stderr.strip()))
            continue
        head = boardcheck.mpy_header(out)
        # Major 6 loads on MicroPython 1.19 ... 1.29; the sub-version is
        # written (and must match: 6.3 = 1.23 ... 1.29) only with native code.
        native = head["arch"] is not None
        if head["version"] != 6 or head["sub_version"] != (3 if native else 0):
            failures.append("%s: .mpy v%d.%d" % (src, head["version"], head["sub_version"]))
        if head["arch"] not in (None, march):
            failures.append("%s: native code for %s, wanted %s" % (src, head["arch"], march))
    assert failures == [], "mpy-cross -march=%s failed:\n%s" % (march, "\n".join(failures))


NATIVE_PROBE = """\
import micropython

@micropython.native
def add(a, b):
    return a + b

@micropython.viper
def mask(x: int) -> int:
    return x & 0xFF
"""


@pytest.mark.parametrize("march", boardcheck.REQUIRED_ARCHS + ("armv7m",))
def test_native_code_carries_the_requested_arch(march, tmp_path):
    """Proves -march is honoured: the check above would see a wrong arch."""
    src = tmp_path / "probe.py"
    src.write_text(NATIVE_PROBE)
    out = tmp_path / "probe.mpy"
    proc = boardcheck.mpy_cross(src, out, march)
    assert proc.returncode == 0, proc.stderr
    head = boardcheck.mpy_header(out)
    assert head["arch"] == march
    assert (head["version"], head["sub_version"]) == (6, 3)


def test_compiler_rejects_syntax_the_boards_cannot_run(tmp_path):
    src = tmp_path / "bad.py"
    src.write_text("def f(a, /, b):\n    return {**a}\n")
    proc = boardcheck.mpy_cross(src, tmp_path / "bad.mpy", "armv6m")
    assert proc.returncode != 0
    assert "SyntaxError" in proc.stderr


def test_compiled_firmware_runs_on_micropython(tmp_path, mpy):
    """The bytecode .mpy tree (what gets frozen or copied) imports and runs.

    Compiled for x64 (the unix port's arch) so the unix port can load it;
    the clock's 30-bit wrap arithmetic runs from the .mpy files, not source.
    """
    root = tmp_path / "mpy"
    for src in boardcheck.firmware_files():
        out = root / src.relative_to(boardcheck.FIRMWARE).with_suffix(".mpy")
        proc = boardcheck.mpy_cross(src, out, "x64")
        assert proc.returncode == 0, proc.stderr
    proc = mpy.run_raw(
        """
import sys
sys.path[:] = [%r]
import cryo.clock as c
assert c.__file__.endswith('.mpy'), c.__file__
clk = c.ManualClock((1 << 30) - 5)
t0 = clk.ticks_ms()
clk.advance(10)
print('diff', clk.diff(clk.ticks_ms(), t0), clk.ticks_ms())
"""
        % str(root)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["diff", "10", "5"]
