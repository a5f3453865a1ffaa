"""`cryo reset`: restart the board (boot.py, then main.py and the controller).

What a technician needs after a treatment (the watchdog it armed blocks
service mode, so pulls and configuration wait for a reset), after a
service job, or when a board was left at the REPL by another tool.

A running controller is asked over the command link (``reset``, role
engineer; on a locked board authenticated with the PIN): it refuses during
a treatment, else closes the valves and resets, and the command waits
until the controller answers again. A board at the REPL (no controller),
or a locked board when no PIN is given, is reset through the raw REPL
(on a locked board after the service unlock, which takes the service key). A board still booting is waited for, not
interrupted.
"""

from __future__ import annotations

import os

from host_tools.commands.output import emit
from host_tools.device.connect import TREATMENT_RUNNING, resolve_port
from host_tools.errors import DeviceError


def cmd_reset(args) -> int:
    port = resolve_port(args.port)
    how = _reset_controller(port, getattr(args, "pin", None))
    if how is None:
        from host_tools.device.connect import Session
        from host_tools.device.probe import reset_board

        # restart=False: the reset itself restarts the controller
        with Session(port, restart=False) as s:
            what = reset_board(s)
        res = {"port": port, "reset": what, "controller_was": s.stopped}
        emit(args, res, f"{port}: {what} (controller was: {s.stopped})")
        return 0
    res = {"port": port, "reset": "reset", "controller_was": "running", "controller": how}
    emit(args, res, f"{port}: reset; the controller is running again ({how})")
    return 0


def _reset_controller(port: str, pin: str | None):
    """Reset through a running controller: the firmware's version once it
    is back, or None when no controller answers (a board at the REPL)."""
    from host_tools.auth import ENV_PIN, Credentials
    from host_tools.device.link import BOOT_WAIT, Link, LinkError

    pin = pin if pin is not None else os.environ.get(ENV_PIN)
    creds = Credentials(pins={} if pin is None else {"engineer": pin}, ask=False)
    with Link(port, credentials=creds) as link:
        hello = link.await_controller(repl_ok=True)
        if not hello or (hello.get("auth") and pin is None):
            # a board at the REPL, or a locked one with no PIN given: the
            # REPL path (its service unlock takes the service key)
            return None
        try:
            link.reset("engineer")
        except LinkError as e:
            text = str(e)
            if any(w in text for w in ("PRECOOL", "FREEZE", "THAW")):
                raise DeviceError(TREATMENT_RUNNING) from None
            raise
    # The board resets ~0.1 s after its reply, then boots (seconds on the
    # emulated Cortex-M3): wait for the controller, so the next command finds it.
    with Link(port, credentials=creds) as link:
        hello = link.await_controller(boot_wait=3 * BOOT_WAIT, repl_ok=True)
    if not hello:
        raise DeviceError(
            f"{port} was reset but came up at the REPL, not the controller: "
            "check boot.py/main.py (`cryo flash`)"
        )
    return "firmware %s" % hello.get("fw", "?")
