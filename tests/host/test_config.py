"""`cryo config` end to end on a virtual board: round trip, rejection, roles, audit.

Values and messages come from the config schema (cryo/storage/schema.py; it
is the one definition), so the tests follow the schema as it evolves.
"""

import argparse
import json
import shutil

import pytest

from cryo.storage import audit as A
from cryo.storage import config as C
from cryo.storage import schema as S
from host_tools import FIRMWARE_DIR
from host_tools.commands import config, flash
from host_tools.device.connect import Session
from host_tools.errors import AccessDenied, InvalidInput
from host_tools.virtual.port import VirtualPort


def args(cmd, **kw):
    base = dict(config_cmd=cmd, role=None, pin=None, yes=True, json=True, port=None, reset=False)
    base.update(kw)
    return argparse.Namespace(**base)


def inside(name, frac):
    """A valid value of a numeric field, ``frac`` of the way through its range."""
    f = S.field(name)
    v = f[3] + (f[4] - f[3]) * frac
    return int(round(v)) if f[1] == "int" else round(v, 3)


def other_value(name):
    d = S.field(name)[6]
    for frac in (0.25, 0.75, 0.5, 0.0, 1.0):
        if inside(name, frac) != d:
            return inside(name, frac)
    raise AssertionError(name)


def role_of(name):
    return S.field(name)[5]


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """A deployed virtual board (the audit code runs from the app slot)."""
    import os

    d = tmp_path_factory.mktemp("cfgboard")
    old_keystore = os.environ.get("CRYO_KEYSTORE")
    os.environ["CRYO_KEYSTORE"] = str(d / "keys")  # never the user's keystore
    fw = d / "firmware"
    shutil.copytree(FIRMWARE_DIR, fw, ignore=shutil.ignore_patterns("__pycache__"))
    with VirtualPort(flash_dir=d / "flash") as vp, Session(vp.port, stop_firmware=False) as s:
        flash.deploy(s, "sim", firmware_dir=fw, reset=False)
        s.flash_dir = d / "flash"
        run = config.run
        assert (
            run(s, args("pin", role="service", pin="4321", target_role="service", new_pin="4321"))
            == 0
        )
        assert (
            run(s, args("pin", role="service", pin="4321", target_role="engineer", new_pin="2468"))
            == 0
        )
        assert (
            run(s, args("pin", role="service", pin="4321", target_role="operator", new_pin="1357"))
            == 0
        )
        yield s
    if old_keystore is None:
        os.environ.pop("CRYO_KEYSTORE", None)
    else:
        os.environ["CRYO_KEYSTORE"] = old_keystore


PINS = {"service": "4321", "engineer": "2468", "operator": "1357"}


def test_first_pin_only_for_service(mpy, tmp_path):
    with (
        VirtualPort(flash_dir=tmp_path / "flash") as vp,
        Session(vp.port, stop_firmware=False) as s,
    ):
        with pytest.raises(AccessDenied, match="set the service PIN first"):
            config.run(
                s, args("pin", role="engineer", pin="1111", target_role="engineer", new_pin="1111")
            )
        with pytest.raises(AccessDenied, match="no role PINs are set"):
            config.run(s, args("set", role="service", pin="1111", assignments=["pid.kp=0.1"]))


def test_config_round_trip_and_audit(mpy, board, capsys, tmp_path):
    s = board
    capsys.readouterr()
    config.run(s, args("show"))
    shown = json.loads(capsys.readouterr().out)
    assert shown["source"].startswith("factory defaults")
    assert shown["config"] == S.defaults()

    kp, ki = other_value("pid.kp"), other_value("pid.ki")
    role = role_of("pid.kp")
    assert (
        config.run(
            s,
            args("set", role=role, pin=PINS[role], assignments=[f"pid.kp={kp}", "pid.ki", str(ki)]),
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["changed"] == ["pid.ki", "pid.kp"]
    config.run(s, args("get", name="pid.kp"))
    assert json.loads(capsys.readouterr().out) == {"pid.kp": kp}

    # on the device: the CRC'd file format, valid under cryo.storage.config's own loader
    raw = (s.flash_dir / "config.json").read_bytes()
    cfg, version = C.decode(raw)
    assert cfg["pid.kp"] == kp and cfg["pid.ki"] == ki and version == S.SCHEMA_VERSION
    assert S.validate(cfg) == []

    # export → diff: nothing; change one field in the file → diff shows it → apply
    out = tmp_path / "cfg.json"
    config.run(s, args("export", output=out))
    capsys.readouterr()
    config.run(s, args("diff", file=out))
    assert json.loads(capsys.readouterr().out) == []
    exported = json.loads(out.read_text())
    cyc = other_value("protocol.cycles")
    old_cyc = exported["protocol.cycles"]
    exported["protocol.cycles"] = cyc
    out.write_text(json.dumps(exported))
    config.run(s, args("diff", file=out))
    assert json.loads(capsys.readouterr().out) == [
        {"field": "protocol.cycles", "device": old_cyc, "file": cyc}
    ]
    assert config.run(s, args("apply", role="service", pin="4321", file=out)) == 0
    capsys.readouterr()
    assert C.decode((s.flash_dir / "config.json").read_bytes())[0]["protocol.cycles"] == cyc

    # the audit trail on the device: every change, hash chain intact (AuditTrail.verify)
    trail = A.AuditTrail(str(s.flash_dir / "audit.log"))
    assert trail.verify() == []
    kinds = [(e[2], e[3], e[4], e[5], e[6]) for e in trail.entries()]
    assert ("config", role, "pid.kp", S.field("pid.kp")[6], kp) in kinds
    assert ("config", "service", "protocol.cycles", old_cyc, cyc) in kinds
    assert ("pin", "service", "engineer", None, None) in kinds


def test_rejections_leave_the_device_unchanged(mpy, board):
    s = board
    cfgf = s.flash_dir / "config.json"
    before = cfgf.read_bytes() if cfgf.exists() else None
    f = S.field("pid.kp")
    role = role_of("pid.kp")
    too_big = f[4] * 10 + 1
    with pytest.raises(InvalidInput) as e:
        config.run(s, args("set", role=role, pin=PINS[role], assignments=[f"pid.kp={too_big}"]))
    assert S.check_value("pid.kp", float(too_big)) in str(e.value)
    with pytest.raises(InvalidInput, match="is not a number"):
        config.run(s, args("set", role=role, pin=PINS[role], assignments=["pid.kp=fast"]))
    svc = next(x[0] for x in S.FIELDS if x[5] == "service" and x[1] in ("int", "float"))
    with pytest.raises(AccessDenied) as e:
        config.run(
            s, args("set", role="operator", pin="1357", assignments=[f"{svc}={other_value(svc)}"])
        )
    assert str(e.value) == S.check_role(svc, "operator")
    with pytest.raises(AccessDenied, match="wrong PIN"):
        config.run(s, args("set", role="engineer", pin="0000", assignments=["pid.kp=0.06"]))
    with pytest.raises(AccessDenied, match="pass --role"):
        config.run(s, args("set", assignments=["pid.kp=0.06"]))
    after = cfgf.read_bytes() if cfgf.exists() else None
    assert after == before


def test_confirmation_required_without_yes(mpy, board, monkeypatch):
    s = board
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    v = other_value("alarm.volume_pct")
    with pytest.raises(config.NotConfirmed, match="--yes"):
        config.run(
            s,
            args(
                "set", role="service", pin="4321", yes=False, assignments=[f"alarm.volume_pct={v}"]
            ),
        )
