"""TreatmentLog behaviour under MicroPython on the emulated flash (littlefs)."""

from pathlib import Path

from cryo.storage import records as R
from cryo.storage.segments import list_sessions, read_records

HERE = str(Path(__file__).resolve().parent)

COMMON = """
from storage_rig import *
from cryo.storage.log import TreatmentLog, LogFull
from cryo.storage import records as R
from cryo.clock import ManualClock
ROOT = '/flash/logs'
HDR = dict(rtc_s=815000000, rtc_ms=0, fw_version='0.1.0', fw_hash=b'\\x11' * 32,
           config_hash=b'\\x22' * 32, board_id='sim-1', target_cc=-4000, thaw_cc=0,
           freeze_ds=200, cycles=2, floor_cc=-6000, max_freeze_ds=600, min_thaw_ds=300)
"""


def _run(mpy, body, **kw):
    return mpy.run(COMMON + body, extra_path=[HERE], timeout=300, **kw)


def test_session_round_trip_with_summary_stats_and_queries(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
log = TreatmentLog(ROOT, sample_hz=10)
s = log.begin_session(HDR, 0, expected_s=30)
log.event(R.EV_PHASE, 4, 3, 0)
t = 0
while t < 3000:                     # called at 50 Hz, logged at 10 Hz
    tissue = -t                     # 0 .. -29.98 degC
    log.sample(t, tissue, -150, -400, 50, 1 if t < 1000 else 0, 4)
    t += 20
log.event(R.EV_ALARM_ON, 3, 3, 2500)
summ = log.end_session(None, 3000)
log.close()
remount()
log = TreatmentLog(ROOT)
sess = log.sessions()
recs = log.read_records(session=s)
rng = log.read_records(seq_from=5, seq_to=7)
result([s, summ, sess[0]['samples'], sess[0]['events'], sess[0]['summary']['outcome'],
        [r['type'] for r in recs[:3]], recs[3], [r['seq'] for r in rng], len(recs)])
""",
    )
    s, summ, nsamp, nev, outcome, first_types, rec3, rng, nrec = r
    assert s == 1 and nsamp == 30 and nev == 2 and outcome == R.OUTCOME_COMPLETED
    assert summ["samples"] == 30 and summ["duration_ms"] == 3000 and summ["cycles_done"] == 1
    assert summ["min_cc"] == -2900 and summ["valve_open_ms"] == 1000
    assert summ["below_target_ms"] == 0  # target -40 degC never reached
    assert first_types == ["session", "event", "sample"]
    assert rec3["t_ms"] == 100 and rec3["tissue_c"] == -1.0 and rec3["aux_c"] == -15.0
    assert rng == [5, 6, 7]
    assert nrec == 1 + 30 + 2 + 1


def test_decimation_and_time_across_the_tick_wrap(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
clock = ManualClock((1 << 30) - 1500)     # wraps 1.5 s into the session
log = TreatmentLog(ROOT, clock=clock, sample_hz=10)
log.begin_session(HDR, clock.ticks_ms())
i = 0
while i < 200:                            # 4 s at 50 Hz
    log.sample(clock.ticks_ms(), -100, 0, 0, 0, 0, 4)
    clock.advance(20)
    i += 1
log.end_session(None, clock.ticks_ms())
ts = [r['t_ms'] for r in log.read_records() if r['type'] == 'sample']
result([len(ts), ts[:3], ts[-1], log.sessions()[0]['summary']['duration_ms']])
""",
    )
    n, first, last, dur = r
    assert n == 40 and first == [0, 100, 200] and last == 3900 and dur == 4000


def test_sample_append_allocates_nothing_including_commits(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
log = TreatmentLog(ROOT, sample_hz=10, commit_every=10, segment_bytes=16384)
log.begin_session(HDR, 0)
t = [0]
def one():
    log.sample(t[0], -4012, -153, -400, 37, 1, 4)
    t[0] += 100
c0 = log.committed_seq
assert_no_alloc(one, 300)                  # 30 flash commits with the heap locked
per = bytes_per_call(one, 200)
result([log.committed_seq - c0, per, log.stats.samples])
""",
    )
    committed, per, n = r
    assert committed >= 290 and per == 0 and n == 502


def test_interrupted_session_is_closed_at_boot(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
log = TreatmentLog(ROOT, commit_every=5)
log.begin_session(HDR, 0)
t = 0
while t < 2300:
    log.sample(t, -t, 0, -400, 10, 1, 4)
    t += 100
# power lost here: no end_session; the last 3 queued samples never committed
unmount()
mount(dev.reboot())
log = TreatmentLog(ROOT)
sess = log.sessions()
recs = log.read_records(session=1)
log.begin_session(HDR, 0)
log.end_session(None, 10)
result([log.recovered, sess[0]['summary'], sess[0]['samples'],
        [r['code'] for r in recs if r['type'] == 'event'], [s['session'] for s in log.sessions()]])
""",
    )
    recovered, summary, nsamp, codes, sessions = r
    assert recovered == 1
    assert summary["outcome"] == R.OUTCOME_INTERRUPTED and summary["duration_ms"] == 1900
    # statistics recomputed from the committed records
    assert summary["samples"] == 20 and summary["min_cc"] == -1900
    assert summary["valve_open_ms"] == 2000 and summary["events"] == 1
    assert nsamp == 20 and codes == [R.EV_INTERRUPTED]
    assert sessions == [1, 2]


def test_a_rotted_summary_is_reported_damaged_never_interrupted(mpy):
    """A flipped byte in a completed session's summary (bit rot: littlefs
    never shows a torn write) closes it at boot as "damaged" - outcome
    unknown, statistics recomputed - not as a power cut."""
    r = _run(
        mpy,
        """
dev = fresh()
log = TreatmentLog(ROOT, commit_every=5)
log.begin_session(HDR, 0)
t = 0
while t < 2000:
    log.sample(t, -t, 0, -400, 10, 1, 4)
    t += 100
log.end_session({"outcome": R.OUTCOME_STOPPED}, t)
log.close()
path = ROOT + '/seg00000001.bin'
data = bytearray(read_file(path))
data[-3] ^= 0x40                    # inside the summary's CRC-covered bytes
write_file(path, bytes(data))
remount()
log = TreatmentLog(ROOT)
sess = log.sessions()
codes = [r['code'] for r in log.read_records(session=1) if r['type'] == 'event']
result([log.recovered, log.rejected_bytes, sess[0]['summary'], codes])
""",
    )
    recovered, rejected, summary, codes = r
    assert recovered == 1 and rejected == R.frame_size(R.TYPE_SUMMARY)
    assert summary["outcome"] == R.OUTCOME_DAMAGED
    assert R.OUTCOME_NAMES[summary["outcome"]] == "damaged"
    assert summary["samples"] == 20 and summary["min_cc"] == -1900
    assert R.EV_INTERRUPTED not in codes  # no power cut is claimed


def test_unpulled_sessions_are_never_overwritten(mpy):
    r = _run(
        mpy,
        """
# a tiny flash for the segment rules: no reserve for other files here
KW = dict(segment_bytes=1024, max_bytes=16384, commit_every=5, flash_reserve=0)
dev = fresh()
log = TreatmentLog(ROOT, **KW)
out = {}
def treat(n):
    log.begin_session(HDR, 0, expected_s=n // 10)
    i = 0
    while i < n:
        log.sample(i * 100, -i, 0, 0, 0, 0, 4)
        i += 1
    log.end_session(None, n * 100)
while log.has_room_for(10):
    treat(100)
out['before'] = [(s['session'], s['samples']) for s in log.sessions()]
try:
    treat(100)
    out['refused'] = 'started'
except LogFull as e:
    out['refused'] = str(e)
out['after_refusal'] = [(s['session'], s['samples']) for s in log.sessions()]
PULLED = log.sessions()[-1]['session'] - 1
log.mark_pulled(PULLED)
out['pulled'] = PULLED
out['room_after_pull'] = log.has_room_for(10)
while log.has_room_for(10):
    treat(100)
out['after'] = [(s['session'], s['samples']) for s in log.sessions()]
out['room3'] = log.has_room_for(10)
out['dropped'] = log.dropped
log2 = TreatmentLog(ROOT, overwrite_unpulled=True, **KW)
out['room_overwrite'] = log2.has_room_for(10)
result(out)
""",
    )
    before = r["before"]
    assert len(before) >= 2 and all(n == 100 for _, n in before)
    assert "no room for a 10 s treatment" in r["refused"]
    assert r["after_refusal"] == before  # nothing deleted, nothing half-started
    assert r["room_after_pull"] is True
    after = dict(r["after"])
    assert 1 not in after, r  # pulled session rotated out
    # every unpulled session is still complete
    assert all(after[s] == 100 for s, _ in before if s > r["pulled"])
    assert after[before[-1][0] + 1] == 100 and len(after) >= len(before)
    assert r["room3"] is False and r["dropped"] == 0
    assert r["room_overwrite"] is True


def test_has_room_for_is_not_optimistic(mpy):
    # Whatever has_room_for promises must really fit without dropping samples.
    r = _run(
        mpy,
        """
KW = dict(segment_bytes=2048, max_bytes=16384, commit_every=10, flash_reserve=0)
dev = fresh(24)
log = TreatmentLog(ROOT, **KW)
secs = 1
while log.has_room_for(secs + 1):
    secs += 1
log.begin_session(HDR, 0, expected_s=secs)
i = 0
while i < secs * 10:
    log.sample(i * 100, -i, 0, 0, 0, 0, 4)
    i += 1
j = 0
while j < 64:
    log.event(R.EV_NOTE, j, 0)
    j += 1
log.end_session(None, secs * 1000)
result([secs, log.dropped, log.full, log.sessions()[-1]['samples']])
""",
    )
    secs, dropped, full, samples = r
    assert secs > 60 and dropped == 0 and not full and samples == secs * 10


def test_host_reads_a_log_written_by_micropython(mpy, tmp_path):
    root = tmp_path / "logs"
    mpy.run(
        COMMON.replace("ROOT = '/flash/logs'", "ROOT = %r" % str(root))
        + """
log = TreatmentLog(ROOT, segment_bytes=1024, max_bytes=8192)
for k in range(2):
    log.begin_session(HDR, 0)
    i = 0
    while i < 100:
        log.sample(i * 100, -i * 50, -i, -400, i, i & 1, 4)
        i += 1
    log.event(R.EV_FAULT, 7, 1, 5000)
    log.end_session({'outcome': R.OUTCOME_FAULT}, 10000)
log.mark_pulled(1)
result(1)
""",
        extra_path=[HERE],
    )
    sessions = list_sessions(str(root), pulled_upto=1)
    assert [s["session"] for s in sessions] == [1, 2]
    assert [s["pulled"] for s in sessions] == [True, False]
    assert all(s["samples"] == 100 and s["summary"]["outcome"] == R.OUTCOME_FAULT for s in sessions)
    recs = read_records(str(root), session=2)
    samples = [r for r in recs if r["type"] == "sample"]
    assert samples[99]["tissue_c"] == -49.5 and samples[99]["t_ms"] == 9900
    seqs = [r["seq"] for r in read_records(str(root))]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(list(root.glob("seg*.bin"))) > 2  # rotated


def test_bad_arguments_are_named(tmp_path):
    import pytest

    from cryo.storage.log import TreatmentLog

    with pytest.raises(ValueError, match="sample_hz must be 1..100 Hz, got 0"):
        TreatmentLog(str(tmp_path), sample_hz=0)
    with pytest.raises(ValueError, match="max_bytes must be >= 2 \\* segment_bytes"):
        TreatmentLog(str(tmp_path), segment_bytes=4096, max_bytes=4096)
    log = TreatmentLog(str(tmp_path))
    with pytest.raises(ValueError, match="no session is open"):
        log.end_session()


def test_full_log_drops_samples_without_raising_or_deleting(mpy):
    r = _run(
        mpy,
        """
KW = dict(segment_bytes=1024, max_bytes=4096, commit_every=5)
dev = fresh()
log = TreatmentLog(ROOT, **KW)
log.begin_session(HDR, 0)           # no expected_s: nothing reserved
i = 0
recorded = 0
while i < 600:
    if log.sample(i * 100, -i, 0, 0, 0, 0, 4):
        recorded += 1
    i += 1
full, dropped = log.full, log.dropped
try:
    log.end_session(None, 60000)
    ended = 'ended'
except LogFull as e:
    ended = str(e)
log.mark_pulled(0)
result([full, dropped, recorded, ended, log.full, [s['session'] for s in log.sessions()],
        len([n for n in listdir(ROOT) if n.startswith('seg')])])
""",
    )
    full, dropped, recorded, ended, full_after_pull, sessions, nfiles = r
    assert full is True and dropped > 0 and recorded + dropped == 600
    assert recorded > 150 and sessions == [1]
    assert nfiles == 4  # 4 segments, nothing deleted
    assert ended == "ended" or "treatment log full" in ended


def test_power_cut_on_a_file_backed_image_recovers_in_the_next_process(mpy, tmp_path):
    img = str(tmp_path / "flash.img")
    first = _run(
        mpy,
        """
import vfs
d = FlashBlockDevice(%r, 4096, 64)
vfs.VfsLfs2.mkfs(d)
mount(d)
log = TreatmentLog(ROOT, commit_every=10)
log.begin_session(HDR, 0)
d.cut_power_after(40, True)
i = 0
try:
    while True:
        log.sample(i * 100, -i, 0, -400, 50, 1, 4)
        i += 1
except PowerCut:
    pass
result([log.committed_seq, i])
"""
        % img,
    )
    committed, attempted = first
    second = _run(
        mpy,
        """
mount(FlashBlockDevice(%r, 4096, 64))
log = TreatmentLog(ROOT)
recs = log.read_records(session=1)
samples = [r for r in recs if r['type'] == 'sample']
result([log.recovered, samples[-1]['seq'], len(samples), recs[-1]['outcome'],
        [r['tissue_c'] for r in samples[:3]]])
"""
        % img,
    )
    recovered, last_seq, n, outcome, first3 = second
    assert recovered == 1 and outcome == R.OUTCOME_INTERRUPTED
    assert last_seq >= committed and n >= committed - 2  # segment 1, header 2, samples from 3
    assert n < attempted and first3 == [0.0, -0.01, -0.02]


def test_has_room_for_respects_the_filesystem_not_only_the_budget(mpy):
    r = _run(
        mpy,
        """
dev = fresh(10)                         # 40 KiB flash, far below the 1 MiB budget
log = TreatmentLog(ROOT, segment_bytes=4000, max_bytes=1 << 20)
secs = 1
while log.has_room_for(secs + 1):
    secs += 1
log.begin_session(HDR, 0, expected_s=secs)
i = 0
err = None
try:
    while i < secs * 10:
        log.sample(i * 100, -i, 0, 0, 0, 0, 4)
        i += 1
    log.end_session(None, secs * 1000)
except OSError as e:
    err = repr(e)
result([secs, err, log.dropped, log.has_room_for(secs)])
""",
    )
    secs, err, dropped, room_again = r
    assert 10 < secs < 200  # limited by 10 blocks, not by the 1 MiB budget
    assert err is None and dropped == 0
    assert room_again is False


def test_a_budget_larger_than_the_flash_rotates_within_the_flash(mpy):
    """log.max_kib = 1 MiB on a 96 KiB flash: the log keeps at most what the
    flash holds, so pulled sessions make room (without the cap nothing would
    rotate and the filesystem would run out mid-session: OSError 28); unpulled
    ones are still never deleted - the room check refuses the next treatment."""
    r = _run(
        mpy,
        """
dev = fresh(24)                         # 96 KiB
log = TreatmentLog(ROOT, segment_bytes=8192, max_bytes=1 << 20)

def treat(n):
    log.begin_session(HDR, 0, expected_s=50)
    i = 0
    while i < 500:
        log.sample(i * 100, -i, 0, 0, 0, 0, 4)
        i += 1
    log.end_session(None, 50000)

err = None
n = 0
try:
    while n < 30:                       # ~250 KiB of sessions through 96 KiB
        treat(n)
        n += 1
        log.mark_pulled(log.session)
except Exception as e:
    err = repr(e)
pulled = [s['session'] for s in log.sessions()]
kept = 0
refused = None
while refused is None and kept < 30:
    try:
        treat(0)                        # no pull any more
        kept += 1
    except Exception as e:
        refused = str(e)
result([err, n, log._store.limit, pulled[-1], kept, refused,
        [s['session'] for s in log.sessions()][-kept:], log.session])
""",
    )
    err, n, limit, last_pulled, kept, refused, unpulled, last = r
    assert err is None and n == 30
    assert 2 <= limit < 12  # the flash, not the 128-segment budget
    assert last_pulled == 30
    assert kept >= 1 and refused is not None and "no room" in refused
    assert unpulled == list(range(last - kept + 1, last + 1))  # every unpulled session kept


def test_session_time_unwraps_past_24_bits(tmp_path):
    from cryo.storage.log import TreatmentLog

    log = TreatmentLog(str(tmp_path), sample_hz=1)
    log.begin_session(
        dict(
            rtc_s=0,
            rtc_ms=0,
            fw_version="x",
            fw_hash=b"\x00" * 32,
            config_hash=b"\x00" * 32,
            board_id="b",
            target_cc=0,
            thaw_cc=0,
            freeze_ds=0,
            cycles=1,
            floor_cc=0,
            max_freeze_ds=0,
            min_thaw_ds=0,
        ),
        0,
    )
    times = [(1 << 24) - 1000, (1 << 24) + 500, (1 << 25) + 7]
    for t in times:
        assert log.sample(t, 0, 0, 0, 0, 0, 4)
    log.end_session(None, times[-1])
    got = [r["t_ms"] for r in log.read_records() if r["type"] == "sample"]
    assert got == times


def test_room_check_reads_no_flash_and_costs_the_same_at_any_history(mpy):
    # The periodic check answers from what the log keeps up to date itself
    # (pulled marker, reclaimable segments, free blocks): no block of the
    # flash is read, whether 2 or 40 sessions are on it; the answer matches
    # the one recomputed from the filesystem.
    r = _run(
        mpy,
        """
dev = fresh(blocks=256)
log = TreatmentLog(ROOT, sample_hz=10, segment_bytes=4096, max_bytes=512 * 1024)
out = {}
n = 0
for target in (2, 40):
    while n < target:
        log.begin_session(HDR, 0, expected_s=20)
        for i in range(100):
            log.sample(i * 100, -i, -50, -400, 50, i & 1, 4)
        log.end_session(None, 10000)
        n += 1
    log.mark_pulled(max(0, n - 5))
    before = dev.reads
    answers = [log.has_room_for(s) for s in (10, 300, 3000, 30000)]
    out[target] = [dev.reads - before, answers]
    log.refresh_room()
    out[target].append([log.has_room_for(s) for s in (10, 300, 3000, 30000)])
result(out)
""",
        heapsize="4M",  # the 1 MiB emulated flash on a 32-bit build's default heap
    )
    for target in ("2", "40"):
        reads, answers, fresh = r[target]
        assert reads == 0
        assert answers == fresh
    assert r["2"][1][0] and not r["2"][1][3]  # 10 s fits, 30 000 s does not


def test_events_of_a_tick_reach_the_flash_at_the_idle_point_in_order(mpy):
    # A phase change writes several events inside a control tick; they wait
    # in RAM (no flash operation in the tick) and the idle point writes and
    # commits them, in order, with the samples around them. More events than
    # the RAM slots hold are written at once rather than lost.
    r = _run(
        mpy,
        """
dev = fresh(blocks=64)
log = TreatmentLog(ROOT, sample_hz=10)
log.begin_session(HDR, 0, expected_s=60)
out = {}
for i in range(5):
    log.sample(i * 100, -i, -50, -400, 50, 1, 4)
ops = dev.ops
seq = log.committed_seq
for k in range(3):                        # one tick: FREEZE entry
    log.event(R.EV_PHASE, 5, k, 450, False)
out['tick'] = [dev.ops - ops, log.committed_seq == seq]
log.commit_soon()                         # the idle point
out['idle'] = log.committed_seq > seq
for k in range(12):                       # more than a tick ever writes
    log.event(R.EV_ALARM_ON, k, 0, 600, False)
log.commit_soon()
log.end_session(None, 1000)
recs = log.read_records()
out['order'] = [[r['type'], r.get('code'), r.get('arg2')] for r in recs if r['type'] != 'sample']
out['seqs'] = [r['seq'] for r in recs]
out['events'] = log.sessions()[0]['summary']['events']
result(out)
""",
    )
    assert r["tick"] == [0, True], "a tick's events touched the flash or were committed in it"
    assert r["idle"]
    ev = [x for x in r["order"] if x[0] == "event"]
    assert ev[:3] == [["event", R.EV_PHASE, 0], ["event", R.EV_PHASE, 1], ["event", R.EV_PHASE, 2]]
    assert [x[1] for x in ev[3:15]] == [R.EV_ALARM_ON] * 12
    assert r["seqs"] == sorted(r["seqs"]) and len(set(r["seqs"])) == len(r["seqs"])
    assert r["events"] == 15


def test_recovery_recomputes_the_summary_the_live_log_wrote(mpy):
    # One set of rules (SessionStats) for the live statistics and for the
    # ones recomputed from the flash after a power cut.
    r = _run(
        mpy,
        """
from cryo.storage import segments as S
from cryo.storage import session_stats as SS
from cryo.protocol import states
dev = fresh(blocks=64)
log = TreatmentLog(ROOT, sample_hz=10)
log.begin_session(HDR, 0, expected_s=60)
for i in range(120):
    if i == 10:
        log.event(R.EV_PHASE, SS.PHASE_FREEZE, 3, i * 100)
    if i == 70:
        log.event(R.EV_PHASE, 6, SS.PHASE_FREEZE, i * 100, False)
    log.commit_soon()
    tissue = R.NO_READING16 if i == 50 else 2000 - i * 70   # 20 .. -63 degC, one invalid
    log.sample(i * 100, tissue, -50, -400, 50, 1 if 10 <= i < 70 else 0, 4)
live = log.end_session(None, 12000)
again = S.session_stats(ROOT, 1)
result([SS.PHASE_FREEZE == states.FREEZE, live, again])
""",
    )
    same_phase, live, again = r
    assert same_phase
    del live["outcome"]
    live["duration_ms"] = again["duration_ms"]  # the summary's own end time vs the last record's
    assert again == live
    assert live["cycles_done"] == 1 and live["samples"] == 120 and live["events"] == 2
    assert 0 < live["below_target_ms"] < 12000 and live["valve_open_ms"] == 6000
