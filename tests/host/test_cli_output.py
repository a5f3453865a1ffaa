"""What every `cryo` command shows: help on every argument, `--json` on every
command (results and errors), the exit-code table, progress of long operations.

The command table is walked from the parser itself: a new command or option
without help or without `--json` fails here.
"""

import argparse
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys

import pytest

from host_tools import ROOT, cli, errors
from host_tools.commands import output, parsing

# Parsers that only group actions (a sub-action is required) are not commands.
_GROUP = (argparse._SubParsersAction,)


def _is_group(parser):
    return any(isinstance(a, _GROUP) and a.required for a in parser._actions)


COMMANDS = [(p, sp) for p, sp in parsing.parsers(cli.build_parser()) if p and not _is_group(sp)]


def test_the_walk_reaches_every_command():
    names = {" ".join(p) for p, _ in COMMANDS}
    for want in ("sim", "sim panel", "sim run", "flash", "config pin", "logs report", "serve"):
        assert want in names
    assert {"archive query sessions", "keys provision", "tune apply", "reset"} <= names
    assert "tune" not in names and "config" not in names  # groups: an action is required


def test_every_argument_of_every_parser_has_help():
    missing = []
    for path, parser in parsing.parsers(cli.build_parser()):
        for a in parser._actions:
            if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not a.help or not a.help.strip():
                missing.append(f"cryo {' '.join(path)}: {'/'.join(a.option_strings) or a.dest}")
    assert not missing, "arguments without help text:\n" + "\n".join(missing)


def test_every_command_takes_json():
    without = [" ".join(p) for p, sp in COMMANDS if "--json" not in sp._option_string_actions]
    assert not without, f"commands without --json: {without}"


def _readme_exit_codes():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| exit | meaning |") :].split("\n\n")[0]
    return {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M)}


def test_the_readme_exit_code_table_is_the_code_constants():
    constants = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    assert _readme_exit_codes() == constants
    raised = {c.exit_code for c in vars(errors).values() if isinstance(c, type)}
    assert raised <= constants and cli.EXIT_PIPE in constants


def cryo(*argv, env=None, **kw):
    return subprocess.run(
        [sys.executable, "-m", "host_tools.cli", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, **(env or {})),
        timeout=120,
        **kw,
    )


@pytest.mark.parametrize(
    "argv,code",
    [
        (["config", "show", "--port", "/nonexistent/port"], errors.EXIT_DEVICE),
        (["config", "show", "--colour"], errors.EXIT_USAGE),
        (["sim", "run", "--duration", "-5"], errors.EXIT_INVALID),
        (["logs", "export", "1", "--archive", "/nonexistent/archive"], errors.EXIT_INVALID),
    ],
)
def test_json_errors_are_one_object_on_stdout(argv, code):
    human = cryo(*argv)
    assert human.returncode == code and human.stdout == ""
    assert human.stderr.startswith(("cryo: error:", "usage:"))
    p = cryo(*argv, "--json")
    assert p.returncode == code and p.stderr == "", p.stderr
    obj = json.loads(p.stdout)
    assert obj == {"error": obj["error"], "exit_code": code}
    # the same message as the human line
    assert obj["error"].split(" (see `")[0] in human.stderr


def test_json_results_carry_the_human_data(tmp_path):
    panel = tmp_path / "panel.json"
    panel.write_text("")  # as `cryo sim` creates it: an empty panel
    p = cryo("sim", "panel", str(panel), "--handpiece", "1", "--estop", "1")
    assert p.returncode == 0 and p.stdout.strip() == f"{panel}: estop 1, handpiece 1"
    p = cryo("sim", "panel", str(panel), "--footswitch", "0", "--json")
    assert json.loads(p.stdout) == {"estop": 1, "footswitch": 0, "handpiece": 1}
    uf2 = tmp_path / "fw.uf2"
    uf2.write_bytes(b"UF2\n" + bytes(508))
    p = cryo("flash", "--board", "rp2040", "--dry-run", "--runtime", str(uf2), "--json")
    res = json.loads(p.stdout)
    assert p.returncode == 0 and res["dry_run"] and res["then"] == "cryo flash --board rp2040"
    human = cryo("flash", "--board", "rp2040", "--dry-run", "--runtime", str(uf2)).stdout
    lines = [f"would run: {s}" for s in res["steps"]] + [f"then: {res['then']} (deploy the app)"]
    assert lines == human.splitlines()[: len(lines)]
    for path, size in res["app"]["slot"].items():
        assert f"  {path}  {size} B" in human.splitlines()


# -- progress ----------------------------------------------------------------
class _Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _args(as_json=False):
    return argparse.Namespace(json=as_json)


def test_progress_without_a_terminal_is_a_plain_line_every_period(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(output.time, "monotonic", clock)
    with output.Progress(_args(), "pull", unit="bytes") as bar:
        bar.total(1000)
        bar.advance(100)
        assert capsys.readouterr().err == ""  # a short operation stays quiet
        clock.t += output.PLAIN_EVERY_S
        bar.advance(400)
        clock.t += 0.5
        bar.advance(100)  # within the period: no line
        clock.t += output.PLAIN_EVERY_S
        bar.advance(100)
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "pull: 50% (500 of 1000 bytes), 2 s",
        "pull: 70% (700 of 1000 bytes), 4 s",
        "pull: done, 70% (700 of 1000 bytes), 4 s",
    ]


def test_progress_counts_with_a_note_and_is_silent_in_json_mode(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(output.time, "monotonic", clock)
    with output.Progress(_args(), "autotune") as bar:
        clock.t += 3
        bar.update(completed=4, note="relay cycles")
    assert capsys.readouterr().err.splitlines()[0] == "autotune: relay cycles 4, 3 s"
    with output.Progress(_args(as_json=True), "autotune") as bar:
        clock.t += 30
        bar.update(completed=9, note="relay cycles")
    with pytest.raises(RuntimeError):
        with output.Progress(_args(), "pull") as bar:
            clock.t += 30
            bar.advance(5)
            capsys.readouterr()
            raise RuntimeError  # a failed operation: no "done" line
    assert capsys.readouterr().err == ""


def test_a_long_call_that_reports_nothing_is_shown_alive(monkeypatch, capsys):
    import time

    monkeypatch.setattr(output, "PLAIN_EVERY_S", 0.2)
    with output.Progress(_args(), "report", note="rendering"):
        time.sleep(1.0)  # one long call (matplotlib), no updates of its own
    err = capsys.readouterr().err.splitlines()
    assert len(err) >= 2 and err[-1].startswith("report: done, ")
    assert all(re.fullmatch(r"report: rendering, \d+ s", line) for line in err[:-1]), err
    with output.Progress(_args(as_json=True), "report", note="rendering"):
        time.sleep(0.5)
    assert capsys.readouterr().err == ""


def _reindexable_archive(tmp_path, devices):
    from host_tools.virtual.port import write_demo_treatment

    board = tmp_path / "board"
    write_demo_treatment(flash_dir=board, seconds=5, sessions=1)
    for i in range(devices):
        shutil.copytree(board / "logs", tmp_path / "archive" / f"dev{i}" / "logs")
    return tmp_path / "archive"


def test_progress_on_a_terminal_is_a_rich_bar_on_stderr(mpy, tmp_path):
    archive = _reindexable_archive(tmp_path, 3)
    leader, follower = pty.openpty()
    p = subprocess.Popen(
        [sys.executable, "-m", "host_tools.cli", "archive", "--archive", str(archive), "reindex"],
        stdout=subprocess.PIPE,
        stderr=follower,
        cwd=ROOT,
        text=True,
    )
    os.close(follower)
    screen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        screen += chunk
    out, _ = p.communicate(timeout=60)
    os.close(leader)
    assert p.returncode == 0
    assert out.startswith("re-indexed 3 devices")
    text = screen.decode(errors="replace")
    assert "reindex" in text and "3/3" in text, text


def test_json_mode_prints_only_the_result(mpy, tmp_path):
    archive = _reindexable_archive(tmp_path, 2)
    p = cryo("archive", "--archive", str(archive), "--json", "reindex")
    assert p.returncode == 0 and p.stderr == ""
    (line,) = p.stdout.splitlines()
    assert [d["sessions"] for d in json.loads(line)] == [1, 1]


def test_on_a_board_json_and_human_output_agree(mpy, tmp_path):
    """Through real mpremote on the virtual board: with --json one line on
    stdout and nothing on stderr (no progress), carrying what the text says."""
    from host_tools import FIRMWARE_DIR
    from host_tools.virtual.port import VirtualPort

    fw = tmp_path / "firmware"  # a snapshot: firmware/ may change while the test runs
    shutil.copytree(FIRMWARE_DIR, fw, ignore=shutil.ignore_patterns("__pycache__"))
    with VirtualPort(flash_dir=tmp_path / "flash") as vp:
        dry = ("flash", "--port", vp.port, "--firmware", str(fw), "--dry-run")
        p = cryo(*dry, "--json")
        assert p.returncode == 0 and p.stderr == "", p.stderr
        (line,) = p.stdout.splitlines()
        plan = json.loads(line)
        assert plan["dry_run"] and plan["provision_key"] and plan["transfer"]
        human = cryo(*dry)
        assert human.returncode == 0 and f"deploy {plan['version']}" in human.stdout
        row = re.search(r"transfer\s*│\s*(\d+)\s*│", human.stdout)
        assert row and int(row.group(1)) == len(plan["transfer"])

        p = cryo("config", "--port", vp.port, "get", "pid.kp", "--json")
        assert p.returncode == 0 and p.stderr == ""
        kp = json.loads(p.stdout)["pid.kp"]
        human = cryo("config", "--port", vp.port, "get", "pid.kp")
        assert float(human.stdout) == pytest.approx(kp)

        p = cryo("reset", "--port", vp.port, "--json")
        assert p.returncode == 0 and p.stderr == "", p.stderr
        res = json.loads(p.stdout)
        assert res["port"] == vp.port and res["reset"]
