import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def pytest_sessionfinish(session, exitstatus):
    """Remove the folders this process's core rigs created in TMPDIR (named
    cryo_core_<tag>_<pid>_<n> by core_rig._tmpdir); another pytest session
    running beside this one keeps its own."""
    import glob
    import os
    import shutil

    base = os.environ.get("TMPDIR") or "/tmp"
    for path in glob.glob(os.path.join(base, "cryo_core_*_%d_*" % os.getpid())):
        shutil.rmtree(path, ignore_errors=True)
