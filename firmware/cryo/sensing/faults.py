"""Fault bits shared by the thermocouple drivers (``driver.faults``).

0 means the last reading is valid. Any other value means the raw codes of
that reading must not be used. Bits are small ints so the safety path can
test them with the heap locked.
"""

FAULT_OC = 0x0001  # open thermocouple (MAX31855 OC, MAX31856 OPEN, or code 0x1FFF)
FAULT_SCG = 0x0002  # MAX31855: thermocouple shorted to GND
FAULT_SCV = 0x0004  # MAX31855: thermocouple shorted to VCC
FAULT_BUS = 0x0008  # all-zero / all-one frame, reserved bit set, inconsistent flags
FAULT_D16 = 0x0010  # MAX31855 FAULT summary bit (D16)
FAULT_OVUV = 0x0020  # MAX31856: input below GND / above VDD (conversions suspended)
FAULT_TC_RANGE = 0x0040  # MAX31856: hot junction outside the type's range (value clamped)
FAULT_CJ_RANGE = 0x0080  # MAX31856: cold junction outside -55..125 °C
FAULT_TC_HIGH = 0x0100  # MAX31856: above LTHFT threshold
FAULT_TC_LOW = 0x0200  # MAX31856: below LTLFT threshold
FAULT_CJ_HIGH = 0x0400  # MAX31856: cold junction above CJHF
FAULT_CJ_LOW = 0x0800  # MAX31856: cold junction below CJLF
FAULT_TIMEOUT = 0x1000  # MAX31856: one-shot conversion never completed
FAULT_CONFIG = 0x2000  # MAX31856: configuration read back differs (chip reset?)
FAULT_NO_DATA = 0x4000  # nothing read yet
# Set by supervision (cryo.supervision.channel), not by a chip: the chip's
# reading is valid but implausible (range, rate, stuck frame, cold junction).
FAULT_IMPLAUSIBLE = 0x8000

# (bit, short name) in bit order, for logs and the host (not used on the safety path).
NAMES = (
    (FAULT_OC, "open"),
    (FAULT_SCG, "short-gnd"),
    (FAULT_SCV, "short-vcc"),
    (FAULT_BUS, "bus"),
    (FAULT_D16, "fault-bit"),
    (FAULT_OVUV, "ovuv"),
    (FAULT_TC_RANGE, "tc-range"),
    (FAULT_CJ_RANGE, "cj-range"),
    (FAULT_TC_HIGH, "tc-high"),
    (FAULT_TC_LOW, "tc-low"),
    (FAULT_CJ_HIGH, "cj-high"),
    (FAULT_CJ_LOW, "cj-low"),
    (FAULT_TIMEOUT, "timeout"),
    (FAULT_CONFIG, "config"),
    (FAULT_NO_DATA, "no-data"),
    (FAULT_IMPLAUSIBLE, "implausible"),
)


def describe(faults):
    """'open,fault-bit' style text for a fault mask (allocates; not for the safety path)."""
    out = []
    for bit, name in NAMES:
        if faults & bit:
            out.append(name)
    return ",".join(out) if out else "ok"
