"""A rewritten audit entry on a provisioned virtual board is found by `cryo logs pull`.

The attacker here has the flash contents (chip removal, or a REPL): they
rewrite an audited configuration change and re-hash the whole chain
consistently, but cannot recompute the entries' MACs without the device's
audit key. The pull is the real `cryo logs pull` on the real `cryo sim`.
"""

import json

import pytest
from sec_sim import ENGINEER_PIN

from host_tools import cli
from host_tools.auth import Credentials
from host_tools.device.connect import Session
from host_tools.device.link import Link

# isort: split
from cryo.paths import AUDIT_PATH
from cryo.storage.audit import line_hash

pytestmark = pytest.mark.sim


def _rechain(data: bytes, n: int, new_value) -> bytes:
    out, prev = [], "0" * 64
    for line in data.split(b"\n")[:-1]:
        e = json.loads(line)
        if e[0] == n:
            e[6] = new_value
        e[7] = prev
        line = json.dumps(e, separators=(",", ":")).encode()
        out.append(line)
        prev = line_hash(line)
    return b"\n".join(out) + b"\n"


def _pull(capsys, port, archive):
    """`cryo logs pull --json`: (exit code, its JSON result). A pull that
    fails verification prints its result, then the error, one line each."""
    rc = cli.main(["logs", "--port", port, "--archive", str(archive), "--json", "pull"])
    lines = capsys.readouterr().out.splitlines()
    if rc:
        assert json.loads(lines[-1])["exit_code"] == rc, lines
    return rc, json.loads(lines[0])


def test_rewritten_entry_detected_by_pull(board, tmp_path, capsys):
    creds = Credentials(pins={"engineer": ENGINEER_PIN}, ask=False)
    with Link(board.port, timeout=3, credentials=creds) as link:
        kp = link.get("pid.kp")
        link.set("pid.kp", kp * 2, role="engineer")
        link.set("pid.kp", kp, role="engineer")

    rc, res = _pull(capsys, board.port, tmp_path / "a1")
    audit = res["verify"]["audit"]
    assert rc == 0 and audit["ok"] and audit["keyed"] == "sim-0001", audit

    with Session(board.port) as s:
        data = s.read_file(AUDIT_PATH)
        entries = [json.loads(x) for x in data.split(b"\n")[:-1]]
        target = next(e for e in entries if e[2] == "set" and len(e) == 9)
        forged = _rechain(data, target[0], 0.5)
        s.write_file(AUDIT_PATH, forged)
        s.exec(f"import os; os.remove({AUDIT_PATH + '.head'!r})")

    rc, res = _pull(capsys, board.port, tmp_path / "a2")
    assert rc == 5
    problems = res["verify"]["audit"]["problems"]
    assert problems[0].endswith(
        "entry %d MAC does not match (rewritten without the device key)" % target[0]
    ), problems
