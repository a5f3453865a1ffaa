"""Ctrl-C for the virtual board's interpreter, taken as a board takes it.

On a board the UART's receive interrupt sees 0x03 and sets a pending
KeyboardInterrupt; the VM raises it at its next check, between bytecodes,
never inside the allocator. The unix port behind the virtual board raises
it straight from its SIGINT handler instead (``MICROPY_ASYNC_KBD_INTR``, its
default without a GIL). Landing inside the allocator, that longjmp leaves
the heap's mutex held by the main thread; every other interpreter thread —
the real-time ``machine.Timer``s, the safety timer among them — then blocks
on its next allocation for ever: a safety timer that silently stops.

So the kernel never turns 0x03 into SIGINT on the board's pty (ISIG off)
and the relay delivers it itself, to the main thread only (``tgkill``: a
process-directed signal may land on a timer thread), while that thread is
blocked in a system call other than a futex wait — sleeping, reading the
console, writing to it — outside the allocator and the collector (the
collector waits on a futex for the timer threads to scan their stacks).
The relay stops the process, reads ``/proc/PID/task/PID/syscall``, queues
the signal and continues it, so nothing runs between the look and the
signal; the handler runs as the call returns. Bytes the host sends after
the Ctrl-C wait until it is delivered, as they would arrive after the
kernel's own SIGINT. A loop that never blocks is interrupted after
``WAIT_S`` regardless: the one case left asynchronous. Code that ends
meanwhile gets the byte at its REPL.

From the start of an interpreter until its ROM (``boards/sim/sim_boot.py``)
reports on the control pipe that it turned Ctrl-C off, 0x03 is dropped: a
board's ROM takes no Ctrl-C, and the unix port would otherwise interrupt its
own start-up (or the CPython launcher in front of it) into an open REPL.

Which mode the interpreter is in comes from the tty: its REPL puts it raw
(``lflag`` 0) while reading a line and restores the mode it found while
code runs; that mode carries ``RUNNING_MARK``, an inert flag (no ECHO).
"""

from __future__ import annotations

import ctypes
import os
import signal
import termios
import time
from pathlib import Path

RUNNING_MARK = termios.ECHOCTL
WAIT_S = 2.0  # longest wait for a safe point (a busy loop must still stop)
_STOP_WAIT_S = 0.05  # SIGSTOP takes effect within microseconds; bound it

# futex per interpreter architecture (ELF e_machine -> syscall numbers).
_FUTEX = {3: (240, 422), 62: (202,), 183: (98,)}  # i386, x86_64, aarch64


def _libc_tgkill():
    try:
        return ctypes.CDLL(None, use_errno=True).tgkill  # glibc >= 2.30
    except (OSError, AttributeError):
        return None


_TGKILL = _libc_tgkill()


def sigint_caught(pid) -> bool:
    """The interpreter has a SIGINT handler (``kbd_intr(-1)`` restores the
    default action on unix, which would kill it)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except OSError:
        pass
    return True


def futex_numbers(pid) -> tuple:
    try:
        with open(f"/proc/{pid}/exe", "rb") as f:
            head = f.read(20)
    except OSError:
        return ()
    return _FUTEX.get(int.from_bytes(head[18:20], "little"), ())


def _state(pid) -> str:
    try:
        stat = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2]


def sigint_main_thread(pid):
    try:
        if _TGKILL is None or _TGKILL(pid, pid, signal.SIGINT) != 0:
            os.kill(pid, signal.SIGINT)
    except OSError:
        pass  # it just exited: the relay restarts it


def interrupt_at_safe_point(pid, futex=()) -> bool:
    """Stop the interpreter; if its main thread is blocked in a system call
    other than a futex wait, queue SIGINT for it; continue it. True if the
    signal was sent."""
    try:
        os.kill(pid, signal.SIGSTOP)
    except OSError:
        return False
    try:
        t_end = time.monotonic() + _STOP_WAIT_S
        while _state(pid) not in ("T", "t", "") and time.monotonic() < t_end:
            time.sleep(0.0001)
        try:
            nr = int(Path(f"/proc/{pid}/task/{pid}/syscall").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            nr = -1  # "running" (user space) or unreadable: not a safe point
        safe = nr >= 0 and nr not in futex
        if safe and sigint_caught(pid):  # still on: SIG_DFL would kill it
            sigint_main_thread(pid)
        return safe
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass


class CtrlC:
    """One waiting Ctrl-C at most, for the interpreter on pty A
    (``tty_fd``); ``write_a`` sends bytes to it."""

    def __init__(self, tty_fd, write_a):
        self._fd = tty_fd
        self._write_a = write_a
        self._proc = None
        self._futex = ()
        self._due = None
        self._held = b""
        self._ready = False

    def attach(self, proc) -> bytes:
        """A new interpreter: a waiting Ctrl-C is answered by its start;
        returns the bytes that were held behind it."""
        self._proc = proc
        self._futex = futex_numbers(proc.pid)
        self._ready = False
        self._due = None
        held, self._held = self._held, b""
        return held

    def _pid(self):
        p = self._proc
        return p.pid if p is not None and p.poll() is None else None

    def ready(self):
        """The ROM turned Ctrl-C off: from now on the firmware's setting rules."""
        self._ready = True

    def enabled(self) -> bool:
        """Ctrl-C would interrupt the firmware now (False: drop the byte)."""
        pid = self._pid()
        return pid is None or (self._ready and sigint_caught(pid))

    def code_running(self) -> bool:
        return bool(termios.tcgetattr(self._fd)[3] & RUNNING_MARK)

    def waiting(self) -> bool:
        return self._due is not None

    def start(self, after=b""):
        """Ctrl-C to deliver; ``after``: what the host sent behind it."""
        self._due = time.monotonic() + WAIT_S
        self._held = bytes(after)

    def hold(self, data):
        self._held += data

    def pump(self, exec_raw) -> bytes:
        """Deliver the waiting Ctrl-C if the interpreter is at a safe point
        (or its wait is over); then returns the held bytes, to be passed on
        as new input. ``exec_raw``: code started from the raw REPL runs
        (the port leaves the tty raw there, so the mark is not set)."""
        if self._due is None:
            return b""
        pid = self._pid()
        if pid is not None:
            if not self.enabled():
                pass  # turned off meanwhile: dropped, as a board ignores it
            elif not exec_raw and not self.code_running():
                self._write_a(b"\x03")  # the code ended meanwhile: the REPL reads it
            elif time.monotonic() >= self._due:
                sigint_main_thread(pid)  # a loop that never blocks
            elif not interrupt_at_safe_point(pid, self._futex):
                return b""
        self._due = None
        held, self._held = self._held, b""
        return held
