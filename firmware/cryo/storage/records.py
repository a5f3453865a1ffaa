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

from cryo.crc import crc32, crc32_into

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


def encode_pulled(session):
    """Contents of the ``pulled`` marker file (host writes it after a pull)."""
    return encode(TYPE_PULLED, 0, {"session": session})


def decode_pulled(data):
    rec, _ = decode_frame(data, 0)
    if rec is None or rec["type"] != "pulled":
        return None
    return rec["session"]
