"""Power cut at every flash operation during log append and segment rotation.

Runs under real MicroPython on the emulated NOR flash with littlefs. For
each cut point (clean and torn): every record committed before the cut is
intact after the reboot, nothing partial is accepted, seq numbers stay
gapless, and the log remains appendable.
"""

from pathlib import Path

HERE = str(Path(__file__).resolve().parent)

COMMON = """
from storage_rig import *
from cryo.storage.log import TreatmentLog
from cryo.storage import records as R
ROOT = '/flash/logs'
HDR = dict(rtc_s=815000000, rtc_ms=0, fw_version='0.1.0', fw_hash=b'\\x11' * 32,
           config_hash=b'\\x22' * 32, board_id='sim-1', target_cc=-4000, thaw_cc=0,
           freeze_ds=200, cycles=2, floor_cc=-6000, max_freeze_ds=600, min_thaw_ds=300)

def session(log, n, t0=0):
    log.begin_session(HDR, t0)
    log.event(R.EV_PHASE, 4, 3, t0)
    t = t0
    i = 0
    while i < n:
        log.sample(t, -i * 37, -15 - i, -400, i % 101, i & 1, 4)
        t += 100
        i += 1
    log.event(R.EV_ALARM_ON, 3, 2, t)
    log.end_session(None, t)

def is_recovery(r):
    return (r['type'] == 'event' and r['code'] == R.EV_INTERRUPTED) or (
        r['type'] == 'summary' and r['outcome'] == R.OUTCOME_INTERRUPTED)

def make_check(REF, BASE_LAST, KW, PULLED=0):
    # REF: every record ever written by the reference run (before and after
    # rotation deleted pulled segments). Records of sessions <= PULLED may be
    # gone (rotation deletes pulled sessions); nothing else may.
    def check(state, cut, tear, died):
        committed = state['log'].committed_seq if 'log' in state else BASE_LAST
        if committed < BASE_LAST:
            committed = BASE_LAST
        log = TreatmentLog(ROOT, **KW)
        got = log.read_records()
        ref = {}
        for r in REF:
            ref[r['seq']] = r
        seen = {}
        prev = -1
        recovering = False
        for r in got:
            if prev >= 0 and r['seq'] != prev + 1:
                return 'seq gap %d -> %d' % (prev, r['seq'])
            prev = r['seq']
            seen[r['seq']] = r
            if is_recovery(r):
                recovering = True
                continue
            if recovering or ref.get(r['seq']) != r:
                return 'record %d not as written: %r' % (r['seq'], r)
        for q in ref:
            r = ref[q]
            if q <= committed and seen.get(q) != r:
                if 0 < r['session_no'] <= PULLED or (r['type'] == 'segment' and q < got[0]['seq']):
                    continue
                return 'committed record %d lost' % q
        if not died and len(got) < 10:
            return 'completed run lost records'
        # Still appendable after the reboot.
        session(log, 7, 0)
        log.close()
        remount()
        again = TreatmentLog(ROOT, **KW).sessions()
        last = again[-1]
        if last['summary'] is None or last['samples'] != 7:
            return 'not appendable after reboot: %r' % (last,)
        return None
    return check
"""


def _run(mpy, body):
    # The sweep restores a fresh RAM flash image (96 KB, one piece) for every
    # cut point on the interpreter's heap: 4 MB keeps that from failing on
    # fragmentation (the 32-bit build's default heap is 1 MB).
    return mpy.run(COMMON + body, extra_path=[HERE], timeout=300, heapsize="4M")


def test_power_cut_every_op_during_append(mpy):
    r = _run(
        mpy,
        """
KW = dict(segment_bytes=8192, max_bytes=65536, commit_every=5)
dev = fresh()
log = TreatmentLog(ROOT, **KW)
session(log, 6)
log.close()
BASE_LAST = log.committed_seq
base = snapshot(dev)

def action(state):
    log = TreatmentLog(ROOT, **KW)
    state['log'] = log
    session(log, 12, 0)
    log.close()

n, _ = count_ops(base, action)
dev = restore(base)
action({})
REF = TreatmentLog(ROOT, **KW).read_records()
unmount()

tried, failures = cut_sweep(base, action, make_check(REF, BASE_LAST, KW), n)
result([n, tried, len(REF), failures])
""",
    )
    n, tried, nref, failures = r
    assert failures == []
    assert n >= 10 and tried == 2 * (n + 1)
    assert nref > 20


def test_power_cut_every_op_during_segment_rotation(mpy):
    r = _run(
        mpy,
        """
KW = dict(segment_bytes=1024, max_bytes=4096, commit_every=8)
dev = fresh()
log = TreatmentLog(ROOT, **KW)
session(log, 55)
session(log, 55)
log.mark_pulled(2)
session(log, 55)
log.close()
BASE_LAST = log.committed_seq
before = log.read_records()
segs_before = listdir(ROOT)
base = snapshot(dev)

def action(state):
    log = TreatmentLog(ROOT, **KW)
    state['log'] = log
    session(log, 40, 0)
    log.close()

n, _ = count_ops(base, action)
dev = restore(base)
action({})
after = TreatmentLog(ROOT, **KW).read_records()
segs_after = listdir(ROOT)
unmount()
REF = before + [r for r in after if r['seq'] > BASE_LAST]
tried, failures = cut_sweep(base, action, make_check(REF, BASE_LAST, KW, PULLED=2), n)
result([n, tried, failures, segs_before, segs_after, after[0]['seq']])
""",
    )
    n, tried, failures, segs_before, segs_after, first_seq = r
    assert failures == []
    assert tried == 2 * (n + 1)
    # rotation happened and deleted pulled segments during the action
    before = [s for s in segs_before if s.startswith("seg")]
    after = [s for s in segs_after if s.startswith("seg")]
    assert after[0] != before[0] and first_seq > 1
    assert len(after) == 4, (n, before, after)


def test_power_cut_during_boot_recovery_of_an_interrupted_session(mpy):
    r = _run(
        mpy,
        """
KW = dict(segment_bytes=2048, max_bytes=16384, commit_every=5)
dev = fresh()
log = TreatmentLog(ROOT, **KW)
session(log, 5)
log.begin_session(HDR, 0)
i = 0
while i < 23:
    log.sample(i * 100, -i, 0, -400, 5, 1, 4)
    i += 1
base = snapshot(dev)            # power lost mid-session (3 samples never committed)
restore(base)
from cryo.storage.segments import read_records
BEFORE = read_records(ROOT)
unmount()

def action(state):
    TreatmentLog(ROOT, **KW)    # boot: closes the interrupted session

def check(state, cut, tear, died):
    log = TreatmentLog(ROOT, **KW)
    got = log.read_records()
    if got[:len(BEFORE)] != BEFORE:
        return 'records before the cut changed'
    extra = got[len(BEFORE):]
    if [r['type'] for r in extra if r['type'] != 'event'] != ['summary']:
        return 'not exactly one summary: %r' % [r['type'] for r in extra]
    if extra[-1]['outcome'] != R.OUTCOME_INTERRUPTED or extra[-1]['samples'] != 20:
        return 'bad summary %r' % extra[-1]
    if [s['session'] for s in log.sessions()] != [1, 2]:
        return 'sessions wrong'
    return None

n, _ = count_ops(base, action)
tried, failures = cut_sweep(base, action, check, n)
result([n, tried, failures])
""",
    )
    n, tried, failures = r
    assert failures == [] and n >= 2 and tried == 2 * (n + 1)
