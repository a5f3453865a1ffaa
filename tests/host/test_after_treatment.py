"""After a treatment: the watchdog it armed stays armed until a reset, so
the board refuses service mode (the raw REPL's way in). `cryo reset` asks
the running controller to reset itself; `cryo logs pull` and `cryo config`
do the same before their REPL work. During a treatment both are refused and
the treatment goes on."""

import json
import threading
import time

import pytest
from clirun import cryo

from host_tools.device.link import Link
from host_tools.virtual.board import VirtualBoard

pytestmark = [pytest.mark.sim, pytest.mark.mpy]


def status(port, within=15.0):
    deadline = time.monotonic() + within
    while True:
        try:
            with Link(port, timeout=1.0) as link:
                return link.status()
        except Exception:  # noqa: BLE001 - booting: ask again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture
def board(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYO_LOCK_DIR", str(tmp_path / "locks"))
    vb = VirtualBoard(plant="strong_spray", flash=str(tmp_path / "f.img"), log=lambda m: None)
    vb.open()
    t = threading.Thread(target=vb.serve, daemon=True)
    t.start()
    status(vb.port)
    yield vb
    vb._stop = True
    t.join(5)
    vb.close()


def test_reset_pull_and_config_after_a_treatment_and_not_during_one(board, tmp_path):
    vb, port = board, board.port
    vb.press(handpiece=1, footswitch=1)
    deadline = time.monotonic() + 60
    st = status(port)
    while not (st["phase"] == "FREEZE" and st["valve"]) and time.monotonic() < deadline:
        st = status(port)
    assert st["phase"] == "FREEZE" and st["valve"], st
    # during the treatment: refused, the freeze goes on
    r = cryo("reset", "--port", port, "--json")
    assert r.returncode == 3 and "treatment is running" in json.loads(r.stdout)["error"]
    assert status(port)["phase"] == "FREEZE" and not vb.resets
    vb.press(footswitch=0, handpiece=0)  # the pedal released: the treatment ends
    deadline = time.monotonic() + 30
    while st["phase"] in ("PRECOOL", "FREEZE") and time.monotonic() < deadline:
        st = status(port)
    assert st["phase"] not in ("PRECOOL", "FREEZE") and not st["valve"], st
    # the pull resets the board first (its watchdog is armed), then pulls
    r = cryo("logs", "--port", port, "--archive", str(tmp_path / "a"), "--json", "pull")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["verify"]["ok"]
    assert "watchdog was armed by its last treatment" in r.stderr
    assert [m for _, m in vb.resets if m != "soft"] == ["reset"]
    assert status(port)["phase"] == "IDLE"  # the controller runs again
    r = cryo("config", "--port", port, "--json", "get", "pid.kp")
    assert r.returncode == 0 and isinstance(json.loads(r.stdout)["pid.kp"], float), r.stderr
    # and `cryo reset` on an idle board: through the controller, which comes back
    r = cryo("reset", "--port", port, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["controller_was"] == "running", r.stderr
    assert [m for _, m in vb.resets if m != "soft"] == ["reset", "reset"]
    assert status(port)["phase"] == "IDLE"
