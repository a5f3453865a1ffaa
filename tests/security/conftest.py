"""Security tests: the link test helpers (fakes, rig) on both paths."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
LINK_TESTS = HERE.parent / "link"
MPY_PATH = [HERE, LINK_TESTS]
for _p in MPY_PATH:
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


@pytest.fixture
def run_sec(mpy):
    """``run_sec(snippet)``: mpy.run with tests/security and tests/link on MICROPYPATH."""

    def run(code, **kw):
        return mpy.run(code, extra_path=MPY_PATH, **kw)

    return run


@pytest.fixture
def board(tmp_path, mpy, monkeypatch):
    """A provisioned virtual board (tests/security/sec_sim.py), stopped after the test."""
    from sec_sim import ControllerSim, provision

    s = ControllerSim(tmp_path)
    try:
        provision(s, tmp_path / "keys", monkeypatch)
        yield s
    finally:
        s.stop()
