"""One `cryo` command at a time on a port: an advisory lock per port.

Two tools on one serial line interleave their bytes: a `cryo config get`
while `cryo monitor` runs reads the monitor's telemetry as its reply, breaks
into the REPL under it and leaves the controller stopped. So every command
that opens a port first takes that port's lock — ``flock(2)`` on a file
named after the port (its resolved path, or the URL) under
``$CRYO_LOCK_DIR`` (default: the system temp folder) — and writes who holds
it. A second command gets "port busy: `cryo monitor` (pid N) is using it"
(exit code 3) instead of a tangle. The kernel releases the lock when the
holder exits, also after a crash or ``kill -9``: no stale locks.

One board may be reachable by more than one name: `cryo sim --tcp` serves
the same line on its pty and on a socket. The board registers the socket's
URL as an *alias* of its pty (:func:`alias`), so both names resolve to one
lock and the second command is told who holds the board, whichever name
each of them used. The alias lives as long as the process that made it
(it holds a shared ``flock`` on the alias file; a file nobody holds is a
leftover of a killed board and is ignored).

Within one process the lock is re-entrant (a pull asks the controller for
service mode over the command channel, then opens the raw REPL). Serial
devices are also opened with pyserial's ``exclusive`` flag, so a tool that
is not `cryo` (mpremote takes the same flag) is refused as well.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import tempfile
import threading
from pathlib import Path

from host_tools.errors import DeviceError

ENV_LOCK_DIR = "CRYO_LOCK_DIR"
COMMAND = ["cryo"]  # what this process is, for the busy message (set by the CLI)
_held: dict[str, list] = {}  # key -> [fd, depth]
_aliases: dict[str, int] = {}  # alias key -> fd of its alias file (held while we serve it)
_guard = threading.Lock()


def lock_dir() -> Path:
    d = Path(os.environ.get(ENV_LOCK_DIR) or Path(tempfile.gettempdir()) / "cryo-port-locks")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _name(port: str) -> str:
    """A file name for ``port``: a device's resolved path (a symlink made by
    `cryo sim --link` and the pty it points to are one port), or the URL
    (``localhost`` and ``127.0.0.1`` are one host)."""
    if "://" not in port:
        port = os.path.realpath(port)
    else:
        port = port.replace("://localhost:", "://127.0.0.1:")
    return re.sub(r"[^A-Za-z0-9._-]", "_", port.strip("/"))


def key(port: str) -> str:
    """The port's identity: its name, or the name of the port it is an
    alias of while the board that registered the alias runs."""
    k = _name(port)
    target = _alias_target(k)
    return _name(target) if target else k


def _alias_target(k: str) -> str | None:
    try:
        fd = os.open(lock_dir() / (k + ".alias"), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:  # an exclusive lock succeeds only when no running board holds it
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None
        except OSError:
            pass
        return os.read(fd, 4096).decode(errors="replace").strip() or None
    finally:
        os.close(fd)


def alias(name: str, port: str) -> None:
    """Make ``name`` (e.g. the socket URL of a virtual board) lock as
    ``port`` (its pty) for as long as this process lives or until
    :func:`unalias`."""
    k = _name(name)
    unalias(name)
    fd = os.open(lock_dir() / (k + ".alias"), os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.ftruncate(fd, 0)
    os.write(fd, os.path.realpath(port).encode())
    _aliases[k] = fd


def unalias(name: str) -> None:
    k = _name(name)
    fd = _aliases.pop(k, None)
    if fd is not None:
        try:
            os.unlink(lock_dir() / (k + ".alias"))
        except OSError:
            pass
        os.close(fd)


def holder(port: str) -> dict | None:
    """Who holds ``port`` (``pid``, ``command``), or None if it is free."""
    path = lock_dir() / (key(port) + ".lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        except OSError:
            pass
        try:
            return json.loads(os.read(fd, 4096) or b"{}")
        except ValueError:
            return {}
    finally:
        os.close(fd)


def acquire(port: str) -> None:
    k = key(port)
    with _guard:
        if k in _held:
            _held[k][1] += 1
            return
        path = lock_dir() / (k + ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            who = holder(port) or {}
            raise DeviceError(busy_message(port, who)) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "command": " ".join(COMMAND)}).encode())
        _held[k] = [fd, 1]


def release(port: str) -> None:
    k = key(port)
    with _guard:
        slot = _held.get(k)
        if slot is None:
            return
        slot[1] -= 1
        if slot[1] > 0:
            return
        del _held[k]
        fd = slot[0]
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def busy_message(port: str, who: dict) -> str:
    if who.get("pid"):
        return (
            f"port busy: `{who.get('command') or 'cryo'}` (pid {who['pid']}) is using {port}; "
            "wait for it to finish or stop it first"
        )
    return (
        f"port busy: another program holds {port} (mpremote, a terminal?); close it and try again"
    )


def set_command(*words) -> None:
    """Name this process in the lock file: `cryo` and its subcommand words."""
    COMMAND[:] = ["cryo"] + [w for w in words if w]


if __name__ == "__main__":  # python -m host_tools.device.portlock PORT: who holds it
    print(json.dumps(holder(sys.argv[1])))
