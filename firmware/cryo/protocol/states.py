"""Treatment phases (small ints: the safety path compares them).

IDLE → SELF_TEST → READY → PRECOOL → FREEZE → THAW → (FREEZE … THAW) → DONE;
ABORTED (stopped without a latched fault) or FAULT (a latched fault) from any
state. TUNE is the engineer's autotune or step test. Number 9 is unused
(earlier firmware reserved it; the logs keep the numbers stable).
"""

from micropython import const

IDLE = const(0)
SELF_TEST = const(1)
READY = const(2)
PRECOOL = const(3)
FREEZE = const(4)
THAW = const(5)
DONE = const(6)
ABORTED = const(7)
FAULT = const(8)
TUNE = const(10)  # autotune or open-loop step test (engineer role; hold-to-run)

NAMES = (
    "IDLE",
    "SELF_TEST",
    "READY",
    "PRECOOL",
    "FREEZE",
    "THAW",
    "DONE",
    "ABORTED",
    "FAULT",
    "?9",
    "TUNE",
)

# Phases of a running treatment (the master valve may be open).
TREATING = (1 << PRECOOL) | (1 << FREEZE) | (1 << THAW) | (1 << TUNE)
# Phases in which the cryogen valve may open at all.
COOLING = (1 << PRECOOL) | (1 << FREEZE) | (1 << TUNE)
# States from which a new treatment may be started.
STARTABLE = (1 << IDLE) | (1 << DONE) | (1 << ABORTED)


def name(phase):
    if 0 <= phase < len(NAMES):
        return NAMES[phase]
    return "?%d" % phase
