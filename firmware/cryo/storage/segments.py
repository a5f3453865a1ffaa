"""The treatment log's segment files: their names, and the readers that walk
them on the device and on the host (a pulled copy of the log folder).

A log folder holds ``seg00000001.bin``, ``seg00000002.bin`` ... (oldest
first) and the ``pulled`` marker file. Every segment starts with a segment
record naming the session open when it was created, so a reader can start
at any segment (``walk_segment``'s cursor). Record layouts:
``cryo.storage.records``.
"""

import os

from cryo.storage import records as R
from cryo.storage import scan
from cryo.storage.files import join, read_file
from cryo.storage.session_stats import SessionStats

PULLED = "pulled"
_SEG_PREFIX = "seg"
_SEG_SUFFIX = ".bin"


def seg_name(n):
    s = str(n)
    return _SEG_PREFIX + "0" * (8 - len(s)) + s + _SEG_SUFFIX


def seg_number(name):
    """Segment number of a file name, or -1 if it is not a segment."""
    if not (name.startswith(_SEG_PREFIX) and name.endswith(_SEG_SUFFIX)):
        return -1
    digits = name[len(_SEG_PREFIX) : len(name) - len(_SEG_SUFFIX)]
    if len(digits) != 8 or not digits.isdigit():
        return -1
    return int(digits)


def unwrap24(prev_t, t24):
    t = (prev_t & ~0xFFFFFF) | t24
    if t < prev_t:
        t += 0x1000000
    return t


def scan_tail(data):
    """What one segment's bytes end in, for the log's recovery at open.

    A dict: ``last_seq`` (-1: no valid record), ``session`` and ``active``
    (the session open at its end), ``last_t`` (that session's last time,
    ms), ``damaged`` (some range failed its check), ``tail_damaged`` (a
    damaged range after the last valid record) and ``rejected`` (bytes).
    """
    out = {"last_seq": -1, "session": 0, "active": False, "last_t": 0}
    out["damaged"] = out["tail_damaged"] = False
    out["rejected"] = 0
    for off, size, rtype, seq in scan.walk(data):
        if rtype is None:
            out["damaged"] = out["tail_damaged"] = True
            out["rejected"] += size
            continue
        out["tail_damaged"] = False
        out["last_seq"] = seq
        if rtype == R.TYPE_SEGMENT:
            rec = scan.decode_at(data, off, rtype, seq)
            out["session"] = rec["session"]
            out["active"] = bool(rec["open"])
        elif rtype == R.TYPE_SESSION:
            rec = scan.decode_at(data, off, rtype, seq)
            out["session"] = rec["session"]
            out["active"] = True
            out["last_t"] = 0
        elif rtype == R.TYPE_SUMMARY:
            out["active"] = False
        elif rtype == R.TYPE_EVENT:
            out["last_t"] = scan.decode_at(data, off, rtype, seq)["t_ms"]
        elif rtype == R.SAMPLE_MARK:
            t24 = data[off + 3] | (data[off + 4] << 8) | (data[off + 5] << 16)
            out["last_t"] = unwrap24(out["last_t"], t24)
    return out


def walk_segment(data, cursor):
    """Yield ``(off, size, record_dict or None, session)`` for one segment's bytes.

    ``cursor``: ``[last_seq, session, t_last]`` carried from the previous
    segment (``[-1, 0, 0]`` before the first), updated in place, so a reader
    can resume at any segment (the host's archive index does). A damaged
    range is yielded with ``None`` and the session it lies in.
    """
    for off, size, rtype, seq in scan.walk(data, cursor[0]):
        if rtype is None:
            yield off, size, None, cursor[1]
            continue
        rec = scan.decode_at(data, off, rtype, seq)
        cursor[0] = seq
        if rtype == R.TYPE_SEGMENT:
            cursor[1] = rec["session"] if rec["open"] else 0
        elif rtype == R.TYPE_SESSION:
            cursor[1] = rec["session"]
            cursor[2] = 0
        elif rtype == R.SAMPLE_MARK:
            cursor[2] = unwrap24(cursor[2], rec.pop("t24"))
            rec["t_ms"] = cursor[2]
        elif rtype == R.TYPE_EVENT:
            cursor[2] = rec["t_ms"]
        yield off, size, rec, cursor[1]
        if rtype == R.TYPE_SUMMARY:
            cursor[1] = 0


def segment_names(root):
    """Segment file names under ``root``, oldest first."""
    names = []
    for name in os.listdir(root):
        n = seg_number(name)
        if n >= 0:
            names.append((n, name))
    names.sort()
    return [name for _n, name in names]


def iter_records(root, names=None):
    """Yield ``(record_dict, session)`` for every intact record under ``root``
    (or only in the segment files ``names``, oldest first).

    Works on the device and on the host (a pulled copy of the log folder).
    Sample dicts get ``t_ms`` (unwrapped ms since session start).
    """
    cursor = [-1, 0, 0]
    for name in segment_names(root) if names is None else names:
        for _off, _size, rec, session in walk_segment(read_file(join(root, name)), cursor):
            if rec is not None:
                yield rec, session


def read_records(root, session=None, seq_from=None, seq_to=None):
    out = []
    for rec, s in iter_records(root):
        if session is not None and s != session:
            continue
        if seq_from is not None and rec["seq"] < seq_from:
            continue
        if seq_to is not None and rec["seq"] > seq_to:
            continue
        rec["session_no"] = s
        out.append(rec)
    return out


def list_sessions(root, pulled_upto=0):
    out = []
    cur = None
    for rec, s in iter_records(root):
        t = rec["type"]
        if t == "session":
            cur = {
                "session": rec["session"],
                "header": rec,
                "first_seq": rec["seq"],
                "last_seq": rec["seq"],
                "samples": 0,
                "events": 0,
                "summary": None,
                "pulled": rec["session"] <= pulled_upto,
            }
            out.append(cur)
            continue
        if cur is None or s != cur["session"]:
            continue
        cur["last_seq"] = rec["seq"]
        if t == "sample":
            cur["samples"] += 1
        elif t == "event":
            cur["events"] += 1
        elif t == "summary":
            cur["summary"] = rec
    return out


def session_stats(root, session, names=None):
    """Summary fields recomputed from a session's committed records (in the
    segment files ``names``, if given: those from its header on).

    The live statistics' rules (``SessionStats``). None if the session
    header is no longer in the log.
    """
    st = None
    last_t = 0
    for rec, s in iter_records(root, names):
        if s != session:
            continue
        t = rec["type"]
        if t == "session":
            st = SessionStats(1000 // rec["sample_hz"], rec["target_cc"])
            last_t = 0
        elif st is None:
            continue
        elif t == "sample":
            last_t = rec["t_ms"]
            c = rec["tissue_c"]
            st.sample(R.NO_READING16 if c is None else int(round(c * R.TISSUE_SCALE)), rec["valve"])
        elif t == "event":
            last_t = rec["t_ms"]
            st.event(rec["code"], rec["arg"])
    return None if st is None else st.summary(session, last_t)
