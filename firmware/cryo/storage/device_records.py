"""Binary layouts of the device's own state, beside the treatment log: the
safety state (``cryo.storage.safety_state``) and the device event log
(``cryo.storage.events``). The one definition, imported by the firmware
and by the host tools (``cryo logs pull`` copies and reads both files).
Integers little-endian; every record carries a CRC-32 (IEEE 802.3) over
its other bytes (``cryo.crc.crc32``).
"""

import struct

from cryo.crc import crc32, crc32_into

# Their files: cryo.paths.SAFETY_STATE_PATH and DEVICE_EVENTS_PATH, from the
# flash root (the host's commands run with it as the current directory).

# -- safety state (cryo.storage.safety_state) --------------------------------
# One 28-byte record per slot, two slots (A at offset 0, B at 28) in one
# file. ``version`` is the layout version (SAFETY_STATE_VERSION); ``crc`` is
# the CRC-32 of bytes 0..23. Zeroed (0x00) or erased (0xFF) bytes never pass
# the CRC. Layout 1 (24 bytes, no ``valve_cycles``) is still read, so a
# firmware update keeps the latches; the next save rewrites the file.
SAFETY_STATE_FMT = "<IiHIBBIII"
SAFETY_STATE_FIELDS = (
    "latched",  # u32 bitmask of latched interlock conditions (bit = condition code)
    "site_dose",  # i32 cumulative cold dose of the current site, interlock units
    "flags",  # u16 FLAG_*
    "boots",  # u32 boot counter
    "last_reset",  # u8 RESET_* code of the last reset cause
    "version",  # u8 SAFETY_STATE_VERSION (same offset, 15, in every layout)
    "valve_cycles",  # u32 lifetime solenoid cycles (closed->open), saturating
    "seq",  # u32 save counter: the valid slot with the higher one wins
    "crc",  # u32 CRC-32 of bytes 0..23
)
SAFETY_STATE_SIZE = 28
SAFETY_STATE_SLOTS = 2
SAFETY_STATE_VERSION = 2
SAFETY_STATE_V1_FMT = "<IiHIBBII"  # layout 1: no valve_cycles
SAFETY_STATE_V1_SIZE = 24

FLAG_TREATING = 1  # bit 0: a valve-capable phase was active when written
FLAG_SITE_FROZEN = 2  # bit 1: the site has not been confirmed thawed
FLAG_NAMES = {FLAG_TREATING: "treating", FLAG_SITE_FROZEN: "site_frozen"}

# Reset causes: our own numbering. machine.PWRON_RESET & co. differ between
# ports: the board layer names the port's value (cryo.board.reset_cause_name)
# and cryo.core.memory records the name's index in RESET_NAMES.
RESET_UNKNOWN = 0
RESET_POWER = 1
RESET_HARD = 2
RESET_WDT = 3
RESET_SOFT = 4
RESET_DEEPSLEEP = 5
RESET_NAMES = ("unknown", "power", "hard", "wdt", "soft", "deepsleep")

# -- device event log (cryo.storage.events) ----------------------------------
# A ring of fixed 24-byte records in one preallocated file; record ``seq``
# lives in slot ``seq % capacity``. Unused slots are 0xFF.
#
#     0..3   u32  seq (from 1, +1 per record, across reboots)
#     4..7   u32  rtc_s: seconds since 2000-01-01 UTC (0 = no RTC time)
#     8..11  u32  t_ms: board ticks (ms) when appended
#     12     u8   kind (DEV_*)
#     13     u8   code (meaning per kind, below)
#     14..15 u16  layout version (DEV_EVENT_VERSION)
#     16..19 i32  arg (meaning per kind; 32-bit values such as a mask or a
#                 hash are stored modulo 2**32 and read back signed)
#     20..23 u32  CRC-32 of bytes 0..19
DEV_EVENT_FMT = "<IIIBBHiI"
DEV_EVENT_FIELDS = ("seq", "rtc_s", "t_ms", "kind", "code", "version", "arg", "crc")
DEV_EVENT_SIZE = 24
DEV_EVENT_VERSION = 1

DEV_BOOT = 1  # code: RESET_* cause, arg: boot count
DEV_FAULT = 2  # code: interlock condition bit, arg: treatment phase (cryo.protocol.states)
DEV_ACK = 3  # code: interlock condition bit, arg: role level 1..3 (schema.ROLE_*)
DEV_RESTORED = 4  # arg: latched mask restored from the safety state at boot
DEV_INTERNAL = 5  # code: 0, arg: 32-bit hash or small id of the exception type
DEV_STATE_LOST = 6  # safety state unreadable at boot (code 0, arg 0)
DEV_WDT_IN_TREATMENT = 7  # watchdog reset while a valve-capable phase was active; arg: saved flags
DEV_SITE = 8  # arg: SITE_NEW (new site, dose cleared)
DEV_REFUSED = 9  # code: REFUSED_* reason, arg: tissue temperature, 0.01 degC
DEV_KIND_NAMES = {
    DEV_BOOT: "boot",
    DEV_FAULT: "fault",
    DEV_ACK: "ack",
    DEV_RESTORED: "restored",
    DEV_INTERNAL: "internal",
    DEV_STATE_LOST: "state_lost",
    DEV_WDT_IN_TREATMENT: "wdt_in_treatment",
    DEV_SITE: "site",
    DEV_REFUSED: "refused",
}
SITE_NEW = 1
REFUSED_NOT_THAWED = 1
REFUSED_NAMES = {REFUSED_NOT_THAWED: "tissue not thawed"}


def _slot_problem(data, off, size):
    # "short", "erased" (all 0xFF: never written), "crc" (torn or corrupt)
    # or None when the CRC-32 stored in the last 4 bytes matches.
    if len(data) - off < size:
        return "short"
    (stored,) = struct.unpack_from("<I", data, off + size - 4)
    if crc32(memoryview(data)[off : off + size - 4]) == stored:
        return None
    i = off
    while i < off + size and data[i] == 0xFF:
        i += 1
    return "erased" if i == off + size else "crc"


def safety_slot_problem(data, off, version=SAFETY_STATE_VERSION):
    """Why the safety-state slot at ``data[off]`` is not valid, or None if it is.

    ``version``: the layout expected (2, or 1 in a file written before
    ``valve_cycles``). The answer names what was found: ``"short"``,
    ``"erased"`` (all 0xFF: never written), ``"crc"`` (torn or corrupt),
    ``"version N"`` (a layout this firmware does not read).
    """
    size = SAFETY_STATE_SIZE if version == SAFETY_STATE_VERSION else SAFETY_STATE_V1_SIZE
    why = _slot_problem(data, off, size)
    if why is None and data[off + 15] != version:
        return "version %d" % data[off + 15]
    return why


def encode_safety_state(buf, off, latched, site_dose, flags, boots, last_reset, valve_cycles, seq):
    """Pack one safety-state slot (with its CRC) into ``buf[off:off+28]``."""
    struct.pack_into(
        SAFETY_STATE_FMT,
        buf,
        off,
        latched,
        site_dose,
        flags,
        boots,
        last_reset,
        SAFETY_STATE_VERSION,
        valve_cycles,
        seq,
        0,
    )
    crc32_into(buf, off, SAFETY_STATE_SIZE - 4, off + SAFETY_STATE_SIZE - 4)


def decode_safety_state(data, off=0, version=SAFETY_STATE_VERSION):
    """Dict of a slot's fields (CRC not checked: see :func:`safety_slot_problem`);
    a layout-1 slot reads ``valve_cycles`` 0 (not counted then)."""
    if version == SAFETY_STATE_VERSION:
        vals = struct.unpack_from(SAFETY_STATE_FMT, data, off)
    else:
        v1 = struct.unpack_from(SAFETY_STATE_V1_FMT, data, off)
        vals = v1[:6] + (0,) + v1[6:]
    out = {}
    i = 0
    while i < 8:
        if SAFETY_STATE_FIELDS[i] != "version":
            out[SAFETY_STATE_FIELDS[i]] = vals[i]
        i += 1
    return out


def encode_dev_event(buf, off, seq, rtc_s, t_ms, kind, code, arg):
    """Pack one device event (with its CRC) into ``buf[off:off+24]``."""
    arg &= 0xFFFFFFFF
    if arg >= 0x80000000:
        arg -= 0x100000000
    struct.pack_into(
        DEV_EVENT_FMT,
        buf,
        off,
        seq & 0xFFFFFFFF,
        rtc_s & 0xFFFFFFFF,
        t_ms & 0xFFFFFFFF,
        kind,
        code,
        DEV_EVENT_VERSION,
        arg,
        0,
    )
    crc32_into(buf, off, DEV_EVENT_SIZE - 4, off + DEV_EVENT_SIZE - 4)


def dev_event_problem(data, off):
    """Why the event slot at ``data[off]`` holds no valid record, or None.

    ``"erased"`` (all 0xFF: a slot never written), ``"short"``, ``"crc"``
    (torn or corrupt), ``"version N"``.
    """
    why = _slot_problem(data, off, DEV_EVENT_SIZE)
    if why is None:
        ver = data[off + 14] | (data[off + 15] << 8)
        if ver != DEV_EVENT_VERSION:
            return "version %d" % ver
    return why


def dev_event_tuple(data, off):
    """``(seq, rtc_s, t_ms, kind, code, arg)`` of a valid event slot."""
    seq, rtc_s, t_ms, kind, code, _ver, arg, _crc = struct.unpack_from(DEV_EVENT_FMT, data, off)
    return (seq, rtc_s, t_ms, kind, code, arg)


def scan_events(data):
    """Decode a device event file (ring on the device, or the host's history).

    Returns ``(records, problems)``: ``records`` are dicts ``{seq, rtc_s,
    t_ms, kind, kind_name, code, arg}`` in seq order; ``problems`` lists
    ``{"slot", "offset", "reason"}`` for every slot that is neither erased
    nor valid (a torn or corrupt record: it costs only itself). Raises
    ValueError when ``data`` is not a whole number of 24-byte slots.
    """
    n = len(data)
    if n == 0 or n % DEV_EVENT_SIZE:
        raise ValueError(
            "device event file: %d bytes is not a whole, non-zero number of %d-byte records"
            % (n, DEV_EVENT_SIZE)
        )
    records = []
    problems = []
    off = 0
    while off < n:
        why = dev_event_problem(data, off)
        if why is None:
            seq, rtc_s, t_ms, kind, code, arg = dev_event_tuple(data, off)
            records.append(
                {
                    "seq": seq,
                    "rtc_s": rtc_s,
                    "t_ms": t_ms,
                    "kind": kind,
                    "kind_name": DEV_KIND_NAMES.get(kind, "kind%d" % kind),
                    "code": code,
                    "arg": arg,
                }
            )
        elif why != "erased":
            problems.append({"slot": off // DEV_EVENT_SIZE, "offset": off, "reason": why})
        off += DEV_EVENT_SIZE
    records.sort(key=lambda r: r["seq"])
    return records, problems


def decode_events(data):
    """Records of a device event file (see :func:`scan_events`), seq order."""
    return scan_events(data)[0]
