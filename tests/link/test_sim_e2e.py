"""End to end on B's real-time virtual board: `cryo sim` runs boot.py and
E's main.py (controller + this channel on the console), the host tools open
its pty like a USB serial port.

Gap: in real-time mode nothing can start a treatment from the host (no
front-panel start on the virtual board yet), so these runs are IDLE; the
treatment-time behaviour is covered by test_real_controller.py (same
controller, virtual time) and test_e2e.py (rig loop on a pty-less pipe).
"""

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from host_tools import ROOT, cli
from host_tools.link import Link, LinkDenied, LinkError, request_service_mode

pytestmark = pytest.mark.sim


class Sim:
    def __init__(self, tmp_path):
        self.err = open(tmp_path / "sim.err", "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "host_tools.cli",
                "sim",
                "--flash",
                str(tmp_path / "f.img"),
                "--link",
                str(tmp_path / "port"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
        )
        m = re.search(r"(/dev/pts/\d+)", self.proc.stdout.readline())
        assert m, "cryo sim did not print its port"
        self.port = m.group(1)
        deadline = time.monotonic() + 30
        while True:  # boot.py + main.py: wait until the channel answers
            try:
                with Link(self.port, timeout=1) as link:
                    self.hello = link.hello()
                    return
            except LinkError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


@pytest.fixture
def sim(tmp_path, mpy):  # mpy: the board is the real MicroPython unix port
    s = Sim(tmp_path)
    yield s
    s.stop()


def test_monitor_on_the_virtual_board(sim, capsys):
    rc = cli.main(["monitor", "--port", sim.port, "--rate", "5", "--duration", "3", "--json"])
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert rc == 0
    summary = lines[-1]["summary"]
    # real-time ticks: each frame goes out at the first tick after it is due
    assert 4.0 <= summary["device_rate_hz"] <= 6.0, summary
    assert summary["gaps"] == 0 and summary["bad_frames"] == 0
    tel = lines[:-1]
    assert {t["phase"] for t in tel} == {"IDLE"}
    assert set(tel[-1]["temps"]) == {"tissue", "tissue2", "aux"}
    assert all(20 < t["temps"]["tissue"] < 40 for t in tel)  # skin at rest


def test_parameters_and_service_mode_on_the_virtual_board(sim):
    with Link(sim.port, timeout=3) as link:
        assert sim.hello["proto"] == 1
        kp = link.get("pid.kp")
        assert link.set("pid.kp", kp * 2, role="engineer") == kp * 2
        assert link.get("pid.kp") == kp * 2
        with pytest.raises(LinkDenied, match="needs role engineer"):
            link.set("pid.kp", 0.1, role="operator")
    assert request_service_mode(sim.port, role="engineer", timeout=3)["service"] is True
    time.sleep(0.5)
    with Link(sim.port, timeout=1) as link, pytest.raises(LinkError, match="no reply"):
        link.status()  # the loop has stopped: the console belongs to the REPL now
