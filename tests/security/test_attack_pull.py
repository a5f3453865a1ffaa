"""`cryo logs pull` from a locked virtual board, over its command link.

The clinic's engineer (PIN) pulls the logs of a provisioned board without
any service unlock: the controller keeps running, no REPL opens, and the
archive is byte for byte what a pull through the raw REPL of the same flash
(here: the stopped board's image, read by another MicroPython) gives,
with the keyed audit trail verified. Without a credential the pull is
refused with a message that says what is needed; the read path never
serves the device's keys.
"""

import json
import os

import pytest
from sec_sim import ENGINEER_PIN

from host_tools import cli
from host_tools.archive.events import DEVICE_DIR
from host_tools.archive.pull import pull
from host_tools.auth import Credentials
from host_tools.device.connect import Session
from host_tools.device.link import Link, LinkInvalid
from host_tools.virtual.port import VirtualPort

# isort: split
from cryo.paths import AUTH_PATH, ROLES_PATH

pytestmark = pytest.mark.sim


def _tree(folder):
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for sub in ("logs", "audit", DEVICE_DIR)
        for p in sorted((folder / sub).rglob("*"))
        if p.is_file()
    }


def test_locked_board_pull_over_the_link(board, tmp_path, capsys, monkeypatch):
    eng = Credentials(pins={"engineer": ENGINEER_PIN}, ask=False)
    with Link(board.port, timeout=3, credentials=eng) as link:
        kp = link.get("pid.kp")
        link.set("pid.kp", kp * 2, role="engineer")
        link.set("pid.kp", kp, role="engineer")
        for secret in (AUTH_PATH, ROLES_PATH, "app/key", "logs/../auth.txt"):
            with pytest.raises(LinkInvalid, match="only the log folder"):
                link.authenticated("read", path=secret, offset=0, role="engineer")
    resets = len(board.resets())

    # no credential on this host: refused, saying what is needed
    monkeypatch.delenv("CRYO_PIN", raising=False)
    keys = os.environ["CRYO_KEYS"]
    monkeypatch.delenv("CRYO_KEYS")
    rc = cli.main(["logs", "--port", board.port, "--archive", str(tmp_path / "x"), "pull"])
    err = capsys.readouterr().err
    assert rc == 4 and "locked" in err and "engineer's PIN" in err, err
    monkeypatch.setenv("CRYO_KEYS", keys)  # the host verifies the keyed trail

    a = (
        tmp_path / "link"
    )  # the PIN on the command line ($CRYO_PIN: tests/security/test_unlock_tools.py)
    rc = cli.main(
        ["logs", "--port", board.port, "--archive", str(a), "--json", "pull", "--pin", ENGINEER_PIN]
    )
    out = capsys.readouterr()
    assert rc == 0, out
    res = json.loads(out.out)
    audit = res["verify"]["audit"]
    assert rc == 0 and audit["ok"] and audit["keyed"] == "sim-0001", res
    assert res["bytes"] > 0 and res["audit_files"]
    with Link(board.port, timeout=3) as link:  # the controller ran on, locked
        assert link.hello()["auth"] is True
    assert len(board.resets()) == resets

    board.stop()
    b = tmp_path / "chip"
    with VirtualPort(image=board.flash) as vp, Session(vp.port, stop_firmware=False) as s:
        ref = pull(s, b, serial=res["serial"])
    assert ref["verify"]["ok"]
    got, want = _tree(a / res["serial"]), _tree(b / res["serial"])
    assert got.keys() == want.keys() and "audit/audit.log" in got, (got.keys(), want.keys())
    assert got == want
