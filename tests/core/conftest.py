import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def pytest_sessionfinish(session, exitstatus):
    """Remove the treatment-log folders the core rigs created in TMPDIR."""
    import glob
    import os
    import shutil

    base = os.environ.get("TMPDIR") or "/tmp"
    for path in glob.glob(os.path.join(base, "cryo_core_*")):
        shutil.rmtree(path, ignore_errors=True)
