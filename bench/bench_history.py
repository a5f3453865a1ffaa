"""Cost against history: pull of one new session, `cryo logs list`, the log's room check.

The same board at 1×, 10× and 100× history (3, 30 and 300 sessions of
10 s, written by the firmware's TreatmentLog under MicroPython onto the
littlefs flash image; the archive holds all of it from an earlier pull).
Then one new session is logged and pulled, and the archive listed (what
`cryo logs list` does: an incremental pull, then the session rows).
Target: flat within 1.5× from 1× to 100×.

The room check (``TreatmentLog.has_room_for``, called once a second at the
controller's idle point) is timed under MicroPython on the littlefs image
at each history, beside the filesystem query (``os.statvfs``) it used to
make on every call. Target: O(1).
"""

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HISTORIES = (("1×", 3), ("10×", 30), ("100×", 300))

ROOM = """
import sys, time
sys.path.insert(0, %(fw)r)
from cryo.storage.log import TreatmentLog
log = TreatmentLog('logs', sample_hz=10, segment_bytes=16384, max_bytes=%(max_bytes)d)
def med(f, n=41):
    ts = []
    for _ in range(n):
        t0 = time.ticks_us()
        f()
        ts.append(time.ticks_diff(time.ticks_us(), t0))
    ts.sort()
    return ts[n // 2]
import os
print('@@ROOM@@', med(lambda: log.has_room_for(2540)), med(lambda: os.statvfs('logs')))
"""


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def _room(img: Path) -> tuple[int, int]:
    from host_tools import FIRMWARE_DIR
    from host_tools.interpreter import micropython_exe
    from host_tools.virtual.port import _startup

    code = _startup(img, 512) + ROOM % {"fw": str(FIRMWARE_DIR), "max_bytes": 2 * 1024 * 1024}
    p = subprocess.run(
        [micropython_exe(), "-X", "heapsize=8M", "-c", code],
        capture_output=True,
        text=True,
        cwd=str(img.parent),
        timeout=300,
    )
    for ln in p.stdout.splitlines():
        if ln.startswith("@@ROOM@@"):
            a, b = ln.split()[1:]
            return int(a), int(b)
    raise RuntimeError("room check bench failed: " + p.stdout[-500:] + p.stderr[-500:])


def run():
    from host_tools.archive import pull as archive_pull
    from host_tools.archive import reader as archive_reader
    from host_tools.device.connect import Session
    from host_tools.virtual.port import VirtualPort, write_demo_treatment

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_history_"))
    figures = {}
    try:
        for label, sessions in HISTORIES:
            img = tmp / label / "flash.img"
            write_demo_treatment(image=img, seconds=10, sessions=sessions)
            arch = tmp / label / "archive"
            with VirtualPort(image=img) as vp, Session(vp.port, stop_firmware=False) as s:
                archive_pull.pull(s, arch, mark=False)  # the history, archived before
            # One new session, pulled; three times (the median: one run on a
            # shared machine can land on another process's burst).
            t_pulls = []
            for k in range(1, 4):
                write_demo_treatment(image=img, seconds=10, sessions=1)
                with VirtualPort(image=img) as vp, Session(vp.port, stop_firmware=False) as s:
                    t0 = time.perf_counter()
                    r = archive_pull.pull(s, arch, mark=False)
                    t_pulls.append(time.perf_counter() - t0)
                    done = r["verify"]["complete_sessions"]
                    assert r["verify"]["ok"] and len(done) == sessions + k
            t_pull = _median(t_pulls)
            with VirtualPort(image=img) as vp, Session(vp.port, stop_firmware=False) as s:
                t_list = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    res = archive_pull.pull(s, arch, mark=False)
                    got = archive_reader.session_rows(Path(res["archive"]))
                    t_list.append(time.perf_counter() - t0)
                assert len(got) == sessions + 3
            room, statvfs = _room(img)
            figures[label] = (t_pull, _median(t_list), room, statvfs, r["bytes"])
        base = figures["1×"]
        for label, sessions in HISTORIES:
            t_pull, t_list, room, statvfs, nbytes = figures[label]
            rows.append(
                (
                    f"{label} history ({sessions} sessions): pull one new session (median of 3)",
                    f"{t_pull * 1000:.0f} ms ({nbytes} B), {t_pull / base[0]:.2f}× of 1×",
                )
            )
            rows.append(
                (
                    f"{label} history: cryo logs list's work, in process (pull + rows, median of 3)",
                    f"{t_list * 1000:.0f} ms, {t_list / base[1]:.2f}× of 1× (target ≤ 1.5×)",
                )
            )
            rows.append(
                (
                    f"{label} history: room check has_room_for, at the idle point once a second "
                    "(MicroPython, median)",
                    f"{room} µs (os.statvfs it used to call: {statvfs} µs)",
                )
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows
