"""Control tests: make tests/control/ctl_lib importable (CPython and MicroPython)."""

import sys
from pathlib import Path

CTL_LIB = Path(__file__).resolve().parent / "ctl_lib"
if str(CTL_LIB) not in sys.path:
    sys.path.insert(0, str(CTL_LIB))
