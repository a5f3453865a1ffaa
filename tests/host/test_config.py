"""`cryo config` end to end on a virtual board: round trip, rejection, roles, audit."""

import argparse
import json

import pytest

from cryo.storage import audit as A
from cryo.storage import config as C
from host_tools import config, flash
from host_tools.connect import Session
from host_tools.errors import AccessDenied, InvalidInput
from host_tools.vport import VirtualPort


def args(cmd, **kw):
    base = dict(config_cmd=cmd, role=None, pin=None, yes=True, json=True, port=None)
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """A deployed virtual board (the audit code runs from the app slot)."""
    import os

    d = tmp_path_factory.mktemp("cfgboard")
    os.environ.setdefault("CRYO_KEYSTORE", str(d / "keys"))
    with VirtualPort(flash_dir=d / "flash") as vp, Session(vp.port, stop_firmware=False) as s:
        flash.deploy(s, "sim", reset=False)
        s.flash_dir = d / "flash"
        yield s


def test_pins_config_round_trip_and_audit(mpy, board, capsys, tmp_path):
    s = board
    # factory state: no PINs; only the first service PIN may be set
    with pytest.raises(AccessDenied, match="set the service PIN first"):
        config.run(
            s, args("pin", role="engineer", pin="1111", target_role="engineer", new_pin="1111")
        )
    assert (
        config.run(
            s, args("pin", role="service", pin="4321", target_role="service", new_pin="4321")
        )
        == 0
    )
    assert (
        config.run(
            s, args("pin", role="service", pin="4321", target_role="engineer", new_pin="2468")
        )
        == 0
    )
    capsys.readouterr()

    config.run(s, args("show"))
    shown = json.loads(capsys.readouterr().out)
    assert shown["source"].startswith("factory defaults") and shown["config"]["pid.kp"] == 0.05

    assert (
        config.run(
            s,
            args("set", role="engineer", pin="2468", assignments=["pid.kp=0.07", "pid.ki", "0.02"]),
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["changed"] == ["pid.ki", "pid.kp"]
    config.run(s, args("get", name="pid.kp"))
    assert json.loads(capsys.readouterr().out) == {"pid.kp": 0.07}

    # on the device: D's CRC'd file format, valid under D's own loader
    raw = (s.flash_dir / "config.json").read_bytes()
    cfg, version = C.decode(raw)
    assert cfg["pid.kp"] == 0.07 and cfg["pid.ki"] == 0.02 and version == 2

    # export → apply of the same file: nothing to change; diff shows nothing
    out = tmp_path / "cfg.json"
    config.run(s, args("export", output=out))
    capsys.readouterr()
    config.run(s, args("diff", file=out))
    assert json.loads(capsys.readouterr().out) == []
    exported = json.loads(out.read_text())
    exported["protocol.cycles"] = 3
    out.write_text(json.dumps(exported))
    config.run(s, args("diff", file=out))
    assert json.loads(capsys.readouterr().out) == [
        {"field": "protocol.cycles", "device": 2, "file": 3}
    ]
    # protocol.cycles is an operator field; the engineer role may change it too
    assert config.run(s, args("apply", role="engineer", pin="2468", file=out)) == 0
    capsys.readouterr()
    assert C.decode((s.flash_dir / "config.json").read_bytes())[0]["protocol.cycles"] == 3

    # the audit trail on the device: every change, hash chain intact (D's verifier)
    trail = A.AuditTrail(str(s.flash_dir / "audit.log"))
    assert trail.verify() == []
    kinds = [(e[2], e[3], e[4], e[5], e[6]) for e in trail.entries()]
    assert ("config", "engineer", "pid.kp", 0.05, 0.07) in kinds
    assert ("config", "engineer", "protocol.cycles", 2, 3) in kinds
    assert ("pin", "service", "engineer", None, None) in kinds


def test_rejections_leave_the_device_unchanged(mpy, board, capsys):
    s = board
    if not (s.flash_dir / "roles.txt").exists():
        config.run(
            s, args("pin", role="service", pin="4321", target_role="service", new_pin="4321")
        )
        config.run(
            s, args("pin", role="service", pin="4321", target_role="engineer", new_pin="2468")
        )
    before = (
        (s.flash_dir / "config.json").read_bytes()
        if (s.flash_dir / "config.json").exists()
        else None
    )
    with pytest.raises(
        InvalidInput, match=r"pid.kp = 99 1/degC is out of range: allowed 0 .. 10 1/degC"
    ):
        config.run(s, args("set", role="engineer", pin="2468", assignments=["pid.kp=99"]))
    with pytest.raises(InvalidInput, match="is not a number"):
        config.run(s, args("set", role="engineer", pin="2468", assignments=["pid.kp=fast"]))
    with pytest.raises(
        AccessDenied, match="role engineer may not change limits.floor_c: requires service"
    ):
        config.run(s, args("set", role="engineer", pin="2468", assignments=["limits.floor_c=-70"]))
    with pytest.raises(AccessDenied, match="wrong PIN"):
        config.run(s, args("set", role="engineer", pin="0000", assignments=["pid.kp=0.06"]))
    with pytest.raises(AccessDenied, match="pass --role"):
        config.run(s, args("set", assignments=["pid.kp=0.06"]))
    # cross-field: protocol target below the hard floor in force
    with pytest.raises(InvalidInput, match="rejected"):
        config.run(s, args("set", role="service", pin="4321", assignments=["limits.floor_c=-30"]))
    after = (
        (s.flash_dir / "config.json").read_bytes()
        if (s.flash_dir / "config.json").exists()
        else None
    )
    assert after == before


def test_confirmation_required_without_yes(mpy, board, monkeypatch):
    s = board
    if not (s.flash_dir / "roles.txt").exists():
        config.run(
            s, args("pin", role="service", pin="4321", target_role="service", new_pin="4321")
        )
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    with pytest.raises(config.NotConfirmed, match="--yes"):
        config.run(
            s,
            args("set", role="service", pin="4321", yes=False, assignments=["alarm.volume_pct=60"]),
        )
