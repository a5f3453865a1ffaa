"""Walking a segment's bytes: the intact records, in order, and the damaged
ranges between them (layouts in ``cryo.storage.records``).

Used at boot to find where the log ends and by every reader, on the device
and on the host.
"""

import struct

from cryo.crc import crc32
from cryo.storage.records import (
    LAYOUTS,
    SAMPLE_MARK,
    SAMPLE_SIZE,
    decode_frame,
    decode_sample,
    is_sample,
)


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
