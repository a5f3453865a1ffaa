"""The log's budget (``log.max_kib``) is cut at boot to the flash the board
has, less a reserve for the firmware's other files, and says so; a
treatment the cut log can never hold is refused with the figures and what
to change, one that fits starts. Whole firmware in fast virtual time on a
256 KiB flash image."""

import pytest

from host_tools import sim

pytestmark = [pytest.mark.sim, pytest.mark.mpy]

_CUT = "log budget 1024 KiB (log.max_kib) cut to 174 KiB: the flash holds 256 KiB, 64 KiB kept for the other files"
# one cycle, the whole-FREEZE limit at 90 s: 20 + 90 + 30 + 600 + 60 = 800 s of log
_SHORT = {"protocol.cycles": 1, "limits.approach_max_s": 90.0}


def _run(tmp_path, config):
    return sim.run_fast(
        scenario="treatment",
        duration_s=30,
        flash=tmp_path / "flash.img",
        flash_kib=256,
        config=config,
    )


def test_a_treatment_the_small_flash_cannot_log_is_refused_with_the_figures(tmp_path):
    s = _run(tmp_path, None)
    assert s["errors"] == []
    assert s["status"]["log_budget"] == _CUT
    assert s["status"]["phase"] == "IDLE" and "storage" in s["status"]["faults"]
    notes = [n[2] for n in s["notes"] if n[1] == "storage"]
    assert notes == [
        _CUT,
        "log cannot hold a 2540 s treatment on this flash: 408396 bytes needed, at most "
        "174427 fit in the log's budget: shorten the protocol (cycles, freeze and thaw "
        "limits) or use a board with more flash",
    ]
    assert [n[2] for n in s["notes"] if n[1] == "begin"] == ["refused: cannot start: storage"]


def test_a_treatment_that_fits_the_cut_budget_starts(tmp_path):
    s = _run(tmp_path, _SHORT)
    assert s["errors"] == [] and s["status"]["log_budget"] == _CUT
    assert s["status"]["faults"] == [] and s["status"]["phase"] == "FREEZE"


def test_a_flash_that_holds_the_budget_leaves_it_alone(tmp_path):
    s = sim.run_fast(scenario="treatment", duration_s=5, flash=tmp_path / "f.img", flash_kib=2048)
    assert s["status"]["log_budget"] is None
    assert not [n for n in s["notes"] if n[1] == "storage"]
