"""Link tests: put this folder (fakes, fuzz generator, rig loop) on both paths."""

import json
import sys
from pathlib import Path

import pytest

LINK_TESTS = Path(__file__).resolve().parent
# link_rigs builds on the core tests' virtual device (tests/core/core_rig.py)
MPY_PATH = [LINK_TESTS, LINK_TESTS.parent / "core"]
for _p in MPY_PATH:
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


@pytest.fixture
def run_link(mpy):
    """``run_link(snippet)``: mpy.run with tests/link (and tests/core) on MICROPYPATH."""

    def run(code, **kw):
        return mpy.run(code, extra_path=MPY_PATH, **kw)

    return run


@pytest.fixture
def cli_json(capsys):
    """``cli_json(argv)``: run the `cryo` command in-process (as a user's
    shell would, ``--json``); returns (exit code, the JSON lines it printed,
    what it wrote to stderr)."""
    from host_tools import cli

    def run(argv):
        rc = cli.main(argv)
        cap = capsys.readouterr()
        lines = [json.loads(ln) for ln in cap.out.splitlines() if ln.startswith("{")]
        return rc, lines, cap.err

    return run
