"""`cryo reset`: restart the board (boot.py, then main.py and the controller).

What a technician needs after a service job or when a board was left at the
REPL by another tool. Refused while a treatment runs (the controller is asked
for service mode first, as for every REPL operation); a board still booting
is waited for, not interrupted.
"""

from __future__ import annotations

from host_tools.commands.output import emit
from host_tools.device.connect import resolve_port


def cmd_reset(args) -> int:
    from host_tools.device.connect import Session
    from host_tools.device.probe import reset_board

    port = resolve_port(args.port)
    # restart=False: the reset itself restarts the controller
    with Session(port, restart=False) as s:
        what = reset_board(s)
        stopped = s.stopped
    res = {"port": port, "reset": what, "controller_was": stopped}
    emit(args, res, f"{port}: {what} (controller was: {stopped})")
    return 0
