"""Storage figures: record sizes, treatments per MiB, sample append cost.

Measured under the MicroPython unix port on the emulated NOR flash
(boards/sim/flash.py, 4096-byte blocks) with littlefs, like the board.
"""

import mpyrun

# A typical keloid contact treatment: 3 freeze-thaw
# cycles of 30 s freeze + 60 s thaw, plus 30 s pre-cool and set-up = 300 s,
# logged at the default 10 Hz with ~20 events (phases, alarms, acks).
TREATMENT_S = 300
EVENTS = 20

_CODE = """
import vfs, os, time
from flash import FlashBlockDevice
from cryo.storage.log import TreatmentLog
from cryo.storage import records as R
dev = FlashBlockDevice(None, 4096, 512)            # 2 MiB, the board's default
vfs.VfsLfs2.mkfs(dev)
vfs.mount(vfs.VfsLfs2(dev), '/flash')
HDR = dict(rtc_s=0, rtc_ms=0, fw_version='0.1.0', fw_hash=b'1' * 32, config_hash=b'2' * 32,
           board_id='sim', target_cc=-4000, thaw_cc=0, freeze_ds=300, cycles=3, floor_cc=-6000,
           max_freeze_ds=600, min_thaw_ds=600)

def seg_bytes(root):
    n = 0
    for name in os.listdir(root):
        if name.startswith('seg'):
            n += os.stat(root + '/' + name)[6]
    return n

def treatment(log, secs, events):
    log.begin_session(HDR, 0)
    i = 0
    while i < secs * 10:
        log.sample(i * 100, -i, -50, -4000, 50, i & 1, 4)
        i += 1
        if i %% (secs * 10 // events) == 0:
            log.event(R.EV_NOTE, i, 0)
    log.end_session(None, secs * 1000)

# 1) bytes per treatment, and how many fit in a 1 MiB log budget
log = TreatmentLog('/flash/a', max_bytes=1048576)
treatment(log, %d, %d)
per_treatment = seg_bytes('/flash/a')
guarded = 0
while log.has_room_for(%d):
    treatment(log, %d, %d)
    guarded += 1
fitted = len(log.sessions())
room_us = time_us(lambda: log.has_room_for(%d), 20)
room_med = room_us[len(room_us) // 2]
er = list(dev.erases)
erase_total = sum(er)
erase_max = max(er)
# how many may start under the firmware's own reserve at the default parameters
from cryo.core.journal import treatment_seconds
from cryo.protocol import params
reserve_s = treatment_seconds(params.defaults())
log = TreatmentLog('/flash/r', max_bytes=1048576)
started = 0
while log.has_room_for(reserve_s):
    treatment(log, %d, %d)
    started += 1

# 2) sample append cost (includes one flash commit per 10 samples)
log = TreatmentLog('/flash/b')
log.begin_session(HDR, 0)
t = [0]
def one():
    log.sample(t[0], -4012, -153, -400, 37, 1, 4)
    t[0] += 100
alloc = bytes_per_call(one, 500)          # within one segment
ops0 = dev.ops
ts = time_us(one, 2000)
ops_per_sample = (dev.ops - ops0) / 2000
alloc_rot = bytes_per_call(one, 3000)     # includes 3 segment rotations

# 3) peer: committing every sample (commit_every=1)
log1 = TreatmentLog('/flash/c', commit_every=1)
log1.begin_session(HDR, 0)
t1 = [0]
def one1():
    log1.sample(t1[0], -4012, -153, -400, 37, 1, 4)
    t1[0] += 100
ops0 = dev.ops
ts1 = time_us(one1, 500)
ops1 = (dev.ops - ops0) / 500
result([room_med, erase_total, erase_max, per_treatment, fitted, guarded, started, reserve_s, ts[len(ts) // 2], ts[len(ts) * 99 // 100],
        sum(ts) / len(ts), ops_per_sample, alloc, alloc_rot, ts1[len(ts1) // 2], sum(ts1) / len(ts1), ops1,
        R.frame_size(R.TYPE_SESSION), R.frame_size(R.TYPE_EVENT), R.frame_size(R.TYPE_SUMMARY)])
"""


def run():
    code = _CODE % (
        (TREATMENT_S, EVENTS, TREATMENT_S, TREATMENT_S, EVENTS, TREATMENT_S) + (TREATMENT_S, EVENTS)
    )
    (
        room_med,
        erase_total,
        erase_max,
        per_treatment,
        fitted,
        guarded,
        started,
        reserve_s,
        med,
        p99,
        mean,
        ops,
        alloc,
        alloc_rot,
        med1,
        mean1,
        ops1,
        hdr,
        ev,
        summ,
    ) = mpyrun.run(code, heapsize="8M", timeout=600)
    arithmetic = hdr + TREATMENT_S * 10 * 16 + EVENTS * ev + summ
    return [
        ("bytes per sample record", "16 B (CRC-32 + 16-bit seq included)"),
        ("session header / event / summary record", f"{hdr} B / {ev} B / {summ} B"),
        (
            f"one {TREATMENT_S} s treatment at 10 Hz, {EVENTS} events",
            f"{per_treatment} B on flash ({arithmetic} B of records + segment records)",
        ),
        (
            "treatments per MiB (arithmetic, 1 MiB / bytes per treatment)",
            f"{(1 << 20) // per_treatment}",
        ),
        (
            "treatments logged in a 1 MiB budget (has_room_for guard)",
            f"{fitted} (guard reserves 64 events each)",
        ),
        (
            "treatments that may start in a 1 MiB budget before a pull, under the firmware's "
            "reserve at the default parameters",
            f"{started} (each start reserves room for {reserve_s} s: pre-cool + cycles x (whole "
            "FREEZE max + minimum thaw + thaw allowance) + 60 s)",
        ),
        (
            "block erases per treatment (2 MiB flash, littlefs wear levelling)",
            f"{erase_total / fitted:.0f}; busiest block {erase_max} erases over {fitted} treatments",
        ),
        (
            "treatments until 100k-cycle NOR wear-out (busiest block / even spread)",
            f"{100000 * fitted // max(erase_max, 1)} / {100000 * 512 * fitted // max(erase_total, 1)}",
        ),
        ("sample append, median / p99 / mean (MicroPython unix)", f"{med} / {p99} / {mean:.1f} µs"),
        ("has_room_for check on a full 1 MiB log (median)", f"{room_med} µs"),
        ("bytes allocated per sample append (within a segment)", f"{alloc:.0f} B"),
        ("bytes allocated per sample append (avg incl. rotations)", f"{alloc_rot:.1f} B"),
        ("flash prog+erase ops per sample (commit every 10)", f"{ops:.2f}"),
        (
            "peer: commit every sample, median / mean; ops per sample",
            f"{med1} / {mean1:.1f} µs; {ops1:.2f} ops  (x{ops1 / ops:.1f} flash ops vs default)",
        ),
    ]
