"""Link tests: put this folder (fakes, fuzz generator, rig loop) on both paths."""

import sys
from pathlib import Path

import pytest

LINK_TESTS = Path(__file__).resolve().parent
if str(LINK_TESTS) not in sys.path:
    sys.path.insert(0, str(LINK_TESTS))


@pytest.fixture
def run_link(mpy):
    """``run_link(snippet)``: mpy.run with tests/link on MICROPYPATH."""

    def run(code, **kw):
        return mpy.run(code, extra_path=[LINK_TESTS], **kw)

    return run
