"""``cryo`` as a user runs it: the real command line in its own process.

One helper for every test that drives the CLI end to end: the command,
its standard input closed (never a prompt), and the rule every expected
situation obeys — no traceback, whatever the exit code (README).
"""

from __future__ import annotations

import os
import subprocess
import sys

from mpyrun import ROOT


def cryo(*argv, env=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``cryo ARGV`` from the repository root; ``env`` adds to (or, with a
    value None, removes from) this process's environment."""
    e = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    p = subprocess.run(
        [sys.executable, "-m", "host_tools.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=e,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in p.stderr, p.stderr
    return p
