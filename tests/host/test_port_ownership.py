"""One tool at a time on a port, and no command breaks into a booting board.

The real-time virtual board (`cryo sim`, firmware and controller running)
driven by the real `cryo` command in subprocesses, as a technician would.
After every case the controller is running: it answers on its command
channel.
"""

import json
import subprocess
import sys
import threading
import time

import pytest

from host_tools import ROOT
from host_tools.device.link import Link
from host_tools.virtual.board import VirtualBoard
from host_tools.virtual.port import write_demo_treatment

pytestmark = [pytest.mark.sim, pytest.mark.mpy]


def cryo(*argv, timeout=120, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "host_tools.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        **kw,
    )


def finish(p, timeout=120):
    out, err = p.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return p.returncode, out, err


def controller_answers(port, within=15.0) -> dict:
    """The controller's status over its command channel (it is running)."""
    deadline = time.monotonic() + within
    last = None
    while time.monotonic() < deadline:
        try:
            with Link(port, timeout=1.0) as link:
                return link.status()
        except Exception as e:  # noqa: BLE001 - still booting: ask again
            last = e
            time.sleep(0.3)
    raise AssertionError(f"the controller does not answer on {port}: {last}")


@pytest.fixture
def board(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYO_LOCK_DIR", str(tmp_path / "locks"))
    img = tmp_path / "flash.img"
    write_demo_treatment(image=img, seconds=30, sessions=1)
    vb = VirtualBoard(flash=str(img), link=str(tmp_path / "port"), tcp=0, log=lambda m: None)
    vb.open()
    t = threading.Thread(target=vb.serve, daemon=True)
    t.start()
    controller_answers(vb.port)
    yield vb, tmp_path
    vb._stop = True
    t.join(5)
    vb.close()


def test_a_second_tool_is_told_who_holds_the_port(board):
    vb, tmp = board
    port = str(tmp / "port")
    mon = cryo("monitor", "--port", port, "--rate", "5", "--duration", "6", "--json")
    first = mon.stdout.readline()  # the monitor is receiving telemetry
    assert json.loads(first).get("tel") is not None
    # the pty it links to is the same port
    for p in (port, vb.port):
        rc, out, err = finish(cryo("config", "--port", p, "get", "pid.kp"))
        assert rc == 3 and out == ""
        assert f"port busy: `cryo monitor` (pid {mon.pid})" in err
    rc, out, err = finish(mon)
    assert rc == 0, err
    lines = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
    summary = lines[-1]["summary"]
    assert summary["gaps"] == 0 and summary["frames"] >= 20  # undisturbed for its 6 s
    # the port is free again, and the controller still runs
    rc, out, err = finish(cryo("config", "--port", port, "--json", "get", "pid.kp"))
    assert rc == 0, err
    assert controller_answers(vb.port)["phase"] is not None


def monitor_json(out) -> tuple[list, dict]:
    lines = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
    return lines[:-1], lines[-1]["summary"]


@pytest.mark.parametrize("monitor_on", ["pty", "socket"])
def test_one_owner_per_board_across_its_pty_and_its_socket(board, monitor_on):
    """The board's pty and its socket are one port to the lock: a pull on
    the other name is refused with the monitor's name and pid, and the
    monitor's frames go on undisturbed."""
    vb, tmp = board
    names = {"pty": str(tmp / "port"), "socket": vb.tcp.url}
    other = names["socket" if monitor_on == "pty" else "pty"]
    mon = cryo("monitor", "--port", names[monitor_on], "--rate", "10", "--duration", "6", "--json")
    assert json.loads(mon.stdout.readline()).get("tel") is not None
    for argv in (["logs", "--archive", str(tmp / "arch"), "pull"], ["config", "get", "pid.kp"]):
        rc, out, err = finish(cryo(argv[0], "--port", other, *argv[1:]))
        assert rc == 3 and out == "", err
        assert f"port busy: `cryo monitor` (pid {mon.pid}) is using {other}" in err
    rc, out, err = finish(mon)
    assert rc == 0, err
    frames, summary = monitor_json(out)
    assert summary["gaps"] == 0 and summary["frames"] >= 40  # 10 Hz for 6 s, undisturbed
    assert not (tmp / "arch").exists()  # the refused pull wrote nothing
    # free again: the other name works, and the controller runs
    rc, out, err = finish(cryo("config", "--port", other, "--json", "get", "pid.kp"))
    assert rc == 0, err
    assert controller_answers(vb.port)["phase"] is not None


@pytest.mark.parametrize("how", ["hang", "reset"])
def test_the_monitor_fails_when_its_frames_stop(board, how):
    """The board stops sending mid-run (its interpreter hangs, or it resets
    and its telemetry is off): the monitor counts the gap and exits 3 with
    when the frames stopped, never 0."""
    import os
    import signal

    vb, tmp = board
    mon = cryo("monitor", "--port", str(tmp / "port"), "--rate", "10", "--duration", "8", "--json")
    for _ in range(10):  # a second of frames
        assert json.loads(mon.stdout.readline()).get("tel") is not None
    hung = vb.proc.pid
    if how == "hang":
        os.killpg(hung, signal.SIGSTOP)
    else:
        vb._kill("reset")
    try:
        rc, out, err = finish(mon)
    finally:
        if how == "hang":
            try:
                os.killpg(hung, signal.SIGCONT)
            except OSError:
                pass  # the relay's watchdog replaced it
    lines = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
    summary, error = lines[-2]["summary"], lines[-1]
    assert rc == 3 and error["exit_code"] == 3
    assert error["error"].startswith("link to ") and " lost: frames stopped at " in error["error"]
    assert summary["stalls"] == 1 and summary["gaps"] >= 1
    assert summary["stopped"] in error["error"]
    assert 10 <= summary["frames"] < 60  # about 8 s at 10 Hz had it gone on
    assert controller_answers(vb.port)["phase"] is not None


def test_a_command_right_after_a_reset_waits_for_the_controller(board):
    vb, tmp = board
    port = str(tmp / "port")
    for delay in (0.0, 0.5, 1.5):
        vb._kill("reset")  # the board resets (main.py runs again)
        time.sleep(delay)
        rc, out, err = finish(
            cryo("logs", "--port", port, "--archive", str(tmp / "arch"), "--json", "list")
        )
        assert rc == 0, err
        assert [r["session"] for r in json.loads(out)] == [1]
        # the controller came up, was stopped for the pull and restarted: running
        assert controller_answers(vb.port)["phase"] is not None
    modes = [m for _, m in vb.resets]
    assert modes.count("reset") == 3  # our resets; no boot was broken into
    assert "raw" not in modes


def test_lock_is_released_when_the_holder_dies(board):
    vb, tmp = board
    from host_tools.device import portlock

    port = str(tmp / "port")
    mon = cryo("monitor", "--port", port, "--rate", "2", "--duration", "30", "--json")
    assert json.loads(mon.stdout.readline()).get("tel") is not None
    assert portlock.holder(port)["pid"] == mon.pid
    mon.kill()
    mon.wait()
    assert portlock.holder(port) is None  # the kernel dropped the lock with the process
    assert controller_answers(vb.port)["phase"] is not None


def test_a_socket_alias_lives_as_long_as_its_board(tmp_path, monkeypatch):
    """A board killed with -9 leaves its alias file behind: it no longer
    redirects the URL (the next board on that TCP port may be another one)."""
    from host_tools.device import portlock

    monkeypatch.setenv("CRYO_LOCK_DIR", str(tmp_path / "locks"))
    url, pty = "socket://localhost:40001", str(tmp_path / "pty")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from host_tools.device import portlock\n"
            f"portlock.alias({url!r}, {pty!r}); print('up', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert holder.stdout.readline().strip() == "up"
    assert portlock.key(url) == portlock.key(pty)
    assert portlock.key(url.replace("localhost", "127.0.0.1")) == portlock.key(pty)
    holder.kill()
    holder.wait()
    assert portlock.key(url) != portlock.key(pty)
