"""Every `cryo` subcommand against bad input: no traceback, only documented exit codes.

The command table is walked from the parser itself, so a new subcommand is
covered without touching this file. For each: an unknown option, required
arguments filled with junk / missing files, an absent port, a port another
`cryo` process holds (its lock), and its help through a closed pipe.
Documented exit codes (README): 0 ok, 1 not confirmed, 2 usage, 3 device
(none, port busy, booting, link lost), 4 role/PIN, 5 invalid value/file,
6 mismatch.
"""

import argparse
import os
import re
import subprocess
import sys

import pytest
from clirun import cryo

from host_tools import ROOT, cli
from host_tools.device import portlock

DOCUMENTED = {0, 1, 2, 3, 4, 5, 6}
# `cryo sim` without `run`/`panel` starts a board and serves until stopped
SKIP = {("sim",)}


def _leaves(parser, path=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if path and path not in SKIP:
        yield path, parser
    for sp in subs:
        for name, child in sp.choices.items():
            yield from _leaves(child, path + (name,))


LEAVES = [
    (p, sp)
    for p, sp in _leaves(cli.build_parser())
    if not any(isinstance(a, argparse._SubParsersAction) and a.required for a in sp._actions)
]


def _junk(action, missing):
    if action.choices:
        return str(list(action.choices)[0])
    if action.type is int:
        return "7"
    if action.type is float:
        return "-5"
    return str(missing)


def _argv(path, parser, missing):
    argv = list(path)
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction) or a.help == argparse.SUPPRESS:
            continue
        if not a.option_strings:
            n = 1 if a.nargs in (None, 1) else 2 if a.nargs in ("+", "*") else 1
            argv += [_junk(a, missing)] * n
        elif a.required:
            argv += [a.option_strings[0], _junk(a, missing)]
    return argv


# A plain progress line of an operation that ran over 2 s (commands/output.py)
_PROGRESS = re.compile(r"^(?!cryo:)[a-z][a-z ]*: .*\b\d+ s$")


def _without_progress(err):
    return "".join(ln for ln in err.splitlines(True) if not _PROGRESS.match(ln.rstrip("\n")))


def _port(parser, port):
    # commands that work on the archive alone (logs export) take no --port
    return ["--port", str(port)] if "--port" in parser._option_string_actions else []


def _run(argv, capsys):
    try:
        rc = cli.main(argv)
    except SystemExit as e:
        rc = e.code
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYO_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("CRYO_ARCHIVE", str(tmp_path / "archive"))
    monkeypatch.setenv("CRYO_KEYS", str(tmp_path / "keys"))  # never the user's key directory
    monkeypatch.chdir(tmp_path)


def test_the_walk_covers_the_commands():
    names = {p[0] for p, _ in LEAVES}
    assert {"config", "logs", "monitor", "tune", "flash", "reset", "sim"} <= names
    assert ("logs", "report") in {p for p, _ in LEAVES} and ("sim", "run") in {p for p, _ in LEAVES}


@pytest.mark.parametrize("path,parser", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_bad_input_gives_one_line_and_a_documented_code(path, parser, tmp_path, capsys):
    rc, out, err = _run(list(path) + ["--no-such-option"], capsys)
    assert rc == 2 and "Traceback" not in err
    missing = tmp_path / "missing" / "file.json"
    absent = tmp_path / "no-such-port"
    rc, out, err = _run(_argv(path, parser, missing) + _port(parser, absent), capsys)
    err = _without_progress(err)
    assert rc in DOCUMENTED - {0} or (rc == 0 and not err), (rc, err)
    assert "Traceback" not in err and "Traceback" not in out
    if rc:
        assert err.startswith("cryo: error:") or err.startswith("usage:"), err
        assert len(err.strip().splitlines()) <= 2 or err.startswith("usage:"), err


@pytest.mark.parametrize("path,parser", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_bad_input_with_json_gives_json_lines_only(path, parser, tmp_path, capsys):
    import json

    for argv in (
        list(path) + ["--no-such-option", "--json"],
        _argv(path, parser, tmp_path / "missing" / "f.json")
        + _port(parser, tmp_path / "no-such-port")
        + ["--json"],
    ):
        rc, out, err = _run(argv, capsys)
        assert rc in DOCUMENTED and err == "", (argv, rc, err)
        lines = [json.loads(line) for line in out.splitlines()]
        if rc:
            assert lines[-1] == {"error": lines[-1]["error"], "exit_code": rc}, lines
        else:
            assert lines and "error" not in lines[-1]


@pytest.mark.parametrize("path,parser", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_a_port_held_by_another_cryo_is_reported_busy(path, parser, tmp_path, capsys):
    port = tmp_path / "port"
    port.write_text("")  # a device node stand-in: the lock is taken before opening
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from host_tools.device import portlock\n"
            "portlock.COMMAND[:] = ['cryo', 'monitor']\n"
            f"portlock.acquire({str(port)!r}); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        argv = _argv(path, parser, tmp_path / "missing.json") + _port(parser, port)
        rc, out, err = _run(argv, capsys)
    finally:
        holder.kill()
        holder.wait()
    assert "Traceback" not in err and rc in DOCUMENTED
    if "--port" in parser._option_string_actions:
        assert rc == 3 and f"port busy: `cryo monitor` (pid {holder.pid})" in err, err


def _closed_pipe(*argv):
    """Run the CLI with its output going to `| head` that already exited."""
    p = subprocess.Popen(
        [sys.executable, "-m", "host_tools.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    return p.returncode, _without_progress(err)


@pytest.mark.parametrize(
    "cmd", [["--help"], ["logs", "--help"], ["config", "show", "--help"], ["logs", "list", "-h"]]
)
def test_a_closed_pipe_is_not_a_traceback(cmd, tmp_path):
    rc, err = _closed_pipe(*cmd)
    assert rc == 0 and err == "", (rc, err)  # README: 0 when the reader went away


def test_closed_pipe_on_a_long_listing(mpy, tmp_path):
    import shutil

    from host_tools.virtual.port import write_demo_treatment

    board = tmp_path / "board"
    write_demo_treatment(flash_dir=board, seconds=5, sessions=40)
    shutil.copytree(board / "logs", tmp_path / "archive" / "dev" / "logs")
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "host_tools.cli",
            "logs",
            "--archive",
            str(tmp_path / "archive"),
            "--json",
            "list",
            "--offline",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    p.stdout.read(10)
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=60)
    assert "Traceback" not in err and p.returncode == 0, err
    assert portlock.holder(str(tmp_path)) is None


@pytest.mark.parametrize(
    "url,problem",
    [
        ("socket://127.0.0.1", "no TCP port"),
        ("socket://127.0.0.1:99999", "TCP port '99999' is not a number 1..65535"),
        ("socket://127.0.0.1:0", "TCP port '0' is not a number 1..65535"),
        ("socket://127.0.0.1:http", "TCP port 'http' is not a number 1..65535"),
        ("socket://:4000", "no host"),
        ("rfc2217://box", "no TCP port"),
        ("rfc2217://box:70000", "TCP port '70000' is not a number 1..65535"),
        ("rfc2217://box:4000/ttyS0", "unexpected path '/ttyS0'"),
    ],
)
def test_a_malformed_network_port_is_named_with_the_allowed_form(url, problem):
    scheme = url.split("://")[0]
    for argv, env in (
        (["config", "--port", url, "show"], {}),
        (["logs", "pull"], {"CRYO_PORT": url}),
    ):
        p = cryo(*argv, env=env, timeout=60)
        assert p.returncode == 5 and p.stdout == "", (p.returncode, p.stderr)
        given = "--port " if not env else "CRYO_PORT="
        assert p.stderr == (
            f"cryo: error: {given}{url}: {problem}; expected {scheme}://HOST:PORT "
            "with PORT 1..65535\n"
        )


# -- on a running board: closed pipes, and a board that goes away -------------
@pytest.fixture
def board(tmp_path, mpy):  # mpy: the board is the real MicroPython unix port
    from sim_harness import ControllerSim

    d = tmp_path / "board"  # beside the test's archive and locks (its cwd)
    d.mkdir()
    s = ControllerSim(d)
    yield s
    s.stop()


def _left_as_found(board):
    """The port is free again and the controller still answers."""
    from host_tools.device.link import Link

    assert portlock.holder(board.port) is None
    with Link(board.port, timeout=2) as link:
        link.await_controller()
        assert link.hello()


@pytest.mark.parametrize(
    "cmd",
    [["monitor", "--json", "--duration", "3"], ["config", "show"], ["logs", "events"]],
    ids=" ".join,
)
def test_a_closed_pipe_on_a_board_is_exit_0_and_leaves_it_running(board, cmd):
    rc, err = _closed_pipe(*cmd, "--port", board.port)
    assert rc == 0 and err == "", (rc, err)
    _left_as_found(board)


def _wait_for_the_lock(port, proc, timeout=30):
    import time

    deadline = time.monotonic() + timeout
    while portlock.holder(port) is None and proc.poll() is None:
        assert time.monotonic() < deadline, "the command never took the port"
        time.sleep(0.05)


def _start(*argv):
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    return subprocess.Popen([sys.executable, "-m", "host_tools.cli", *argv], **pipes)


def _one_lost_link_line(proc, as_json):
    import json

    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "Traceback" not in out + err, (proc.returncode, err)
    if as_json:
        last = json.loads(out.splitlines()[-1])
        assert err == "" and last["exit_code"] == 3 and " lost: " in last["error"], out
    else:
        (line,) = _without_progress(err).splitlines()
        assert line.startswith("cryo: error: link to ") and " lost: " in line, err


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "live view"])
def test_a_board_gone_during_monitor_is_a_lost_link(board, as_json):
    """`cryo sim` killed mid-monitor (the USB cable pulled): exit 3, one
    line, never a summary of a run that quietly stopped."""
    import signal
    import time

    argv = ["monitor", "--port", board.port, "--duration", "60"] + ["--json"] * as_json
    p = _start(*argv)
    if as_json:
        for _ in range(3):  # frames are flowing
            assert p.stdout.readline().startswith('{"')
    else:
        _wait_for_the_lock(board.port, p)
        time.sleep(1.5)
    os.kill(board.proc.pid, signal.SIGKILL)
    _one_lost_link_line(p, as_json)


def test_a_silent_board_during_monitor_is_a_lost_link(board):
    """The port stays but telemetry stops (the board's interpreter killed:
    a hang, or a reset that ends the stream): exit 3 after a few seconds."""
    import signal

    p = _start("monitor", "--port", board.port, "--json")
    assert p.stdout.readline().startswith('{"')
    for pid in board.children:
        os.kill(pid, signal.SIGKILL)
    _one_lost_link_line(p, True)


def test_a_port_gone_during_logs_pull_is_a_lost_link(tmp_path, mpy):
    """The board's port disappears in the middle of a pull: exit 3, one line."""
    import threading

    from host_tools.virtual.port import VirtualPort, write_demo_treatment

    class Unplugged(VirtualPort):
        sent = 0

        def _from_board(self, data):  # after 60 kB of the transfer: power and port gone
            super()._from_board(data)
            self.sent += len(data)
            if self.sent > 60_000 and self.proc.poll() is None:
                self.proc.kill()
                threading.Thread(target=self.stop).start()

    write_demo_treatment(flash_dir=tmp_path / "flash", seconds=60, sessions=20)
    with Unplugged(flash_dir=tmp_path / "flash") as vp:
        p = _start("logs", "--port", vp.port, "pull")
        _one_lost_link_line(p, False)
        assert vp.sent > 60_000
