"""Latches that cannot be kept across a reset block a treatment: a failing
safety-state save raises STORAGE, is retried once a second (the slot choice
makes a retry safe) and clears when a save holds. CPython and MicroPython."""

import memory_health as M


def _check(r):
    assert r["healthy"] is False and "storage" in r["blocking"]
    assert r["start"].startswith("cannot start") and "storage" in r["start"]
    assert r["failures"] >= 1
    assert 2 <= r["failures_3s"] - r["failures"] <= 4  # ~once a second
    assert r["healthy_after"] is True and "storage" not in r["blocking_after"]
    assert r["saved"] == 1  # the boot's record reached the flash at last


def test_failing_safety_memory_blocks_treatment_until_a_save_holds():
    _check(M.failing_then_repaired())


def test_failing_safety_memory_on_micropython(mpy):
    r = mpy.run(
        """
import sys
sys.path.append(%r)
import memory_health as M
result(M.failing_then_repaired())
"""
        % M.__file__.rsplit("/", 1)[0]
    )
    _check(r)
