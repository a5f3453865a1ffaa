"""DeviceEventLog (cryo.storage.events): a ring of CRC'd records, power-cut safe.

Real MicroPython on the emulated NOR flash with littlefs; the host decoder
(records.scan_events) reads what the firmware wrote.
"""

import struct
from pathlib import Path

import pytest

from cryo.storage import records as R

HERE = str(Path(__file__).resolve().parent)

COMMON = """
from storage_rig import *
import storage_rig
from cryo.storage.events import DeviceEventLog
from cryo.storage import records as R
P = '/flash/events.bin'

def raw():
    return read_file(P)

def fill(log, n, kind=R.DEV_FAULT):
    i = 0
    while i < n:
        log.append(kind, i % 16, i, 1000 + i)
        i += 1
"""


def _run(mpy, body):
    return mpy.run(COMMON + body, extra_path=[HERE], timeout=300)


def test_append_records_and_reopen(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
clock = [815000000]
log = DeviceEventLog(P, capacity=16, rtc=lambda: clock[0])
seqs = [log.append(R.DEV_BOOT, R.RESET_WDT, 12, 5),
        log.append(R.DEV_FAULT, 3, 4, 900),
        log.append(R.DEV_ACK, 3, 2, 1900),
        log.append(R.DEV_INTERNAL, 0, 0xDEADBEEF, 2000),
        log.append(R.DEV_REFUSED, R.REFUSED_NOT_THAWED, -1234)]
clock[0] = None                                # RTC unusable: recorded as 0
seqs.append(log.append(R.DEV_SITE, 0, R.SITE_NEW, 3000))
recs = log.records()
since = log.records(4)
size = len(raw())
log.close()
remount()
again = DeviceEventLog(P, capacity=16)
result([seqs, recs, since, size, again.last_seq, again.records() == recs, again.damaged,
        again.append(R.DEV_STATE_LOST)])
""",
    )
    seqs, recs, since, size, last, same, damaged, nxt = r
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert recs[0] == [1, 815000000, 5, R.DEV_BOOT, R.RESET_WDT, 12]
    assert recs[3] == [4, 815000000, 2000, R.DEV_INTERNAL, 0, 0xDEADBEEF - 2**32]
    assert recs[4] == [5, 815000000, 0, R.DEV_REFUSED, 1, -1234]
    assert recs[5] == [6, 0, 3000, R.DEV_SITE, 0, 1]
    assert [x[0] for x in since] == [5, 6]
    assert size == 16 * R.DEV_EVENT_SIZE  # preallocated at creation
    assert last == 6 and same and damaged == 0 and nxt == 7


def test_wrap_around_overwrites_the_oldest_and_reopen_finds_the_head(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
log = DeviceEventLog(P, capacity=8)
fill(log, 21)
recs = [x[0] for x in log.records()]
img = raw()
slot_of_21 = R.dev_event_tuple(img, (21 % 8) * 24)[0]
log.close()
remount()
log = DeviceEventLog(P, capacity=8)
head = log.last_seq
nxt = log.append(R.DEV_BOOT, 1, 2)
after = [x[0] for x in log.records()]
result([recs, slot_of_21, head, nxt, after, len(raw())])
""",
    )
    recs, slot_of_21, head, nxt, after, size = r
    assert recs == list(range(14, 22))
    assert slot_of_21 == 21
    assert head == 21 and nxt == 22
    assert after == list(range(15, 23))  # 14, the oldest, was overwritten
    assert size == 8 * 24


def test_torn_record_is_skipped_and_costs_only_itself(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
log = DeviceEventLog(P, capacity=8)
fill(log, 11)                                  # seqs 4..11 in the ring
log.close()
img = bytearray(raw())
img[(7 % 8) * 24 + 9] ^= 0x10                  # seq 7 damaged in the middle
img[(11 % 8) * 24 + 21] ^= 0x01                # and the newest (a torn last append)
write_file(P, img)
log = DeviceEventLog(P, capacity=8)
res = [log.damaged, log.last_seq, [x[0] for x in log.records()]]
res.append(log.append(R.DEV_BOOT, 1, 3))       # reuses seq 11 and its slot
res.append([x[0] for x in log.records()])
scan = R.scan_events(raw())
res.append(scan[1])
result(res)
""",
    )
    damaged, last, seqs, nxt, after, problems = r
    assert damaged == 2 and last == 10
    assert seqs == [4, 5, 6, 8, 9, 10]
    assert nxt == 11 and after == [4, 5, 6, 8, 9, 10, 11]
    assert problems == [{"slot": 7, "offset": 168, "reason": "crc"}]


def test_power_cut_at_every_flash_op_of_appends(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
log = DeviceEventLog(P, capacity=8)
fill(log, 6)
log.close()
base = snapshot(dev)
BASE = 6

def action(state):
    log = DeviceEventLog(P, capacity=8)
    state['committed'] = log.last_seq
    for k in (R.DEV_FAULT, R.DEV_ACK, R.DEV_BOOT, R.DEV_SITE):
        s = log.append(k, 2, 40 + k, 7)
        if s > 0:
            state['committed'] = s

n, _ = count_ops(base, action)
restore(base)
REF = {}
for rec in DeviceEventLog(P, capacity=8).records():
    REF[rec[0]] = rec
action({})
for rec in DeviceEventLog(P, capacity=8).records():
    REF[rec[0]] = rec                          # every record ever written, by seq
unmount()

def check(state, cut, tear, died):
    log = DeviceEventLog(P, capacity=8)
    got = log.records()
    committed = state.get('committed', BASE)
    for rec in got:
        if REF.get(rec[0]) != rec:
            return 'record not as written: %r' % (rec,)
    seqs = [rec[0] for rec in got]
    if seqs != list(range(max(1, seqs[-1] - 7), seqs[-1] + 1)):
        return 'not the newest 8 records without a gap: %r' % (seqs,)
    if got[-1][0] < committed:
        return 'committed record lost (%d < %d)' % (got[-1][0], committed)
    if log.damaged:
        return 'damaged slots after a cut on littlefs: %d' % log.damaged
    s = log.append(R.DEV_BOOT, 1, 1)
    if s != got[-1][0] + 1 or DeviceEventLog(P, capacity=8).last_seq != s:
        return 'not appendable after reboot'
    return None

tried, failures = cut_sweep(base, action, check, n)
result([n, tried, failures])
""",
    )
    n, tried, failures = r
    assert failures == []
    assert n >= 8 and tried == 2 * (n + 1)


def test_open_and_append_cost_do_not_grow_with_history(mpy):
    # Counted, not timed: file reads and bytes read at open, file writes
    # per append, and the flash's own program/erase operations.
    r = _run(
        mpy,
        """
class CountedLog(DeviceEventLog):
    def _open(self, path, mode):
        if not hasattr(self, 'calls'):
            self.calls = []
        return CountedFile.open(path, mode, self.calls)

CAP = 32
out = []
for mult in (1, 10, 100):
    dev = fresh(64)
    log = DeviceEventLog(P, capacity=CAP)
    fill(log, CAP * mult)
    log.close()
    remount()
    dev = storage_rig._current[0]
    log = CountedLog(P, capacity=CAP)
    opened = io_counts(log.calls)
    log.calls[:] = []
    ops = dev.ops
    fill(log, CAP)
    out.append([mult, log.last_seq, opened, io_counts(log.calls), dev.ops - ops])
result(out)
""",
    )
    (
        (m1, last1, open1, app1, ops1),
        (_, last10, open10, app10, ops10),
        (_, last100, open100, app100, ops100),
    ) = r
    assert (last1, last10, last100) == (64, 352, 3232)
    assert (
        open1
        == open10
        == open100
        == {
            "reads": 32,
            "bytes": 32 * 24,
            "writes": 0,
            "wbytes": 0,
            "flushes": 0,
        }
    )
    # one 24-byte write and one sync per append, whatever the history
    assert (
        app1
        == app10
        == app100
        == {
            "reads": 0,
            "bytes": 0,
            "writes": 32,
            "wbytes": 32 * 24,
            "flushes": 32,
        }
    )
    # flash program/erase operations for 32 appends: littlefs compacts its
    # metadata now and then, so allow a few ops either way, not a trend
    assert abs(ops100 - ops1) <= ops1 // 10 and abs(ops10 - ops1) <= ops1 // 10, (
        ops1,
        ops10,
        ops100,
    )


def test_capacity_change_rebuilds_with_the_newest_records(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
log = DeviceEventLog(P, capacity=8)
fill(log, 13)                                  # 6..13 in the ring
log.close()
small = DeviceEventLog(P, capacity=4)
res = [small.resized, [x[0] for x in small.records()], len(raw())]
small.close()
big = DeviceEventLog(P, capacity=16)
res += [big.resized, [x[0] for x in big.records()], len(raw()), big.append(R.DEV_BOOT)]
write_file(P, raw()[:30])                      # a creation cut on a non-atomic filesystem
torn = DeviceEventLog(P, capacity=16)
res += [torn.resized, [x[0] for x in torn.records()]]
result(res)
""",
    )
    msg4, seqs4, size4, msg16, seqs16, size16, nxt, msg_torn, seqs_torn = r
    assert (
        msg4 == "/flash/events.bin held 192 bytes (8 valid records); rebuilt with 4 slots, kept 4"
    )
    assert seqs4 == [10, 11, 12, 13] and size4 == 96
    assert "rebuilt with 16 slots, kept 4" in msg16 and seqs16 == [10, 11, 12, 13]
    assert size16 == 384 and nxt == 14
    assert "held 30 bytes (0 valid records)" in msg_torn and seqs_torn == []


def test_append_never_raises_oserror(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
log = DeviceEventLog(P, capacity=8)
fill(log, 3)
dev.cut_power_after(0)
failed = log.append(R.DEV_FAULT, 1, 1)         # PowerCut is an OSError: -1, no raise
err = log.error is not None
unmount()
mount(dev.reboot())
retry = log.append(R.DEV_FAULT, 1, 1)          # reopens; the same seq
nodir = DeviceEventLog('/flash/no/dir/events.bin', capacity=8)
result([failed, err, retry, log.error, nodir.append(R.DEV_BOOT), nodir.error is not None])
""",
    )
    failed, err, retry, error_after, nodir, nodir_err = r
    assert failed == -1 and err and retry == 4 and error_after is None
    assert nodir == -1 and nodir_err


def test_bad_arguments_are_named(tmp_path):
    from cryo.storage.events import DeviceEventLog

    with pytest.raises(ValueError, match=r"capacity = 1: allowed 2\.\.65535"):
        DeviceEventLog(str(tmp_path / "e.bin"), capacity=1)
    log = DeviceEventLog(str(tmp_path / "e.bin"), capacity=4)
    with pytest.raises(ValueError, match=r"kind 99: allowed boot=1, fault=2"):
        log.append(99)
    with pytest.raises(ValueError, match=r"code 300: allowed 0\.\.255"):
        log.append(R.DEV_FAULT, 300)
    assert log.last_seq == 0 and log.records() == []


def test_host_decoder_reads_what_micropython_wrote(mpy, tmp_path):
    # The firmware under MicroPython writes into a plain directory; CPython
    # decodes the file bytes with records.decode_events.
    d = tmp_path / "flash"
    d.mkdir()
    r = mpy.run(
        """
import os
os.chdir(%r)
from cryo.storage.events import DeviceEventLog
from cryo.storage import records as R
log = DeviceEventLog('events.bin', capacity=6, rtc=lambda: (815000001, 250))
for k in (R.DEV_BOOT, R.DEV_FAULT, R.DEV_ACK, R.DEV_RESTORED, R.DEV_INTERNAL, R.DEV_STATE_LOST,
          R.DEV_WDT_IN_TREATMENT, R.DEV_SITE, R.DEV_REFUSED):
    log.append(k, k, -k * 1000, k * 7)
result(log.records())
"""
        % str(d)
    )
    data = (d / "events.bin").read_bytes()
    recs = R.decode_events(data)
    assert [tuple(x) for x in r] == [
        (e["seq"], e["rtc_s"], e["t_ms"], e["kind"], e["code"], e["arg"]) for e in recs
    ]
    assert [e["seq"] for e in recs] == [4, 5, 6, 7, 8, 9]
    assert recs[0]["kind_name"] == "restored" and recs[-1]["kind_name"] == "refused"
    assert recs[-1] == {
        "seq": 9,
        "rtc_s": 815000001,
        "t_ms": 63,
        "kind": R.DEV_REFUSED,
        "kind_name": "refused",
        "code": 9,
        "arg": -9000,
    }
    # the layout: struct format of records.py, CRC-32 = zlib over bytes 0..19
    import zlib

    off = (9 % 6) * 24
    fields = struct.unpack_from(R.DEV_EVENT_FMT, data, off)
    assert fields == (
        9,
        815000001,
        63,
        R.DEV_REFUSED,
        9,
        1,
        -9000,
        zlib.crc32(data[off : off + 20]),
    )


def test_decoder_rejects_files_that_are_not_whole_records():
    for bad in (b"", b"\xff" * 23, b"\xff" * 25):
        with pytest.raises(ValueError, match=r"is not a whole, non-zero number of 24-byte records"):
            R.scan_events(bad)
    # a foreign file of the right size: every slot reported, nothing decoded
    recs, problems = R.scan_events(bytes(range(48)))
    assert recs == [] and [p["reason"] for p in problems] == ["crc", "crc"]


def test_layout_sizes_and_erased_or_zeroed_slots_are_not_records():
    assert struct.calcsize(R.SAFETY_STATE_FMT) == R.SAFETY_STATE_SIZE == 28
    assert struct.calcsize(R.SAFETY_STATE_V1_FMT) == R.SAFETY_STATE_V1_SIZE == 24
    assert struct.calcsize(R.DEV_EVENT_FMT) == R.DEV_EVENT_SIZE == 24
    assert len(R.SAFETY_STATE_FIELDS) == len(R.SAFETY_STATE_FMT) - 1
    assert len(R.DEV_EVENT_FIELDS) == len(R.DEV_EVENT_FMT) - 1
    assert R.dev_event_problem(b"\xff" * 24, 0) == "erased"
    assert R.dev_event_problem(bytes(24), 0) == "crc"
    assert R.safety_slot_problem(bytes(28), 0) == "crc"
    assert set(R.DEV_KIND_NAMES) == set(range(1, 10))
