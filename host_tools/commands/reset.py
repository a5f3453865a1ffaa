"""`cryo reset`: restart the board (boot.py, then main.py and the controller).

What a technician needs after a treatment (the watchdog it armed blocks
service mode until a reset; `cryo logs pull` and `cryo config` ask for
this reset themselves), after a service job, or when a board was left at
the REPL by another tool.

A running controller is asked over the command link (``reset``, role
engineer; on a locked board authenticated with the PIN): it refuses during
a treatment, else closes the valves and resets, and the command waits
until the controller answers again. A board at the REPL (no controller),
or a locked board when no PIN is given, is reset through the raw REPL (on
a locked board after the service unlock, which takes the service key). A
board still booting is waited for, not interrupted.
"""

from __future__ import annotations

from host_tools.commands.output import emit
from host_tools.device.connect import resolve_port
from host_tools.device.probe import reset_controller


def cmd_reset(args) -> int:
    port = resolve_port(args.port)
    how = reset_controller(port, getattr(args, "pin", None))
    if how is None:
        from host_tools.device.connect import Session
        from host_tools.device.probe import reset_board

        # restart=False: the reset itself restarts the controller
        with Session(port, restart=False) as s:
            what = reset_board(s)
        if what == "reset":
            _await_boot(port)
        res = {"port": port, "reset": what, "controller_was": s.stopped}
        emit(args, res, f"{port}: {what} (controller was: {s.stopped})")
        return 0
    res = {"port": port, "reset": "reset", "controller_was": "running", "controller": how}
    emit(args, res, f"{port}: reset; the controller is running again ({how})")
    return 0


def _await_boot(port):
    """Until the reset board answers (its controller, or its REPL when it
    has none), so the next command finds it up."""
    from host_tools.device.link import BOOT_WAIT, Link

    with Link(port) as link:
        link.await_controller(boot_wait=3 * BOOT_WAIT, repl_ok=True)
