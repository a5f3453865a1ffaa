"""The host tools on a locked virtual board: during a service unlock, after it.

A service engineer unlocks the board (authenticated `service` over the link,
the service key from $CRYO_KEYS); while the REPL is open the REPL tools
work as on a development board: `cryo config` (a change sealed with the
device key and accepted at the next start), `cryo logs pull`, `cryo flash`
(the deployed slot boots, still locked), mpremote.
`cryo reset` ends the unlock; the locked controller answers the link tools
(`cryo monitor`, `cryo tune apply` with the engineer's PIN). On a host
without the service key the REPL tools are refused again, each saying why.
"""

import json
import os

import pytest
from sec_sim import ENGINEER_PIN, SERVICE_PIN

from host_tools import cli
from host_tools.device.link import Link

pytestmark = pytest.mark.sim


def _cryo(capsys, *argv):
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_tools_during_and_after_a_service_unlock(board, tmp_path, capsys, monkeypatch):
    p = board.port
    with Link(p, timeout=3) as link:
        kp = link.get("pid.kp")
        assert link.service(unlock_s=300)["unlock_s"] == 300
    new_kp = round(kp * 1.5, 4)

    # the unlock: the REPL tools (the controller is stopped, valves closed)
    rc, out, err = _cryo(
        capsys,
        *("config", "--port", p, "--role", "service", "--pin", SERVICE_PIN, "--yes"),
        *("set", f"pid.kp={new_kp}"),
    )
    assert rc == 0, err
    rc, out, err = _cryo(capsys, "config", "--port", p, "--json", "get", "pid.kp")
    assert rc == 0 and str(new_kp) in out, (out, err)
    rc, out, err = _cryo(capsys, "logs", "--port", p, "--archive", str(tmp_path / "a"), "pull")
    assert rc == 0 and "audit ok" in out, (out, err)
    r = board.mpremote("exec", "print(open('auth.txt').read()[:9])")
    assert r.returncode == 0 and "cryo-auth" in r.stdout, r.stderr
    monkeypatch.setenv("CRYO_KEYSTORE", str(tmp_path / "keystore"))
    rc, out, err = _cryo(capsys, "flash", "--port", p, "--no-reset", "--json")
    assert rc == 0, (out, err)
    deployed = json.loads(out)
    assert deployed["switched"] is True and deployed["slot"] in ("a", "b"), deployed

    # the unlock ends with the reset: locked, the sealed change in force
    rc, out, err = _cryo(capsys, "reset", "--port", p)
    assert rc == 0, err
    board.wait_ready()
    with Link(p, timeout=3) as link:
        st = link.status()
        hello = link.hello()
        assert hello["auth"] is True and link.get("pid.kp") == new_kp
    # the new slot booted (verified, else FIRMWARE) with the sealed configuration
    assert not {"config", "firmware"} & set(st["faults"]) and st["config_error"] is None, st
    rc, out, err = _cryo(capsys, "monitor", "--port", p, "--json", "--duration", "1", "--rate", "5")
    frames = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert rc == 0 and frames and "phase" in frames[0] and frames[-1]["summary"]["frames"] > 0, (
        out,
        err,
    )
    monkeypatch.setenv("CRYO_PIN", ENGINEER_PIN)
    rc, out, err = _cryo(capsys, "tune", "apply", "--port", p, "--kp", str(kp), "--ki", "0.01")
    assert rc == 0, err

    # a host without the service key: the REPL tools are refused, clearly
    monkeypatch.delenv("CRYO_KEYS")
    monkeypatch.delenv("CRYO_PIN")
    resets = len(board.resets())
    for argv in (
        ("config", "--port", p, "get", "pid.kp"),
        ("reset", "--port", p),
        ("flash", "--port", p, "--no-reset"),
        ("logs", "--port", p, "--archive", str(tmp_path / "b"), "pull"),
    ):
        rc, out, err = _cryo(capsys, *argv)
        assert rc == 4 and ("service" in err or "locked" in err), (argv, out, err)
    assert len(board.resets()) == resets
    with Link(p, timeout=3) as link:
        assert link.hello()["auth"] is True and "CRYO_KEYS" not in os.environ
    # the running controller resets itself for the engineer's PIN (no REPL,
    # no service key): what a technician needs after a treatment
    rc, out, err = _cryo(capsys, "reset", "--port", p, "--pin", "0000", "--json")
    assert rc == 4 and "wrong credential" in json.loads(out)["error"], out
    assert len(board.resets()) == resets
    rc, out, err = _cryo(capsys, "reset", "--port", p, "--pin", ENGINEER_PIN, "--json")
    assert rc == 0 and json.loads(out)["controller_was"] == "running", (out, err)
    assert len(board.resets()) == resets + 1
