"""A locked board's log pull over the command link: read session vs a challenge per read.

The board is the real `cryo sim` (MicroPython running boot.py and main.py,
the controller's channel polled once per 100 ms control tick), provisioned
as in tests/security (engineer PIN, service key). Every file the pull
reads (the log folder and the pull's state files) is read whole, in the
same run, two ways through the real ``host_tools.device.link.Link``:

* the peer: each ``read`` (1 KiB) after its own ``challenge``
  (``Link.authenticated``: two round trips per KiB), as pulls did before
  read sessions;
* ``LinkFiles`` (what ``cryo logs pull`` uses): one read session, one
  round trip per KiB.

Printed as KiB/s and as the ratio. The virtual board's pty has no baud
limit: the figures are bound by the control tick, as on a real board.
"""

import base64
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for sub in ("security", "link", "sim"):
    sys.path.insert(0, str(ROOT / "tests" / sub))
ROUNDS = 2


def _files(src):
    from cryo import paths

    names = [f"{paths.LOG_ROOT}/{n}" for n, _ in src.ls(paths.LOG_ROOT, "")]
    return names + list(paths.PULL_FILES)


def _per_command(link, names):
    from cryo.link.files import READ_MAX

    total = 0
    for name in names:
        offset = 0
        while True:
            r = link.authenticated("read", role="engineer", path=name, offset=offset, n=READ_MAX)
            n = len(base64.b64decode(r["data"]))
            if r["size"] < 0 or not n:
                break
            offset += n
        total += offset
    return total


def _session(src, names):
    src.session.end()  # the peer's challenges ended it on the device: a new one, as a pull opens
    total = 0
    for name in names:
        got = []
        end = src._fetch(name, 0, got.append)
        total += max(end, 0)
    return total


def run():
    import pytest
    from sec_sim import ENGINEER_PIN, ControllerSim, provision

    from host_tools.auth import Credentials
    from host_tools.device.files import LinkFiles
    from host_tools.device.link import Link

    eng = Credentials(pins={"engineer": ENGINEER_PIN}, ask=False)
    with tempfile.TemporaryDirectory() as d, pytest.MonkeyPatch.context() as mp:
        sim = ControllerSim(Path(d))
        try:
            provision(sim, Path(d) / "keys", mp)
            with Link(sim.port, timeout=3, credentials=eng) as link:
                src = LinkFiles(link, "engineer")
                names = _files(src)
                t_peer, t_sess = [], []
                for _ in range(ROUNDS):
                    t0 = time.perf_counter()
                    b_peer = _per_command(link, names)
                    t_peer.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    b_sess = _session(src, names)
                    t_sess.append(time.perf_counter() - t0)
                opened = src.session.opened - 1  # the first listing opened one
        finally:
            sim.stop()
    assert b_peer == b_sess, (b_peer, b_sess)
    kib = b_peer / 1024
    peer, sess = min(t_peer), min(t_sess)
    return [
        ("bytes read per pull (logs + state files)", f"{kib:.1f} KiB in {len(names)} files"),
        ("locked pull, challenge per read (peer)", f"{peer:.2f} s = {kib / peer:.2f} KiB/s"),
        (
            "locked pull, one read session",
            f"{sess:.2f} s = {kib / sess:.2f} KiB/s ({peer / sess:.2f}× the peer; "
            f"{opened} session(s) opened in {ROUNDS} pulls)",
        ),
    ]


if __name__ == "__main__":
    for k, v in run():
        print(f"{k:<45} {v}")
