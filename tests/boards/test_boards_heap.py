"""A full simulated treatment fits a constrained heap.

``micropython -X heapsize=HEAP_BUDGET`` runs the firmware (board layer,
drivers, interlock, protocol, PID, valves, alarms, treatment log) through a
complete two-cycle treatment on the virtual board, with the controller's
planned ``gc.collect()`` idle point after each tick. The budget is the
smallest heap that passed (bisected by bench/bench_boards.py) plus ~25 %.
"""

import boardcheck

PHASES = ["IDLE", "PRECOOL", "FREEZE", "THAW", "DONE"]


def test_full_treatment_completes_within_the_heap_budget(mpy):
    ok, res = boardcheck.run_treatment(boardcheck.HEAP_BUDGET)
    assert ok, "treatment failed with -X heapsize=%d:\n%s" % (boardcheck.HEAP_BUDGET, res)
    assert res["phases"] == PHASES
    assert res["wrapped"], "the virtual clock should cross the 2**30 tick wrap"
    assert res["valve_cycles"] > 0 and res["log"]
    assert res["heap_total"] <= boardcheck.HEAP_BUDGET
    firmware = res["live_peak"] - res["sim_base"]
    assert 0 < firmware < res["heap_total"]


def test_heap_limit_is_real(mpy):
    """Well below the measured minimum the same run dies of MemoryError, so
    the budget above is a statement about the firmware, not a formality."""
    ok, err = boardcheck.run_treatment(int(boardcheck.HEAP_MIN_MEASURED * 0.6))
    assert not ok
    assert "MemoryError" in err
