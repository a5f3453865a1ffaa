"""A configuration edited on the flash of a provisioned virtual board is refused.

The attacker has the flash chip (here: the board is stopped and its littlefs
image is mounted by another MicroPython, as a chip reader would): they
double a gain in ``config.json`` and redo its CRC, but cannot redo its MAC
without the device key. At the next start the real firmware (`cryo sim`)
refuses that configuration - CONFIG active, the reason in its status, no
experiment or treatment starts - and does not fall back to its last known
good copy. An engineer's authenticated ``save`` over the link writes a
sealed file again, which the next start accepts.
"""

import pytest
from sec_sim import ENGINEER_PIN, ControllerSim

from host_tools import cli
from host_tools.auth import Credentials
from host_tools.device.connect import Session
from host_tools.device.link import Link, LinkError
from host_tools.virtual.port import VirtualPort

# isort: split
from cryo.paths import CONFIG_PATH
from cryo.storage import config as C

pytestmark = pytest.mark.sim


def _chip(flash, edit):
    """The flash image read and written outside the firmware."""
    with VirtualPort(image=flash) as vp, Session(vp.port, stop_firmware=False) as s:
        data = s.read_file(CONFIG_PATH)
        new = edit(data)
        if new is not None:
            s.write_file(CONFIG_PATH, new)
    return data


def _double_kp(data):
    cfg, _ = C.decode(data)
    cfg["pid.kp"] = cfg["pid.kp"] * 2
    head, body = C.encode(cfg).split(b"\n", 1)
    mac = data.split(b"\n", 1)[0].split(b" ")[4:]  # the old MAC, kept
    return b" ".join([head] + mac) + b"\n" + body


def _restart(sim, tmp_path):
    sim.stop()
    (tmp_path / "port").unlink(missing_ok=True)
    return ControllerSim(tmp_path)


def test_config_edited_on_the_flash_is_refused_until_an_authenticated_save(
    board, tmp_path, monkeypatch
):
    eng = Credentials(pins={"engineer": ENGINEER_PIN}, ask=False)
    with Link(board.port, timeout=3, credentials=eng) as link:
        default_kp = link.get("pid.kp")
        link.set("pid.kp", round(default_kp * 1.25, 5), role="engineer")
        link.save(role="engineer")  # sealed by the device
    assert cli.main(["reset", "--port", board.port]) == 0
    board.wait_ready()  # loads it, and keeps it as the last known good copy
    with Link(board.port, timeout=3) as link:
        st = link.status()
        kp = link.get("pid.kp")
    assert "config" not in st["faults"] and st["config_error"] is None, st
    assert kp != default_kp
    board.stop()
    sealed = _chip(board.flash, _double_kp)
    assert len(sealed.split(b"\n", 1)[0].split(b" ")) == 5  # the device sealed it

    sim = _restart(board, tmp_path)
    try:
        with Link(sim.port, timeout=3, credentials=eng) as link:
            st = link.status()
            assert "config" in st["faults"], st
            assert "config.json: refused: its MAC does not verify" in st["config_error"], st
            assert "authenticated save" in st["config_error"], st
            # neither the forged value nor the last known good copy's: the
            # built-in defaults that keep the link up, with treatment blocked
            assert link.get("pid.kp") == default_kp
            with pytest.raises(LinkError, match="state is FAULT"):
                link.autotune("start", role="engineer")
            assert link.status()["phase"] == "FAULT"
            link.save(role="engineer")  # the authenticated rewrite
        assert cli.main(["reset", "--port", sim.port]) == 0
        sim.wait_ready()
        with Link(sim.port, timeout=3) as link:
            st = link.status()
        assert "config" not in st["faults"] and st["config_error"] is None, st
    finally:
        sim.stop()
    saved = _chip(sim.flash, lambda data: None)
    assert C.decode(saved)[0]["pid.kp"] == default_kp  # what the engineer saved
