"""A log without room for the configured treatment blocks it (STORAGE) and
says why once, with the figures, when the answer changes - not every second."""

import core_scenarios as SC
from core_rig import MemLog, Rig

from cryo.interlock import conditions as C


def test_no_room_is_explained_once_and_blocks_start():
    log = MemLog()
    rig = Rig(seed=3, config=SC.FAST, plant=SC.FAST_PLANT, log=log)
    rig.step(15)
    assert "storage" not in C.names(rig.ctl.il.blocking())
    log.room = False
    rig.step(35)  # three room checks
    notes = [e[2] for e in rig.ctl.journal.events if e[1] == "storage"]
    assert len(notes) == 1
    assert notes[0].startswith("log has no room for a ") and notes[0].endswith("pull the logs")
    assert "bytes free" in notes[0]
    assert "storage" in C.names(rig.ctl.il.blocking())
    log.room = True
    rig.step(15)
    assert "storage" not in C.names(rig.ctl.il.blocking())
    log.room = False
    rig.step(15)
    assert len([e for e in rig.ctl.journal.events if e[1] == "storage"]) == 2
