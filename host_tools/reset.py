"""`cryo reset`: restart the board (boot.py, then main.py and the controller).

What a technician needs after a service job or when a board was left at the
REPL by another tool. Refused while a treatment runs (the controller is asked
for service mode first, as for every REPL operation); a board still booting
is waited for, not interrupted.
"""

from __future__ import annotations

import json

from host_tools.connect import add_port_argument, resolve_port


def register(subparsers):
    what = "restart the board: boot.py, main.py, the controller (refused during a treatment)"
    p = subparsers.add_parser("reset", help=what, description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_port_argument(p)
    p.set_defaults(func=cmd_reset)


def cmd_reset(args) -> int:
    from host_tools.connect import Session
    from host_tools.device import reset_board

    port = resolve_port(args.port)
    # restart=False: the reset itself restarts the controller
    with Session(port, restart=False) as s:
        what = reset_board(s)
        stopped = s.stopped
    res = {"port": port, "reset": what, "controller_was": stopped}
    print(json.dumps(res) if args.json else f"{port}: {what} (controller was: {stopped})")
    return 0
