"""Host side of the e2e rig: a MicroPython device process behind a TCP relay.

``DeviceRig(*args, controller="rig")`` starts ``micropython link_rigs.py
CONTROLLER *args`` (``rig`` or ``ctl``, see link_rigs.py) with pipes on
stdin/stdout and relays them to a TCP port, so the host tools open it with
the pyserial URL ``socket://127.0.0.1:PORT`` exactly like a serial port.
Connections are served one after another (each ``cryo`` invocation opens its
own).
"""

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import mpyrun

HERE = Path(__file__).resolve().parent


class DeviceRig:
    def __init__(self, *args, controller="rig"):
        # tests/core too: link_rigs builds on core_rig's virtual device
        env = dict(os.environ, MICROPYPATH=mpyrun.micropypath([HERE, HERE.parent / "core"]))
        self.proc = subprocess.Popen(
            [mpyrun.micropython_exe(), str(HERE / "link_rigs.py"), controller, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            bufsize=0,
        )
        self._wait_ready()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.url = "socket://127.0.0.1:%d" % self.srv.getsockname()[1]
        self._conn = None
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self._down, daemon=True).start()

    def _wait_ready(self, timeout=60):
        """Block until the device printed "rig ready" (settled, serving)."""
        import select

        fd = self.proc.stdout.fileno()
        buf = b""
        end = time.monotonic() + timeout
        while b"rig ready\n" not in buf:
            left = end - time.monotonic()
            r, _, _ = select.select([fd], [], [], max(left, 0))
            chunk = os.read(fd, 4096) if r else b""
            if not chunk:
                self.proc.kill()
                err = self.close()
                raise RuntimeError(
                    "device rig did not start: stdout %r stderr %s" % (buf[-500:], err[-2000:])
                )
            buf += chunk

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self._conn = conn
            try:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        break
                    self.proc.stdin.write(data)
                    self.proc.stdin.flush()
            except OSError:
                pass
            self._conn = None
            conn.close()

    def _down(self):
        while True:
            data = (
                self.proc.stdout.read1(4096)
                if hasattr(self.proc.stdout, "read1")
                else os.read(self.proc.stdout.fileno(), 4096)
            )
            if not data:
                return
            c = self._conn
            if c is not None:
                try:
                    c.sendall(data)
                except OSError:
                    pass

    def close(self):
        self._stop = True
        if not hasattr(self, "srv"):
            self.srv = socket.socket()
        try:
            self.srv.close()
        except OSError:
            pass
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.stderr.read().decode(errors="replace")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
