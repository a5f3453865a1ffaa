"""MAX31856 configuration: the driver's settings checked against what the
chip allows and encoded as its configuration registers, CR0..CJTO, plus the
one-shot conversion time those settings imply (MAX31856 data sheet, DS56).

The image is written in one multibyte transfer at start-up and compared
with a read-back every few conversions (``cryo.sensing.max31856``), so it is
built once here, as bytes, and the driver's conversion path never encodes
anything. A setting the chip would take but the device must not run with -
open-circuit detection off - is refused like an impossible one.
"""

from micropython import const

# Configuration registers (read address; write = address | 0x80).
_REG_CR0 = const(0x00)
_REG_CR1 = const(0x01)
_REG_MASK = const(0x02)
_REG_CJHF = const(0x03)
_REG_CJLF = const(0x04)
_REG_LTHFTH = const(0x05)
_REG_LTHFTL = const(0x06)
_REG_LTLFTH = const(0x07)
_REG_LTLFTL = const(0x08)
_REG_CJTO = const(0x09)
_WRITE = const(0x80)
_N_CFG = const(10)  # CR0..CJTO

# CR0 bits
_CR0_OCFAULT_SHIFT = const(4)
_CR0_FAULT = const(0x04)  # 1 = interrupt (latched) mode
_CR0_50HZ = const(0x01)

# CR1 thermocouple type codes (DS56 p.20).
TC_TYPES = {"B": 0, "E": 1, "J": 2, "K": 3, "N": 4, "R": 5, "S": 6, "T": 7}
# CR1 AVGSEL codes.
AVERAGING = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4}
# Type ranges of the LUT (Table 1), °C: below/above -> TC Range, clamped.
TC_RANGE_C = {"K": (-200.0, 1372.0), "T": (-200.0, 400.0)}

# One-shot conversion time (DS56): 143/169 ms typ, 155/185 ms max at 60/50 Hz,
# + (samples-1) x 33.33/40 ms, + open-circuit test (Table 4, CJ sensor on).
CONV_TYP_MS = {60: 143, 50: 169}
CONV_MAX_MS = {60: 155, 50: 185}
AVG_EXTRA_TYP_MS = {60: 33, 50: 40}
AVG_EXTRA_MAX_MS = {60: 34, 50: 40}
OC_TEST_TYP_MS = (0, 13, 33, 113)
OC_TEST_MAX_MS = (0, 15, 37, 125)


def _check(v, name, lo, hi):
    if not (lo <= v <= hi):
        raise ValueError("%s %r out of range: allowed %g to %g" % (name, v, lo, hi))


def register_image(
    *,
    tc_type,
    averaging,
    mains_hz,
    oc_mode,
    latched,
    tc_low_c,
    tc_high_c,
    cj_low_c,
    cj_high_c,
    cj_offset_c,
    fault_mask,
):
    """The write of CR0..CJTO as one transfer: the address byte, then the
    ten registers (normally-off mode). The parameters are the driver's
    (``MAX31856``), by name only: several are interchangeable numbers.
    ValueError names the one refused and what is allowed."""
    if tc_type not in TC_RANGE_C:
        raise ValueError("unknown thermocouple type %r: allowed 'K' or 'T'" % (tc_type,))
    if averaging not in AVERAGING:
        raise ValueError("averaging %r not allowed: use 1, 2, 4, 8 or 16" % (averaging,))
    if mains_hz not in (50, 60):
        raise ValueError("mains_hz %r not allowed: use 50 or 60" % (mains_hz,))
    if oc_mode not in (1, 2, 3):
        raise ValueError(
            "oc_mode %r not allowed: use 1, 2 or 3 (open-circuit detection "
            "must stay enabled)" % (oc_mode,)
        )
    _check(tc_low_c, "tc_low_c", -2048.0, 2047.9375)
    _check(tc_high_c, "tc_high_c", -2048.0, 2047.9375)
    _check(cj_low_c, "cj_low_c", -128, 127)
    _check(cj_high_c, "cj_high_c", -128, 127)
    _check(cj_offset_c, "cj_offset_c", -8.0, 7.9375)
    _check(fault_mask, "fault_mask", 0, 0xFF)
    cr0 = oc_mode << _CR0_OCFAULT_SHIFT
    if latched:
        cr0 |= _CR0_FAULT
    if mains_hz == 50:
        cr0 |= _CR0_50HZ
    tch = int(round(tc_high_c * 16)) & 0xFFFF
    tcl = int(round(tc_low_c * 16)) & 0xFFFF
    cfg = bytearray(1 + _N_CFG)
    cfg[0] = _WRITE | _REG_CR0
    cfg[1 + _REG_CR0] = cr0
    cfg[1 + _REG_CR1] = (AVERAGING[averaging] << 4) | TC_TYPES[tc_type]
    cfg[1 + _REG_MASK] = fault_mask
    cfg[1 + _REG_CJHF] = int(cj_high_c) & 0xFF
    cfg[1 + _REG_CJLF] = int(cj_low_c) & 0xFF
    cfg[1 + _REG_LTHFTH] = tch >> 8
    cfg[1 + _REG_LTHFTL] = tch & 0xFF
    cfg[1 + _REG_LTLFTH] = tcl >> 8
    cfg[1 + _REG_LTLFTL] = tcl & 0xFF
    cfg[1 + _REG_CJTO] = int(round(cj_offset_c * 16)) & 0xFF
    return cfg


def conversion_ms(mains_hz, averaging, oc_mode):
    """Typical and maximum one-shot conversion time, ms, for checked settings."""
    typ = CONV_TYP_MS[mains_hz] + (averaging - 1) * AVG_EXTRA_TYP_MS[mains_hz]
    top = CONV_MAX_MS[mains_hz] + (averaging - 1) * AVG_EXTRA_MAX_MS[mains_hz]
    return typ + OC_TEST_TYP_MS[oc_mode], top + OC_TEST_MAX_MS[oc_mode]
