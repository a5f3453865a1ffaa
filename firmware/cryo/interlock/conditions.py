"""The interlock conditions: one code, priority and latching rule each.

A condition's code is its bit number: the interlock keeps every condition
in one small-int bitmask (16 bits, far below the 2**30 small-int limit of a
32-bit board), so the safety path tests, sets and clears them with integer
operations and never allocates.

Priorities follow IEC 60601-1-8 Table 1: HIGH when
ignoring the alarm risks irreversible injury with immediate onset (over-
freeze, lost sensor, valve fault, e-stop); MEDIUM when the harm is
reversible or the onset prompt (cryogen supply, storage); LOW for operator
actions (footswitch released). Over-freeze, sensor and valve faults latch
(IEC 60601-1-8 6.11.2: latching alarm signals): they need an acknowledgement
with a role and the condition gone before a new treatment. The latched mask
is kept on flash (``cryo.storage.safety_state``), so a reset or a power cut
does not clear it.
"""

from micropython import const

# Codes (bit numbers). Public: the log, the host and the tests use them.
OVERCOOL = const(0)  # tissue below the hard floor
FREEZE_TIME = const(1)  # freeze phase longer than its hard maximum
DOSE = const(2)  # cumulative cold dose above its limit
SENSOR = const(3)  # a required sensor faulted (debounced) or stale
DISAGREE = const(4)  # redundant tissue sensors disagree
NO_COOL = const(5)  # failure to cool: integral above SP+hyst, watch, pre-cool timeout
STUCK_OPEN = const(6)  # temperature keeps falling fast with the valve commanded closed
DEPLETED = const(7)  # cryogen depleted: full duty but plateau, or low supply pressure
PRESSURE = const(8)  # supply pressure outside its window
ESTOP = const(9)  # e-stop pressed or its NC loop broken
RELEASED = const(10)  # footswitch or handpiece released during treatment
OVERRUN = const(11)  # loop overruns or a missed heartbeat
WATCHDOG = const(12)  # hardware watchdog missing or not passing its self-test
CONFIG = const(13)  # invalid configuration, or limit block corrupted in RAM
STORAGE = const(14)  # log storage unavailable or without room for a treatment
FIRMWARE = const(15)  # boot's app selection: fell back to the old slot, or no authentic app
INTERNAL = const(16)  # an exception escaped the control tick (a firmware defect)
EXCESS_FLOW = const(17)  # cryogen delivered beyond what reaching the target could need
COUNT = const(18)

NAMES = (
    "overcool",
    "freeze_time",
    "dose",
    "sensor",
    "disagree",
    "no_cool",
    "stuck_open",
    "depleted",
    "pressure",
    "estop",
    "released",
    "overrun",
    "watchdog",
    "config",
    "storage",
    "firmware",
    "internal",
    "excess_flow",
)

HIGH = const(3)
MEDIUM = const(2)
LOW = const(1)
PRIORITY_NAMES = ("none", "low", "medium", "high")

PRIORITY = (
    HIGH,  # overcool
    HIGH,  # freeze_time
    HIGH,  # dose
    HIGH,  # sensor
    HIGH,  # disagree
    MEDIUM,  # no_cool
    HIGH,  # stuck_open
    MEDIUM,  # depleted
    MEDIUM,  # pressure
    HIGH,  # estop
    LOW,  # released
    HIGH,  # overrun
    HIGH,  # watchdog
    HIGH,  # config
    MEDIUM,  # storage
    HIGH,  # firmware
    HIGH,  # internal
    HIGH,  # excess_flow
)

# Latching conditions stay set after the cause clears, until acknowledged.
LATCHING = (
    (1 << OVERCOOL)
    | (1 << FREEZE_TIME)
    | (1 << DOSE)
    | (1 << SENSOR)
    | (1 << DISAGREE)
    | (1 << NO_COOL)
    | (1 << STUCK_OPEN)
    | (1 << ESTOP)
    | (1 << OVERRUN)
    | (1 << WATCHDOG)
    | (1 << CONFIG)
    | (1 << FIRMWARE)
    | (1 << INTERNAL)
    | (1 << EXCESS_FLOW)
)

# Conditions whose acknowledgement needs the service role: the hardware or
# the configuration must be inspected before the device treats again.
SERVICE_ACK = (
    (1 << STUCK_OPEN)
    | (1 << CONFIG)
    | (1 << WATCHDOG)
    | (1 << OVERRUN)
    | (1 << FIRMWARE)
    | (1 << INTERNAL)
)

# Health checks gating the hardware-watchdog feed (feed only after the
# controller verified its own health, so a wedged loop is reset): the controller's own liveness. (A
# corrupted limit block also withholds the feed: Interlock.healthy.) Faults
# of the outside world — a probe unplugged, a bad stored configuration —
# are handled by the interlock with the valves closed; resetting the board
# for them would only loop, and lock out the service engineer.
HEALTH = (1 << OVERRUN) | (1 << WATCHDOG)

ALL = (1 << COUNT) - 1


def names(mask):
    """Condition names set in ``mask`` (control path: allocates a list)."""
    out = []
    i = 0
    while i < COUNT:
        if mask & (1 << i):
            out.append(NAMES[i])
        i += 1
    return out


def highest_priority(mask):
    """Highest priority among the conditions in ``mask`` (0 if none)."""
    best = 0
    i = 0
    while i < COUNT:
        if mask & (1 << i) and PRIORITY[i] > best:
            best = PRIORITY[i]
        i += 1
    return best


def code_of(name):
    """Code for a condition name; ValueError naming the allowed names."""
    i = 0
    while i < COUNT:
        if NAMES[i] == name:
            return i
        i += 1
    raise ValueError("unknown interlock condition %r; allowed: %s" % (name, ", ".join(NAMES)))
