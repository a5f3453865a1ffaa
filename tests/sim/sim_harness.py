"""Harness for the virtual-board tests: start the real `cryo sim` (a
subprocess, as users run it) and talk to it with the real mpremote."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"


def mpremote_exe():
    return str(Path(sys.executable).parent / "mpremote")


def _children(pid):
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids = (task / "children").read_text().split()
            out += [int(k) for k in kids]
    except OSError:
        pass
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # zombies count as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


class SimProcess:
    """`cryo sim` as a subprocess on a fresh flash image in ``tmp_path``.

    ``wait_ready()`` decides when the board is usable: by default the boot
    ends at the REPL prompt (no main.py app); subclasses whose board runs
    the controller wait for its command channel instead."""

    def __init__(self, tmp_path, *extra, rom=None):
        self.flash = tmp_path / "flash.img"
        self.link = tmp_path / "port"
        cmd = [
            sys.executable,
            "-m",
            "host_tools.cli",
            "sim",
            "--flash",
            str(self.flash),
            "--link",
            str(self.link),
            *extra,
        ]
        if rom is not None:
            cmd += ["--rom", str(rom)]
        self.children = []
        self.stderr_path = tmp_path / "sim.err"
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._err, text=True
        )
        line = self.proc.stdout.readline()
        m = re.search(r"(/dev/pts/\d+)", line)
        if not m:
            self.stop()
            raise AssertionError("cryo sim did not print its port: %r %s" % (line, self.stderr()))
        self.port = m.group(1)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        deadline = time.monotonic() + 5
        while not self.children and time.monotonic() < deadline:
            self.children = _children(self.proc.pid)
            time.sleep(0.02)

    def wait_ready(self):
        self.wait_prompt()

    def wait_prompt(self, timeout=15):
        """Wait until the board's boot ends at the friendly REPL prompt (a
        host that connects mid-boot would see boot output as replies)."""
        import serial

        with serial.Serial(self.port, timeout=0.1) as s:
            buf = b""
            deadline = time.monotonic() + timeout
            s.write(b"\x02")  # Ctrl-B: (re)print the friendly banner and prompt
            while b">>> " not in buf and time.monotonic() < deadline:
                buf += s.read(256)
            time.sleep(0.05)
            s.reset_input_buffer()
        assert b">>> " in buf, "board did not reach the REPL: %r %s" % (buf, self.stderr())
        return buf

    def stderr(self):
        self._err.flush()
        return self.stderr_path.read_text()

    def resets(self):
        return re.findall(r"board reset \((\w+)\)", self.stderr())

    def wait_resets(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.resets()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.resets()

    def mpremote(self, *args, timeout=30):
        return subprocess.run(
            # the /dev/pts path, not the link: mpremote only uses its fast
            # blocking reads for paths that start with /dev/pts/
            [mpremote_exe(), "connect", self.port, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def transport(self):
        from mpremote.transport_serial import SerialTransport

        t = SerialTransport(self.port, timeout=1)
        t.enter_raw_repl(soft_reset=False)
        return t

    def stop(self):
        self.children += _children(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        return self.proc.returncode


class ControllerSim(SimProcess):
    """`cryo sim` running boot.py and main.py: ready when the controller's
    command channel answers (``hello`` kept as ``self.hello``)."""

    def wait_ready(self):
        from host_tools.device.link import Link, LinkError

        deadline = time.monotonic() + 30
        while True:  # boot.py + main.py: wait until the channel answers
            try:
                with Link(self.port, timeout=1) as link:
                    self.hello = link.hello()
                    return
            except LinkError:
                if time.monotonic() > deadline:
                    raise
