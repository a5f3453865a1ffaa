"""Fixtures that start the real `cryo sim` (a subprocess, as users run it).

Every board is stopped in teardown (SIGTERM, then SIGKILL); the test then
checks no interpreter is left behind.
"""

import time

import pytest
from sim_harness import FIRMWARE, SimProcess, alive


@pytest.fixture
def test_rom(tmp_path):
    """Firmware tree for the board: the real cryo package and boot.py, a
    main.py that only marks that it ran (so tests do not depend on the
    application's main loop)."""
    rom = tmp_path / "rom"
    rom.mkdir()
    (rom / "cryo").symlink_to(FIRMWARE / "cryo")
    (rom / "boot.py").symlink_to(FIRMWARE / "boot.py")
    (rom / "main.py").write_text("MAIN_RAN = True\n")
    return rom


@pytest.fixture
def sim(tmp_path, test_rom):
    """A running `cryo sim` on a fresh flash image (2 MiB, the default)."""
    boards = []

    def start(*extra, rom=test_rom):
        b = SimProcess(tmp_path, *extra, rom=rom)
        boards.append(b)
        return b

    yield start
    for b in boards:
        rc = b.stop()
        assert rc == 0, "cryo sim exit code %r; stderr:\n%s" % (rc, b.stderr())
        time.sleep(0.05)
        for pid in b.children:
            assert not alive(pid), "interpreter %d left running" % pid
