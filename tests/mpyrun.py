"""Run firmware code under the real MicroPython unix port.

Used by the ``mpy`` fixture, by the differential helper and by the
benchmarks. A snippet reports structured results by calling
``mpytest.result(obj)`` (JSON on one marked line); an uncaught exception
becomes :class:`MicroPythonError` carrying MicroPython's own traceback.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
MPY_LIB = ROOT / "tests" / "mpy_lib"
SIM = ROOT / "boards" / "sim"
MPYLIB = ROOT / "build" / "mpylib"  # micropython-lib modules the firmware requires
CPYTHON_SHIM = ROOT / "tests" / "cpython_shim"
_MARK = "\x1e@@RESULT@@"


class MicroPythonError(AssertionError):
    """A snippet failed under MicroPython; the message holds its traceback."""


def micropython_exe() -> str:
    """The interpreter under test (same lookup as the host tools)."""
    from host_tools.errors import CryoError
    from host_tools.interpreter import micropython_exe as find

    try:
        return find()
    except CryoError as e:
        raise RuntimeError(str(e))


def facts() -> dict:
    """What the interpreter under test is (float32, sys.maxsize, where ticks
    wrap), read from the interpreter itself."""
    from host_tools.interpreter import facts as of

    return of(micropython_exe())


def float_tol(abs_: float = 0.0, scale: float = 1.0) -> float:
    """An absolute tolerance for a value of magnitude ``scale`` computed
    under the interpreter: ``abs_`` in double, at least 4 float32 units in
    the last place (``scale * 2**-21``) when the build computes in single
    precision like most boards."""
    return max(abs_, scale * 2.0**-21) if facts()["float32"] else abs_


def micropypath(extra=()) -> str:
    # ".frozen" first, as in the default sys.path: asyncio and friends live there.
    paths = [".frozen", str(MPYLIB)] + [str(p) for p in extra]
    paths += [str(FIRMWARE), str(SIM), str(MPY_LIB)]
    return ":".join(paths)


def run_raw(
    code: str, *, heapsize: str | None = None, timeout: float = 300, extra_path=(), args=()
):
    """Run ``code`` and return the CompletedProcess (no result parsing).

    ``timeout`` only stops a hung snippet: the longest take ~50 s of CPU on
    the 32-bit build, and `make test` runs two suites on two shared cores."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
        path = f.name
    cmd = [micropython_exe()]
    if heapsize:
        cmd += ["-X", "heapsize=" + heapsize]
    cmd += [path, *args]
    env = dict(os.environ, MICROPYPATH=micropypath(extra_path))
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    finally:
        os.unlink(path)


def run(code: str, **kw):
    """Run a snippet and return the last object it passed to ``mpytest.result``."""
    code = (
        "from mpytest import result, assert_no_alloc, bytes_per_call, time_us\n"
        + textwrap.dedent(code)
    )
    proc = run_raw(code, **kw)
    results = [ln[len(_MARK) :] for ln in proc.stdout.split("\n") if ln.startswith(_MARK)]
    if proc.returncode != 0:
        raise MicroPythonError(
            "MicroPython exited with %d\n--- stdout ---\n%s\n--- stderr (MicroPython traceback) ---\n%s"
            % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:])
        )
    if not results:
        raise MicroPythonError("snippet reported no result\n--- stdout ---\n" + proc.stdout[-4000:])
    return json.loads(results[-1])


def call_each(module: str, func: str, inputs: list) -> list:
    """``[module.func(*args) for args in inputs]`` evaluated under MicroPython."""
    code = """
import json
from %s import %s as _f
_out = []
for _a in json.loads(%r):
    try:
        _out.append(_f(*_a))
    except Exception as e:
        _out.append({"error": type(e).__name__ + ": " + str(e)})
result(_out)
""" % (module, func, json.dumps(inputs))
    return run(code)


def close(a, b, rel: float, abs_: float) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, rel, abs_) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, bool) or isinstance(b, bool):
            return a == b
        return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)
    return a == b


def differential(module: str, func: str, inputs: list, *, rel=1e-12, abs_=1e-12):
    """Feed the same inputs to CPython and MicroPython; return both result lists.

    Raises AssertionError naming the first input whose results differ.
    Exceptions compare by type only (``{"error": ...}`` on both sides).
    """
    import importlib

    ensure_cpython_path()
    mod = importlib.import_module(module)
    f = getattr(mod, func)
    cpy = []
    for args in inputs:
        try:
            cpy.append(json.loads(json.dumps(f(*args))))
        except Exception as e:  # noqa: BLE001 - compared against MicroPython's
            cpy.append({"error": type(e).__name__ + ": " + str(e)})
    mpy = call_each(module, func, inputs)
    for args, a, b in zip(inputs, cpy, mpy):
        if not close(a, b, rel, abs_):
            raise AssertionError(
                f"{module}.{func}{tuple(args)}: CPython {a!r} != MicroPython {b!r}"
            )
    return cpy, mpy


def ensure_cpython_path():
    """Make firmware modules importable under CPython (with the test shim)."""
    for p in (str(MPY_LIB), str(CPYTHON_SHIM), str(FIRMWARE), str(SIM)):
        if p not in sys.path:
            sys.path.insert(0, p)
    import time

    # Board-style ticks (32-bit wrap) so firmware that uses time.ticks_* imports.
    if not hasattr(time, "ticks_ms"):
        period, half = 1 << 30, 1 << 29
        time.ticks_ms = lambda: int(time.monotonic() * 1000) & (period - 1)
        time.ticks_us = lambda: int(time.monotonic() * 1_000_000) & (period - 1)
        time.ticks_diff = lambda a, b: ((a - b + half) & (period - 1)) - half
        time.ticks_add = lambda t, d: (t + d) & (period - 1)
        time.sleep_ms = lambda ms: time.sleep(ms / 1000)
