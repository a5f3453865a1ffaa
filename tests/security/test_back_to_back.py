"""REPL sessions back to back on a locked virtual board.

Each `cryo config get` unlocks the board (service key), works at the raw
REPL and restarts the controller by a soft reset as it leaves; the next
command starts while that restart is under way. Its probe must wait for
the controller that comes up (locked: no REPL to break into) instead of
taking the restarting board's output for an open REPL.
"""

import pytest

from host_tools import cli

pytestmark = pytest.mark.sim


def test_repl_sessions_back_to_back_find_the_restarted_locked_controller(board, capsys):
    for _ in range(6):
        rc = cli.main(["config", "--port", board.port, "--json", "get", "pid.kp"])
        out = capsys.readouterr()
        assert rc == 0, out.err
