"""A connected board's telemetry for the dashboard's live view (what `cryo monitor` shows).

One thread owns the link: it waits for the controller (as long as it
takes: the board may be switched on after the server), reads the current
gains once, switches telemetry on at ``rate_hz`` and keeps the newest
``keep`` frames (monitor's rows) for the page to poll. Telemetry is
switched off again when the server stops.
"""

from __future__ import annotations

import collections
import threading
import time

GAINS = ("pid.kp", "pid.ki", "pid.kd")


class LiveBoard:
    def __init__(self, port: str, rate_hz: float = 5.0, keep: int = 600):
        self.port = port
        self.rate_hz = rate_hz
        self._rows = collections.deque(maxlen=keep)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cryo-live", daemon=True)
        self.gains: dict = {}
        self.error: str | None = None

    def start(self) -> LiveBoard:
        """Open the port now (a missing or busy port is the caller's error), then read it."""
        from host_tools.link import Link

        self._link = Link(self.port)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def _run(self):
        from host_tools.monitor import row_of

        try:
            with self._link as link:
                if not self._await_controller(link):
                    return
                self.gains = {g: link.get(g) for g in GAINS}
                link.set_telemetry(self.rate_hz)
                t0 = time.monotonic()
                try:
                    while not self._stop.is_set():
                        for tel in link.drain_telemetry():
                            with self._lock:
                                self._rows.append(row_of(tel, time.monotonic() - t0))
                        self._stop.wait(0.1)
                finally:
                    link.set_telemetry(0)
        except Exception as e:  # noqa: BLE001 - shown on the page: the board is gone or busy
            self.error = f"{type(e).__name__}: {e}"

    def _await_controller(self, link) -> bool:
        """Wait for the controller as long as the server runs (a board may be switched on later)."""
        from host_tools.link import LinkError

        while not self._stop.is_set():
            try:
                link.await_controller()
                self.error = None
                return True
            except LinkError as e:
                if not getattr(e, "booting", False):
                    raise
                self.error = str(e)  # shown on the page until the board answers
        return False

    def snapshot(self, after_s: float = -1.0) -> dict:
        with self._lock:
            rows = [r for r in self._rows if r["host_s"] > after_s]
        return {"port": self.port, "gains": self.gains, "error": self.error, "rows": rows}
