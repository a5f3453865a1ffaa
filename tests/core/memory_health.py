"""A safety memory whose flash writes fail (cryo.core.memory): runs
unchanged under CPython and MicroPython (test_memory_health.py)."""

import os

import core_scenarios as SC
from core_rig import Rig, _tmpdir

from cryo.interlock import conditions as C


def failing_then_repaired():
    persist = _tmpdir("memfail")
    os.mkdir(persist + "/safety.bin")  # a directory where the file belongs: every save fails
    rig = Rig(seed=5, config=SC.FAST, plant=SC.FAST_PLANT, persist=persist)
    rig.step(15)  # past the once-a-second storage check
    ctl = rig.ctl
    out = {
        "healthy": ctl.memory.healthy(),
        "blocking": C.names(ctl.il.blocking()),
        "failures": ctl.memory.write_failures,
    }
    try:
        ctl.start()
        out["start"] = "started"
    except Exception as e:  # noqa: BLE001 - the refusal's text is the result
        out["start"] = str(e)
    rig.step(30)  # retried once a second, never every tick
    out["failures_3s"] = ctl.memory.write_failures
    os.rmdir(persist + "/safety.bin")  # the flash works again
    rig.step(25)
    out["healthy_after"] = ctl.memory.healthy()
    out["blocking_after"] = C.names(ctl.il.blocking())
    out["saved"] = ctl.memory._state.load()["boots"]
    return out
