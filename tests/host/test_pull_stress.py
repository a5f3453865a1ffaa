"""Full pulls under CPU load through every port form: none fails, all byte-identical.

The real-time virtual board (`cryo sim`, the firmware's controller running)
serves its flash through the pty it prints (``/dev/pts/N``), the ``--link``
symlink to it, and ``socket://`` (``--tcp``). Meanwhile two busy-loop
processes keep both cores of the machine occupied, so the board, its relay
and the host tool all get preempted — the situation in which bytes used to
be lost. Each pull is the `cryo logs pull` command into a fresh archive; a
second pull into the last archive copies no treatment-log byte again.

``CRYO_STRESS_PULLS`` pulls per port form (default 10, what `make test`
runs; `make stress` runs 100).
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from host_tools import ROOT
from host_tools.virtual.board import VirtualBoard
from host_tools.virtual.port import write_demo_treatment

pytestmark = [pytest.mark.sim, pytest.mark.mpy]

PULLS = int(os.environ.get("CRYO_STRESS_PULLS", "10"))
BURN = "import time\nt = time.monotonic() + %d\nwhile time.monotonic() < t: pass\n"


def _pull(port, archive):
    return subprocess.run(
        [sys.executable, "-m", "host_tools.cli", "logs", "--port", port]
        + ["--archive", str(archive), "--json", "pull"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
    )


def _archive_bytes(archive: Path) -> tuple[dict, bytes]:
    """The treatment log segments, and the audit trail (which grows: every
    service-mode request is audited)."""
    (dev,) = [p for p in archive.iterdir() if p.is_dir()]
    segs = {p.name: p.read_bytes() for p in sorted((dev / "logs").glob("seg*.bin"))}
    return segs, (dev / "audit" / "audit.log").read_bytes()


@pytest.fixture(scope="module")
def loaded_board(tmp_path_factory):
    d = tmp_path_factory.mktemp("stress")
    img = d / "flash.img"
    write_demo_treatment(image=img, seconds=200, sessions=3)  # ~100 KB of log
    vb = VirtualBoard(flash=str(img), link=str(d / "port"), tcp=0, log=lambda m: None)
    vb.open()
    t = threading.Thread(target=vb.serve, daemon=True)
    t.start()
    time.sleep(2.0)  # boot.py, main.py: the controller is up
    burners = [
        subprocess.Popen([sys.executable, "-c", BURN % (PULLS * 60 + 120)]) for _ in range(2)
    ]
    try:
        yield vb, d
    finally:
        for b in burners:
            b.kill()
            b.wait()
        vb._stop = True
        t.join(5)
        vb.close()


@pytest.mark.parametrize("form", ["link", "pts", "socket"])
def test_full_pulls_under_load_are_all_byte_identical(loaded_board, form):
    vb, d = loaded_board
    port = {"link": str(d / "port"), "pts": vb.port, "socket": vb.tcp.url}[form]
    reference = None
    trail = b""
    failures = []
    retries = 0
    arch = d / f"archive-{form}"
    for i in range(PULLS):
        shutil.rmtree(arch, ignore_errors=True)
        p = _pull(port, arch)
        if p.returncode != 0:
            failures.append((i, p.returncode, p.stderr.strip()[-300:]))
            continue
        assert "Traceback" not in p.stderr
        res = json.loads(p.stdout)
        assert res["verify"]["ok"] and res["verify"]["complete_sessions"] == [1, 2, 3]
        retries += res["retries"]
        got, audit = _archive_bytes(arch)
        reference = reference or got
        assert got == reference, f"pull {i} through {form} differs from the first"
        assert audit.startswith(trail), "the audit trail pulled earlier is a prefix"
        trail = audit
    assert not failures, f"{len(failures)}/{PULLS} pulls through {form} failed: {failures[:3]}"
    assert sum(len(b) for b in reference.values()) > 90_000
    again = _pull(port, arch)  # the same archive: nothing new on the device
    assert again.returncode == 0, again.stderr
    res = json.loads(again.stdout)
    # no treatment-log byte again; only what the last pull's own service-mode
    # request and controller restart added (an audit entry, a boot event)
    assert res["files"] == {} and res["verify"]["ok"]
    assert set(res["audit_files"]) <= {"audit.log", "audit.log.head"}
    assert res["audit_files"].get("audit.log", 0) < 1000
    print(f"{form}: {PULLS}/{PULLS} full pulls identical under load, {retries} frames retried")
