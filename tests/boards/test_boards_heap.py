"""A full simulated treatment fits a constrained heap.

``micropython -X heapsize=HEAP_BUDGET`` runs the fast-mode runner, boards/sim/fastrun.py (what
``cryo sim run`` runs: the firmware's Controller with littlefs flash, audit
trail and command channel on the virtual board) through the ``treatment``
scenario: a complete default two-cycle treatment, across the 2**30 tick
wrap, until the firmware ends it (DONE, or a clinical stop). The budget is the smallest heap that passed (bisected by
bench/bench_boards.py) plus ~30 %.
"""

import boardcheck


def test_full_treatment_completes_within_the_heap_budget(mpy):
    ok, res = boardcheck.run_fastrun(boardcheck.HEAP_BUDGET)
    assert ok, "treatment failed with -X heapsize=%d:\n%s" % (boardcheck.HEAP_BUDGET, res)
    # The firmware ended the treatment itself (DONE today; a clinical stop
    # such as `disagree` also counts: the heap held through it).
    assert res["status"]["phase"] in boardcheck.END_PHASES
    assert res["valve_cycles"] > 0 and res["scenario_done"]
    # It started 60 s before the 2**30 wrap and ran ~11 virtual minutes.
    assert res["ticks"] * res["period_ms"] > 60_000


def test_heap_limit_is_real(mpy):
    """Well below the measured minimum the same run dies of MemoryError, so
    the budget above is a statement about the firmware, not a formality."""
    ok, err = boardcheck.run_fastrun(int(boardcheck.HEAP_MIN_MEASURED * 0.6))
    assert not ok
    assert "MemoryError" in str(err)
