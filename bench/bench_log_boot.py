"""The treatment log's cost at boot against the history on the flash.

Opening the log (``TreatmentLog(...)``, what every boot does before the
first tick) at 1×, 10× and 100× history (3, 30 and 300 sessions of 10 s at
10 Hz, 16 KiB segments, 1 MiB budget) on the emulated NOR flash with littlefs, under the
MicroPython unix port: with the last session closed, and with it cut by a
power loss (the log then closes it as interrupted, with statistics
recomputed from its records). Peer in the same run: recomputing those
statistics from the whole log (``session_stats`` over every segment, what
recovery did before it read only the segments since the session's header).
Target: the open costs the same at every history (ratio ≤ 1.5×). What
still grows is the filesystem's part: listing the segment files and
littlefs's free-space query walk its metadata and allocation, both bounded
by the log budget (at most ``max_bytes // segment_bytes`` files: 64 with
the defaults, reached at about 640 such sessions).
"""

import mpyrun

HISTORIES = (("1×", 3), ("10×", 30), ("100×", 300))

_CODE = """
import vfs, time
from flash import FlashBlockDevice
from cryo.storage.log import TreatmentLog
from cryo.storage import segments as S
from cryo.storage import records as R
HDR = dict(rtc_s=0, rtc_ms=0, fw_version='0.1.0', fw_hash=b'1' * 32, config_hash=b'2' * 32,
           board_id='sim', target_cc=-4000, thaw_cc=0, freeze_ds=300, cycles=3, floor_cc=-6000,
           max_freeze_ds=600, min_thaw_ds=600)
KW = dict(sample_hz=10, segment_bytes=16384, max_bytes=1048576)
ROOT = '/flash/logs'

def session(log, end):
    log.begin_session(HDR, 0)
    i = 0
    while i < 100:
        log.sample(i * 100, -i, -50, -4000, 50, i & 1, 4)
        i += 1
    if end:
        log.end_session(None, 10000)

def us(f):
    t0 = time.ticks_us()
    f()
    return time.ticks_diff(time.ticks_us(), t0)

out = []
for n in %(histories)r:
    dev = FlashBlockDevice(None, 4096, 512)           # 2 MiB, the board default
    vfs.VfsLfs2.mkfs(dev)
    vfs.mount(vfs.VfsLfs2(dev), '/flash')
    log = TreatmentLog(ROOT, **KW)
    k = 0
    while k < n:
        session(log, True)
        k += 1
    log.close()
    clean = sorted(us(lambda: TreatmentLog(ROOT, **KW).close()) for _ in range(5))[2]
    log = TreatmentLog(ROOT, **KW)
    session(log, False)
    log.flush()                                          # power lost here
    img = bytearray(dev.image())
    vfs.umount('/flash')
    def cut_open():
        d = FlashBlockDevice(None, 4096, 512)
        d._ram[:] = img
        vfs.mount(vfs.VfsLfs2(d), '/flash')
        t = us(lambda: TreatmentLog(ROOT, **KW).close())
        vfs.umount('/flash')
        return t
    interrupted = sorted(cut_open() for _ in range(3))[1]
    d = FlashBlockDevice(None, 4096, 512)
    d._ram[:] = img
    vfs.mount(vfs.VfsLfs2(d), '/flash')
    peer = us(lambda: S.session_stats(ROOT, n + 1))
    vfs.umount('/flash')
    out.append([n, clean, interrupted, peer])
result(out)
"""


def run():
    rows = mpyrun.run(
        _CODE % {"histories": [n for _, n in HISTORIES]}, heapsize="16M", timeout=1200
    )
    out = []
    base_clean, base_cut, base_peer = rows[0][1], rows[0][2], rows[0][3]
    for (label, _n), (n, clean, cut, peer) in zip(HISTORIES, rows):
        out.append(
            (
                f"log open at {label} history ({n} sessions): clean / after a power cut",
                f"{clean / 1000:.1f} ms ({clean / base_clean:.2f}× of 1×) / "
                f"{cut / 1000:.1f} ms ({cut / base_cut:.2f}× of 1×)",
            )
        )
        out.append(
            (
                f"  peer: statistics from the whole log at {label}",
                f"{peer / 1000:.1f} ms ({peer / base_peer:.2f}× of 1×)",
            )
        )
    out.append(
        (
            "target",
            "log open flat within 1.5× from 1× to 100× history (the clean open's growth is "
            "littlefs listing and statvfs, bounded by the log budget's segment count)",
        )
    )
    return out
