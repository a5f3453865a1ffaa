"""The micropython-lib packages the firmware uses, outside the frozen images.

The board images freeze them with ``require()`` in ``boards/<name>/manifest.py``
(MicroPython's manifest tool takes them from the pinned source's
``lib/micropython-lib``). Everything that runs the firmware from files —
the unix-port virtual board, the tests, ``make demo``, the app slots
``cryo flash`` writes — finds the same modules in ``build/mpylib/``, copied
there from that pinned tree by ``make`` (``python -m host_tools.mpylib``).
On the host, CPython's own modules of the same name serve (same API).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from host_tools import ROOT
from host_tools.errors import CryoError

# package -> its folder in micropython-lib (the manifests' require() names)
REQUIRES = {"hmac": "python-stdlib/hmac"}
SOURCE = ROOT / "build" / "micropython" / "lib" / "micropython-lib"
MPYLIB_DIR = ROOT / "build" / "mpylib"


def modules() -> dict[str, Path]:
    """``{file name: path}`` of every module the firmware needs from micropython-lib."""
    out = {}
    for pkg in REQUIRES:
        path = MPYLIB_DIR / (pkg + ".py")
        if not path.exists():
            raise CryoError(
                f"micropython-lib module {pkg} missing in {MPYLIB_DIR}: run `make venv` "
                "(it copies the pinned micropython-lib packages the firmware requires)"
            )
        out[path.name] = path
    return out


def install(source: Path = SOURCE, dest: Path = MPYLIB_DIR) -> list[Path]:
    """Copy each required package's modules from the pinned micropython-lib."""
    dest.mkdir(parents=True, exist_ok=True)
    done = []
    for pkg, folder in REQUIRES.items():
        src = source / folder / (pkg + ".py")
        if not src.exists():
            raise SystemExit(
                f"mpylib: {src} not found (is the pinned MicroPython source unpacked?)"
            )
        shutil.copy(src, dest / src.name)
        done.append(dest / src.name)
    return done


if __name__ == "__main__":
    for p in install(Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE):
        print("mpylib:", p.relative_to(ROOT))
