"""Host side of the command channel (docs/link.md): its commands.

``Link(port)`` is a :class:`host_tools.device.session.Session` (transport,
framing, replies by id, telemetry queue, authentication) with one method
per command of ``cryo.link.messages``; ``request_service_mode`` is what
host_tools.device.connect asks before file work. The errors a reply maps to
are host_tools.device.link_errors' (re-exported here, where the commands'
callers import them).
"""

from __future__ import annotations

import time

from host_tools.device.link_errors import (
    LinkDenied,
    LinkError,
    LinkInvalid,
    LinkMismatch,
    error_for,
)
from host_tools.device.session import DEFAULT_TIMEOUT, Session

# isort: split
from cryo.link import messages as msg

__all__ = [
    "BOOT_WAIT",
    "DEFAULT_TIMEOUT",
    "Link",
    "LinkDenied",
    "LinkError",
    "LinkInvalid",
    "LinkMismatch",
    "error_for",
    "msg",
    "request_service_mode",
]

BOOT_WAIT = 8.0  # s a board may take from reset to a running controller
REPL_SETTLE = 0.3  # s for a restarting board's stale output to arrive before asking again


class Link(Session):
    """Client of the firmware command channel: a session with the commands.

    ``request(cmd, **fields)`` (the session's) returns the reply dict or
    raises; the methods below wrap each command.
    """

    def await_controller(self, boot_wait: float = BOOT_WAIT, repl_ok=False):
        """Wait until the controller answers ``hello``: its reply (a dict).

        Silence is a board still booting: asked again until ``boot_wait`` s
        have passed, so no command breaks into boot.py/main.py; then
        LinkError (``booting``). A MicroPython REPL answering instead means
        no controller runs: False with ``repl_ok``, else LinkError.
        """
        deadline = time.monotonic() + boot_wait
        settled = False
        while True:
            try:
                return self.hello()
            except LinkError as e:
                if getattr(e, "code", None) is not None or self.closed_reason:
                    raise
            if self.saw_repl and not settled:
                # Maybe only the output of a board that was restarting (the
                # prompt a previous session left, printed before its soft
                # reset started the controller): forget it and ask again.
                # A REPL answers the fresh request too (it echoes every
                # line); a controller still starting is silent, so it is
                # waited for like any boot.
                settled = True
                time.sleep(REPL_SETTLE)
                self.saw_repl = False
                continue
            if self.saw_repl:
                if repl_ok:
                    return False
                raise LinkError(
                    f"no controller running on {self.port}: the board is at the MicroPython "
                    "REPL (stopped by another tool?); restart it with `cryo reset`"
                )
            if time.monotonic() >= deadline:
                err = LinkError(
                    f"no answer from {self.port} within {boot_wait:g} s: neither the "
                    "controller nor a REPL (still booting, hung, or in the raw REPL of "
                    "another tool); not interrupting it: retry, or `cryo reset`"
                )
                err.booting = True
                raise err

    def hello(self):
        r = self.request("hello", probe=True)
        if r.get("proto") != msg.VERSION:
            raise LinkMismatch(
                f"device speaks protocol {r.get('proto')}, host {msg.VERSION}: update one side"
            )
        return r

    def status(self) -> dict:
        return self.request("status")["status"]

    def set_telemetry(self, rate_hz: float) -> dict:
        return self.request("telemetry", rate_hz=rate_hz)

    def get(self, name: str):
        return self.request("get", name=name)["value"]

    def set(self, name: str, value, role: str = "engineer"):
        return self.request("set", name=name, value=value, role=role)["value"]

    def save(self, role: str = "engineer"):
        return self.request("save", role=role)

    def autotune(self, action: str, role: str | None = None, **params) -> dict:
        if role is not None:
            params["role"] = role
        return self.request("autotune", action=action, **params)["state"]

    def step_test(self, action: str, role: str | None = None, **params) -> dict:
        if role is not None:
            params["role"] = role
        return self.request("step", action=action, **params)["state"]

    def ack(self, role: str = "operator"):
        return self.request("ack", role=role)

    def service(self, role: str = "service", unlock_s: int | None = None):
        """Service mode; on a provisioned device the REPL unlock for ``unlock_s`` s."""
        if unlock_s is None:
            return self.request("service", role=role)
        return self.request("service", role=role, unlock_s=unlock_s)

    def reset(self, role: str = "engineer"):
        """Hard-reset the board (outside a treatment; the watchdog may be armed)."""
        return self.request("reset", role=role)

    def stats(self) -> dict:
        return self.request("stats")["stats"]


def request_service_mode(
    port: str, role: str = "service", timeout: float = DEFAULT_TIMEOUT, boot_wait=BOOT_WAIT
):
    """Ask the running firmware to enter service mode (used by host_tools.device.connect before file work).

    Returns the reply dict, or ``{"controller": False}`` when a MicroPython
    REPL answered instead (no controller runs: nothing to stop). A board
    still booting is waited for (:meth:`Link.await_controller`). Raises
    LinkError with ``treatment_running`` true when the controller is not idle.
    """
    with Link(port, timeout=timeout) as link:
        if not link.await_controller(boot_wait, repl_ok=True):
            return {"controller": False}
        return link.service(role)
