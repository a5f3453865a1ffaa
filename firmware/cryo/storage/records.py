"""Binary record layouts of the treatment log: the one definition.

Imported by the firmware (MicroPython) and by the host tools (CPython puts
``firmware/`` on ``sys.path``), so the module uses only ``struct`` and
``binascii``/``zlib`` and no ``micropython`` import.

All integers are little-endian. Every record carries a CRC-32 (IEEE 802.3,
the ``zlib.crc32`` polynomial) over all its preceding bytes and a sequence
number; sequence numbers increase by one per record across the whole log
(all sessions, all segments), so a reader can detect gaps.

Sample record, 16 bytes (hot path, allocation-free to encode)::

    0      u8   0x50 | phase          (high nibble 0x5 marks a sample)
    1..2   u16  sequence number, low 16 bits (full number rebuilt by the
                reader from the previous record)
    3..5   u24  time since session start, ms (wraps at 2**24 ms = 4.66 h;
                the reader unwraps: time never goes backwards in a session)
    6..7   i16  tissue temperature, 0.01 degC (range -327.67..+327.67 degC;
                -32768 = no valid reading)
    8..10  u24  aux (bits 0..11) and setpoint (bits 12..23), each
                (0.1 degC + 2732): -273.2..+136.2 degC at 0.1 degC;
                4095 = no valid reading
    11     u8   valve demand 0..100 % (bits 0..6), valve open (bit 7)
    12..15 u32  CRC-32 of bytes 0..11

Framed record (everything else)::

    0      u8   type code (TYPE_*)
    1      u8   layout version of that type
    2..3   u16  payload length L
    4..7   u32  sequence number
    8..    L bytes payload (struct formats below)
    8+L    u32  CRC-32 of bytes 0..8+L-1

Erased flash (0xFF) and zero fill never form a valid record: 0x00 and 0xFF
are not type codes and the CRC would not match.
"""

import struct
from binascii import crc32 as _crc32

from cryo import paths as _paths

FORMAT_VERSION = 1

SAMPLE_SIZE = 16
SAMPLE_MARK = 0x50  # high nibble of byte 0
FRAME_HEAD = 8
FRAME_CRC = 4

TYPE_SEGMENT = 0xA5  # first record of every segment file
TYPE_SESSION = 0xB1  # session header
TYPE_EVENT = 0xC1
TYPE_SUMMARY = 0xD1
TYPE_PULLED = 0xE1  # the "pulled up to" marker file
TYPE_NAMES = {
    TYPE_SEGMENT: "segment",
    TYPE_SESSION: "session",
    TYPE_EVENT: "event",
    TYPE_SUMMARY: "summary",
    TYPE_PULLED: "pulled",
}

# Scaled-integer units.
TISSUE_SCALE = 100  # 0.01 degC per LSB
AUX_SCALE = 10  # 0.1 degC per LSB (aux and setpoint)
CODE12_OFFSET = 2732  # 0 -> -273.2 degC
CODE12_MAX = 4094
NO_READING12 = 4095
NO_READING16 = -32768

# -- framed payload layouts (type -> (version, struct format, field names)) --

# session: the most recent session started before this segment was opened;
# open: 1 if that session was still running (it continues in this segment).
SEGMENT_FMT = "<4sHIIBI"
SEGMENT_FIELDS = ("magic", "format", "segment", "session", "open", "rtc_s")
SEGMENT_MAGIC = b"CRYL"

# Session header: firmware version and hash, config hash, board id, start
# time (RTC, seconds since 2000-01-01 UTC), protocol parameters.
SESSION_FMT = "<IIH16s32s32s16shhHBhHHB"
SESSION_FIELDS = (
    "session",  # session number, increasing
    "rtc_s",  # RTC start time, s since 2000-01-01 00:00 UTC
    "rtc_ms",  # and milliseconds
    "fw_version",  # str, <=16 bytes
    "fw_hash",  # bytes, SHA-256 of the firmware image
    "config_hash",  # bytes, SHA-256 of the canonical config
    "board_id",  # str, <=16 bytes
    "target_cc",  # target tissue temperature, 0.01 degC
    "thaw_cc",  # thaw threshold, 0.01 degC
    "freeze_ds",  # freeze time per cycle, 0.1 s
    "cycles",  # freeze-thaw cycles
    "floor_cc",  # hard floor temperature in force, 0.01 degC
    "max_freeze_ds",  # hard max freeze time in force, 0.1 s
    "min_thaw_ds",  # minimum thaw time, 0.1 s
    "sample_hz",  # sample rate of this session
)

# Events: time since session start, code, two arguments.
EVENT_FMT = "<IHii"
EVENT_FIELDS = ("t_ms", "code", "arg", "arg2")

EV_PHASE = 1  # arg: new phase (cryo.protocol.states), arg2: old phase
EV_FAULT = 2  # arg: fault code, arg2: detail
EV_FAULT_CLEAR = 3  # arg: fault code
EV_ACK = 4  # operator acknowledgement; arg: fault/alarm code, arg2: role
EV_ALARM_ON = 5  # arg: alarm id, arg2: priority (0 info, 1 low, 2 medium, 3 high)
EV_ALARM_OFF = 6  # arg: alarm id
EV_AUDIO_PAUSE = 7  # arg: pause duration in s
EV_AUDIO_RESUME = 8
EV_SETPOINT = 9  # arg: new setpoint, 0.01 degC
EV_STOP = 10  # operator stop; arg: reason code
EV_MASTER_VALVE = 11  # arg: 1 open, 0 closed
EV_INTERRUPTED = 12  # written at boot for a session cut by power loss
EV_NOTE = 13  # free-form numeric marker
EV_VALVE_CYCLES = 14  # at session end; arg: solenoid cycles in the session, arg2: lifetime
EVENT_NAMES = {
    EV_PHASE: "phase",
    EV_FAULT: "fault",
    EV_FAULT_CLEAR: "fault_clear",
    EV_ACK: "ack",
    EV_ALARM_ON: "alarm_on",
    EV_ALARM_OFF: "alarm_off",
    EV_AUDIO_PAUSE: "audio_pause",
    EV_AUDIO_RESUME: "audio_resume",
    EV_SETPOINT: "setpoint",
    EV_STOP: "stop",
    EV_MASTER_VALVE: "master_valve",
    EV_INTERRUPTED: "interrupted",
    EV_NOTE: "note",
    EV_VALVE_CYCLES: "valve_cycles",
}

# Session summary.
SUMMARY_FMT = "<IIhIIBBII"
SUMMARY_FIELDS = (
    "session",
    "duration_ms",
    "min_cc",  # minimum tissue temperature, 0.01 degC
    "below_target_ms",  # time at or below the target temperature
    "valve_open_ms",
    "cycles_done",
    "outcome",  # OUTCOME_*
    "samples",
    "events",
)
OUTCOME_COMPLETED = 0
OUTCOME_STOPPED = 1  # operator stop
OUTCOME_FAULT = 2
OUTCOME_INTERRUPTED = 3  # power lost; summary written at the next boot
# The session's last record was damaged on flash (bit rot: littlefs never
# shows a torn write): it may have been the summary, so the outcome is
# unknown; the statistics are recomputed at the next boot.
OUTCOME_DAMAGED = 4
OUTCOME_NAMES = ("completed", "stopped", "fault", "interrupted", "damaged")

PULLED_FMT = "<I"
PULLED_FIELDS = ("session",)

LAYOUTS = {
    TYPE_SEGMENT: (1, SEGMENT_FMT, SEGMENT_FIELDS),
    TYPE_SESSION: (1, SESSION_FMT, SESSION_FIELDS),
    TYPE_EVENT: (1, EVENT_FMT, EVENT_FIELDS),
    TYPE_SUMMARY: (1, SUMMARY_FMT, SUMMARY_FIELDS),
    TYPE_PULLED: (1, PULLED_FMT, PULLED_FIELDS),
}
_STR_FIELDS = ("fw_version", "board_id")

# -- CRC-32 ---------------------------------------------------------------
# binascii.crc32 returns up to 2**32-1: on a 32-bit board values >= 2**30
# are heap-allocated long ints. The sample path therefore uses this
# table-driven CRC-32 held as two 16-bit halves (small ints only), which
# allocates nothing on any port and gives the same value as zlib.crc32.


def _make_tables():
    lo = []
    hi = []
    n = 0
    while n < 256:
        c = n
        k = 0
        while k < 8:
            c = (0xEDB88320 ^ (c >> 1)) if c & 1 else (c >> 1)
            k += 1
        lo.append(c & 0xFFFF)
        hi.append(c >> 16)
        n += 1
    return tuple(lo), tuple(hi)


_T_LO, _T_HI = _make_tables()


def crc32_into(buf, start, n, out):
    """CRC-32 of ``buf[start:start+n]`` written little-endian at ``buf[out]``.

    Allocation-free (index loop, 16-bit halves): usable with the heap locked.
    """
    lo = 0xFFFF
    hi = 0xFFFF
    tlo = _T_LO
    thi = _T_HI
    i = start
    end = start + n
    while i < end:
        idx = (lo ^ buf[i]) & 0xFF
        lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ tlo[idx]
        hi = (hi >> 8) ^ thi[idx]
        i += 1
    lo ^= 0xFFFF
    hi ^= 0xFFFF
    buf[out] = lo & 0xFF
    buf[out + 1] = lo >> 8
    buf[out + 2] = hi & 0xFF
    buf[out + 3] = hi >> 8


def crc32(data):
    """CRC-32 of ``data`` (bytes-like) as an int (may allocate)."""
    return _crc32(data) & 0xFFFFFFFF


# -- scaled integers --------------------------------------------------------


def to_cc(temp_c):
    """degC (float or None) -> 0.01 degC int16 code (NO_READING16 for None)."""
    if temp_c is None or temp_c != temp_c:
        return NO_READING16
    v = int(round(temp_c * TISSUE_SCALE))
    if v < -32767:
        return -32767
    if v > 32767:
        return 32767
    return v


def to_dc(temp_c):
    """degC (float or None) -> 0.1 degC int (may exceed the 12-bit range)."""
    if temp_c is None or temp_c != temp_c:
        return None
    return int(round(temp_c * AUX_SCALE))


def code12(deci):
    """0.1 degC int (or None) -> 12-bit field code, clamped."""
    if deci is None:
        return NO_READING12
    v = deci + CODE12_OFFSET
    if v < 0:
        return 0
    if v > CODE12_MAX:
        return CODE12_MAX
    return v


def from_code12(code):
    """12-bit field code -> degC float, or None for 'no reading'."""
    if code == NO_READING12:
        return None
    return (code - CODE12_OFFSET) / AUX_SCALE


# -- samples ----------------------------------------------------------------


def encode_sample(
    buf, off, seq, t_ms, tissue_cc, aux_code, setpoint_code, demand_pct, valve, phase
):
    """Write one 16-byte sample record at ``buf[off]``. Allocation-free.

    Integer arguments only: ``tissue_cc`` in 0.01 degC (NO_READING16 if
    invalid), ``aux_code``/``setpoint_code`` already 12-bit codes (see
    :func:`code12`), ``demand_pct`` 0..100, ``valve`` 0/1, ``phase`` 0..15.
    Out-of-range values are clamped (a log must not raise in the tick).
    """
    if tissue_cc < -32768:
        tissue_cc = -32768
    elif tissue_cc > 32767:
        tissue_cc = 32767
    if demand_pct < 0:
        demand_pct = 0
    elif demand_pct > 100:
        demand_pct = 100
    buf[off] = SAMPLE_MARK | (phase & 0x0F)
    buf[off + 1] = seq & 0xFF
    buf[off + 2] = (seq >> 8) & 0xFF
    buf[off + 3] = t_ms & 0xFF
    buf[off + 4] = (t_ms >> 8) & 0xFF
    buf[off + 5] = (t_ms >> 16) & 0xFF
    t = tissue_cc & 0xFFFF
    buf[off + 6] = t & 0xFF
    buf[off + 7] = t >> 8
    a = aux_code & 0xFFF
    s = setpoint_code & 0xFFF
    buf[off + 8] = a & 0xFF
    buf[off + 9] = (a >> 8) | ((s & 0x0F) << 4)
    buf[off + 10] = s >> 4
    buf[off + 11] = demand_pct | (0x80 if valve else 0)
    crc32_into(buf, off, 12, off + 12)


def is_sample(first_byte):
    return (first_byte & 0xF0) == SAMPLE_MARK


def decode_sample(data, off=0):
    """Decode a 16-byte sample (CRC not checked here; see :func:`parse`)."""
    b = data
    tissue = b[off + 6] | (b[off + 7] << 8)
    if tissue >= 0x8000:
        tissue -= 0x10000
    aux = b[off + 8] | ((b[off + 9] & 0x0F) << 8)
    sp = (b[off + 9] >> 4) | (b[off + 10] << 4)
    d = b[off + 11]
    return {
        "type": "sample",
        "seq16": b[off + 1] | (b[off + 2] << 8),
        "t24": b[off + 3] | (b[off + 4] << 8) | (b[off + 5] << 16),
        "phase": b[off] & 0x0F,
        "tissue_c": None if tissue == NO_READING16 else tissue / TISSUE_SCALE,
        "aux_c": from_code12(aux),
        "setpoint_c": from_code12(sp),
        "demand_pct": d & 0x7F,
        "valve": (d >> 7) & 1,
    }


# -- framed records ---------------------------------------------------------


def _field_value(name, value):
    if name in _STR_FIELDS:
        if isinstance(value, str):
            value = value.encode()
        return bytes(value)
    if name in ("fw_hash", "config_hash"):
        if isinstance(value, str):  # hex string
            value = bytes.fromhex(value)
        return bytes(value)
    return value


def frame_size(rtype):
    """Bytes of a framed record of type ``rtype``."""
    return FRAME_HEAD + struct.calcsize(LAYOUTS[rtype][1]) + FRAME_CRC


def encode(rtype, seq, values):
    """Encode a framed record from a dict of field values -> bytes.

    Missing fields raise ValueError naming them (no silent defaults).
    """
    version, fmt, fields = LAYOUTS[rtype]
    args = []
    missing = []
    for name in fields:
        if name == "magic":
            args.append(SEGMENT_MAGIC)
        elif name == "format":
            args.append(FORMAT_VERSION)
        elif name in values:
            args.append(_field_value(name, values[name]))
        else:
            missing.append(name)
    if missing:
        raise ValueError("%s record: missing field(s) %s" % (TYPE_NAMES[rtype], ", ".join(missing)))
    payload = struct.pack(fmt, *args)
    out = bytearray(FRAME_HEAD + len(payload) + FRAME_CRC)
    struct.pack_into("<BBHI", out, 0, rtype, version, len(payload), seq & 0xFFFFFFFF)
    out[FRAME_HEAD : FRAME_HEAD + len(payload)] = payload
    struct.pack_into(
        "<I", out, FRAME_HEAD + len(payload), crc32(memoryview(out)[: FRAME_HEAD + len(payload)])
    )
    return bytes(out)


def _decode_payload(rtype, payload):
    version, fmt, fields = LAYOUTS[rtype]
    vals = struct.unpack(fmt, payload)
    out = {"type": TYPE_NAMES[rtype]}
    for name, v in zip(fields, vals):
        if name in _STR_FIELDS:
            raw = bytes(v).rstrip(b"\x00")
            try:
                v = raw.decode()
            except UnicodeError:  # a multi-byte character cut at the field size
                v = repr(raw)
        elif name in ("fw_hash", "config_hash"):
            v = bytes(v).hex() if hasattr(bytes, "hex") else v
        elif name == "magic":
            v = bytes(v).decode()
        out[name] = v
    return out


def decode_frame(data, off=0):
    """Decode and verify the framed record at ``data[off]``.

    Returns ``(record_dict, size)`` or ``(None, reason)`` where reason is a
    short string (``"short"``, ``"type"``, ``"length"``, ``"crc"``).
    """
    n = len(data) - off
    if n < FRAME_HEAD + FRAME_CRC:
        return None, "short"
    rtype, version, length, seq = struct.unpack_from("<BBHI", data, off)
    if rtype not in LAYOUTS:
        return None, "type"
    lay_version, fmt, _ = LAYOUTS[rtype]
    if length != struct.calcsize(fmt) or version != lay_version:
        return None, "length"
    end = off + FRAME_HEAD + length
    if end + FRAME_CRC > len(data):
        return None, "short"
    (crc,) = struct.unpack_from("<I", data, end)
    if crc32(memoryview(data)[off:end]) != crc:
        return None, "crc"
    rec = _decode_payload(rtype, bytes(data[off + FRAME_HEAD : end]))
    rec["seq"] = seq
    return rec, end + FRAME_CRC - off


def check_sample(data, off=0):
    """True if the 16 bytes at ``data[off]`` are a sample with a valid CRC."""
    if len(data) - off < SAMPLE_SIZE or not is_sample(data[off]):
        return False
    (crc,) = struct.unpack_from("<I", data, off + 12)
    return crc32(memoryview(data)[off : off + 12]) == crc


def sample_seq(data, off, last_seq):
    """Full sequence number of the sample at ``data[off]`` after ``last_seq``."""
    s16 = data[off + 1] | (data[off + 2] << 8)
    base = last_seq + 1
    seq = (base & ~0xFFFF) | s16
    if seq < base:
        seq += 0x10000
    return seq


def walk(data, prev_seq=-1):
    """Yield ``(offset, size, rtype, seq)`` for every intact record in ``data``.

    ``rtype`` is ``SAMPLE_MARK`` for samples. A damaged byte range (torn
    tail, corruption) is yielded once as ``(offset, size, None, -1)`` and
    skipped by resynchronising byte by byte on the next valid record, so one
    damaged record never hides the committed records after it. Sample
    sequence numbers (16 bits on flash) are unwrapped against the previous
    record. Samples are not decoded (cheap enough for a boot-time scan).
    """
    off = 0
    n = len(data)
    last_seq = prev_seq
    bad_start = -1
    while off < n:
        b0 = data[off]
        size = 0
        if is_sample(b0) and check_sample(data, off):
            seq = sample_seq(data, off, last_seq)
            size = SAMPLE_SIZE
            rtype = SAMPLE_MARK
        elif b0 in LAYOUTS:
            rec, size = decode_frame(data, off)
            if rec is None:
                size = 0
            else:
                rtype = b0
                seq = rec["seq"]
        if size:
            if bad_start >= 0:
                yield bad_start, off - bad_start, None, -1
                bad_start = -1
            yield off, size, rtype, seq
            last_seq = seq
            off += size
        else:
            if bad_start < 0:
                bad_start = off
            off += 1
    if bad_start >= 0:
        yield bad_start, n - bad_start, None, -1


def decode_at(data, off, rtype, seq):
    """Decode the (already verified) record at ``data[off]`` into a dict."""
    if rtype == SAMPLE_MARK:
        rec = decode_sample(data, off)
        del rec["seq16"]
        rec["seq"] = seq
        return rec
    rec, _ = decode_frame(data, off)
    return rec


def parse(data, prev_seq=-1):
    """Parse a segment's bytes: ``(records, rejected_bytes)``.

    Every record whose CRC matches is returned (dicts with ``seq``); bytes
    of damaged records are counted in ``rejected_bytes`` and never decoded.
    """
    records = []
    rejected = 0
    for off, size, rtype, seq in walk(data, prev_seq):
        if rtype is None:
            rejected += size
        else:
            records.append(decode_at(data, off, rtype, seq))
    return records, rejected


def encode_pulled(session):
    """Contents of the ``pulled`` marker file (host writes it after a pull)."""
    return encode(TYPE_PULLED, 0, {"session": session})


def decode_pulled(data):
    rec, _ = decode_frame(data, 0)
    if rec is None or rec["type"] != "pulled":
        return None
    return rec["session"]


# == Safety state and device event log ======================================
# Device paths (flash root; the host strips the leading "/" because its
# commands run with the flash root as the current directory).
SAFETY_STATE_PATH = _paths.on_flash(_paths.SAFETY_STATE_PATH)
DEVICE_EVENTS_PATH = _paths.on_flash(_paths.DEVICE_EVENTS_PATH)

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
