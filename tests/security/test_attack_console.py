"""The console of a locked (provisioned) virtual board, attacked as a
visitor with a USB cable would: real mpremote, raw Ctrl-C / Ctrl-A / Ctrl-D /
Ctrl-E writes. No REPL, no key read, the controller keeps running; only an
authenticated service unlock opens the REPL, for a limited time.
"""

import subprocess
import time

import pytest
import serial
from sec_sim import console_output
from sim_harness import mpremote_exe

from host_tools.auth import Credentials
from host_tools.device.link import Link, LinkDenied

pytestmark = pytest.mark.sim

MARKS = (b">>>", b"raw REPL", b"paste mode", b"soft reboot", b"Traceback")


def _mpremote(board, *args, timeout=60):
    """Real mpremote on the board's port, by its symlink: mpremote reads a
    /dev/pts path with blocking reads and would wait forever for a board
    that stays silent; any other path gets its normal 10 s timeout, as a
    USB serial device does."""
    return subprocess.run(
        [mpremote_exe(), "connect", str(board.link), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _answers(port):
    with Link(port, timeout=2) as link:
        return link.hello()["auth"]


def _wait_locked_controller(board, timeout=30):
    """After a reset: until the controller answers again, still provisioned."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert _answers(board.port) is True
            return
        except Exception:
            if time.monotonic() > deadline:
                raise AssertionError("after the reset: " + console_output(board))
            time.sleep(0.5)


def test_no_repl_by_mpremote_or_control_characters(board):
    resets = len(board.resets())
    r = _mpremote(board, "exec", "print('pwned', open('auth.txt').read())", timeout=60)
    assert r.returncode != 0
    assert "pwned" not in r.stdout and "cryo-auth" not in r.stdout + r.stderr
    assert "could not enter raw repl" in (r.stdout + r.stderr).lower()
    r = _mpremote(board, "fs", "cat", "auth.txt", timeout=60)
    assert r.returncode != 0 and "service" not in r.stdout

    with serial.Serial(board.port, timeout=0.1) as s:
        seen = b""
        for burst in (b"\x03\x03", b"\r\x01", b"\x04", b"\x02\r\n", b"\x05", b"\x03\x01\x04"):
            s.write(burst)
            t = time.monotonic() + 1.0
            while time.monotonic() < t:
                seen += s.read(512)
        s.write(b"\n")  # end the attacker's unterminated junk line (a host would retry)
    assert not any(m in seen for m in MARKS), seen
    assert b'"err":"E_FRAME"' in seen  # the bytes reached the command channel, as junk
    assert _answers(board.port) is True  # the controller still runs, still locked
    assert len(board.resets()) == resets  # and nothing restarted it


def test_service_unlock_is_authenticated_time_limited_and_ends_at_reset(board):
    eng = Credentials(pins={"engineer": "4711"}, ask=False)
    with Link(board.port, timeout=3, credentials=eng) as link:
        with pytest.raises(LinkDenied, match="needs role service"):
            link.service(role="engineer")
    with Link(board.port, timeout=3) as link:  # the service key: $CRYO_KEYS
        with pytest.raises(Exception, match="unlock_s 5 out of range: 10"):
            link.service(unlock_s=5)
        assert link.service(unlock_s=12)["unlock_s"] == 12
    n0 = len(board.resets())
    r = _mpremote(board, "exec", "print(open('auth.txt').read()[:9])", timeout=30)
    assert r.returncode == 0 and "cryo-auth" in r.stdout, r.stderr
    # mpremote soft-resets from the raw REPL (main.py skipped, timers
    # cleared): the unlock goes on, with its deadline, not beyond it
    r = _mpremote(board, "exec", "print(2 + 2)", timeout=30)
    assert r.returncode == 0 and "4" in r.stdout, r.stderr
    deadline = time.monotonic() + 40
    while "reset" not in board.resets()[n0:] and time.monotonic() < deadline:
        time.sleep(0.2)
    after = board.resets()[n0:]
    assert "raw" in after and after[-1] == "reset", (after, board.stderr())
    _wait_locked_controller(board)
    r = _mpremote(board, "exec", "print(1)", timeout=60)
    assert r.returncode != 0


def test_raw_repl_soft_reset_without_a_running_unlock_restarts_locked(board):
    with Link(board.port, timeout=3) as link:
        assert link.service(unlock_s=120)["unlock_s"] == 120
    n0 = len(board.resets())
    # inside the unlock, forget its deadline: the next raw-REPL soft reset
    # finds no unlock running and must not leave the REPL open
    r = _mpremote(board, "exec", "import os; os.remove('auth.unlock')", timeout=30)
    assert r.returncode == 0, r.stderr
    _mpremote(board, "exec", "print(1)", timeout=30)
    deadline = time.monotonic() + 30
    while "reset" not in board.resets()[n0:] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert board.resets()[n0:][-1] == "reset", board.stderr()  # boot.py's 3 s timer, not 120 s
    _wait_locked_controller(board)
    r = _mpremote(board, "exec", "print(1)", timeout=60)
    assert r.returncode != 0


def test_ctrl_c_across_a_restart_opens_no_repl(board):
    """Ctrl-C typed without pause while the board restarts (the interpreter
    killed: a reset): the ROM, boot.py and main.py run in turn, and none of
    them, nor the window between, drops to a REPL. On a real board the same
    holds because boot.py's first statements turn Ctrl-C off before any
    jump, where a Ctrl-C that came earlier would be raised (and is caught)."""
    import os
    import signal

    from sim_harness import _children

    (interp,) = _children(board.proc.pid)
    seen = b""
    with serial.Serial(board.port, timeout=0) as s:
        os.kill(interp, signal.SIGKILL)
        t_end = time.monotonic() + 6.0
        while time.monotonic() < t_end:
            s.write(b"\x03")
            time.sleep(0.004)
            seen += s.read(4096)
    # the relay reports the killed interpreter's restart as a soft reboot
    assert not any(m in seen for m in MARKS if m != b"soft reboot"), seen
    _wait_locked_controller(board)
    assert _children(board.proc.pid) != [interp]  # it did restart
