"""The interlock's limit block: one list of small ints, a slot each.

``cryo.interlock.limits.build`` fills it from the parameters in °C, s and
kPa (raw sensor codes, ms, counts); ``Interlock.load_limits`` installs it
with a checksum (a corrupted slot in RAM trips CONFIG). A list indexed by
these constants, not attributes, so the whole block is checked in one loop
and the safety path reads a slot without a dictionary lookup.

Channels (the first constants): 0 = tissue (required), 1 = redundant tissue
("tissue2", required when fitted), 2 = aux (line/nozzle), 3 = the
independent skin probe ("tissue3", required when fitted: its own connector
and cold junction, so a cause shared by the pair does not reach it). A
lower raw code is a colder temperature on every supported converter.
"""

from micropython import const

TISSUE = const(0)
TISSUE2 = const(1)
AUX = const(2)
TISSUE3 = const(3)
NCH = const(4)

# Limit block indices (all ints; see limits.py for units and conversion).
# A tissue channel's agreement slots are consecutive: M, B, limit
# (cryo.interlock.sensors reads them so).
L_FLOOR0 = const(0)  # hard floor, raw code, channel 0
L_FLOOR1 = const(1)  # hard floor, raw code, channel 1
L_DOSE_THR = const(2)  # dose threshold, raw code, channel 0
L_DOSE_MAX = const(3)  # dose limit, (code >> L_Q) * ms
L_SP = const(4)  # active setpoint, raw code, channel 0
L_HYST = const(5)  # failure-to-cool band above setpoint, codes
L_NOCOOL_MAX = const(6)  # failure-to-cool integral limit, (code >> L_Q) * ms
L_WATCH_DROP = const(7)  # watch: drop required, codes
L_WATCH_MS = const(8)  # watch: within this time, ms
L_PRECOOL_MS = const(9)  # pre-cool timeout, ms
L_FREEZE_MAX_MS = const(10)  # hard maximum of the hold at target in one FREEZE, ms
L_DIS_M = const(11)  # channel-1 code ≈ B + (M * code0 >> L_DIS_SHIFT)
L_DIS_B = const(12)
L_DIS_MAX = const(13)  # disagreement limit, codes of channel 1
L_STUCK_DROP = const(14)  # stuck open: tissue drop over the window, codes
L_STUCK_MS = const(15)  # stuck open: window, ms
L_STUCK_GRACE_MS = const(16)  # stuck open: after closing, ignore this long (dead time + lag)
L_DEPL_DROP = const(17)  # depletion: minimum drop at full duty over the window, codes
L_DEPL_MS = const(18)  # depletion window, ms
L_P_MIN = const(19)  # supply pressure window, raw ADC
L_P_MAX = const(20)
L_P_LOW = const(21)  # below this while cooling: depleted, raw ADC
L_STALE_MS = const(22)  # no good sample for this long: stale
L_DEBOUNCE = const(23)  # consecutive bad samples / out-of-range readings to trip
L_HEARTBEAT_MS = const(24)  # gap between evaluations that counts as a missed heartbeat
L_OVERRUNS = const(25)  # consecutive overruns that trip
L_DUTY_FULL = const(26)  # demand (per mille) counted as "full duty"
L_FOOT_PRESSED = const(27)  # pin level of a pressed footswitch
L_DIS_SHIFT = const(28)  # fixed-point shift of L_DIS_M (chosen so the product stays a small int)
L_Q = const(29)  # channel-0 codes are shifted right by this before integrating (~4 codes/°C)
L_APPROACH_MS = const(30)  # hard maximum of a whole FREEZE phase (approach + hold), ms
L_ZONE_HI = const(31)  # latent-heat zone (raw code, channel 0): a plateau here is
L_ZONE_LO = const(32)  # the phase change, not depletion
L_DEPL_AUX = const(33)  # line (aux, raw code) warmer than this at full duty: no liquid
L_HAND_HELD = const(34)  # pin level of a handpiece in use
L_ESTOP_OK = const(35)  # pin level of a closed (not pressed, not broken) e-stop loop
L_TUNE_MS = const(36)  # hard maximum of a TUNE phase (autotune / step test), ms
L_AUX_DROP = const(37)  # stuck open: line (aux) fall over the window, aux codes
L_AUX_RISE = const(38)  # stuck open: a cold line must warm this much per window, aux codes
L_FLOW_MAX_MS = const(39)  # valve-open time allowed before the target is reached, ms
L_NEED_WDT = const(40)  # 1: no permit until the hardware watchdog is armed
L_LEAD_MS = const(41)  # floor anticipation: dead time of the line + probe lag, ms
L_FLOOR3 = const(42)  # hard floor, raw code, channel 3
L_DIS3_M = const(43)  # channel-3 code ≈ B + (M * code0 >> L_DIS3_SHIFT)
L_DIS3_B = const(44)
L_DIS3_MAX = const(45)  # disagreement limit, codes of channel 3
L_DIS3_SHIFT = const(46)
NL = const(47)


_MASK24 = const(0xFFFFFF)


def checksum(lim):
    """24-bit checksum of a limit block (integer-only, allocation-free)."""
    s = 0
    i = 0
    while i < NL:
        s = ((s << 1) ^ (s >> 23) ^ (lim[i] & _MASK24)) & _MASK24
        i += 1
    return s
