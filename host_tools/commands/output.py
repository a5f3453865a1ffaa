"""What a command shows: its result, its errors and its progress.

One place decides the form, so every `cryo` command behaves alike:

* ``emit(args, data, text)``: with ``--json`` the result ``data`` as one
  line of JSON on standard output, else the human ``text`` (a string, or a
  callable that prints a table). Both carry the same data.
* ``error_json(message, code)``: with ``--json`` an error is one line
  ``{"error": message, "exit_code": code}`` on standard output (where the
  result would have been; nothing on standard error), so a script reads one
  stream of JSON lines and the exit code.
* ``Progress``: operations that can take more than about 2 s report progress
  on standard error: a rich bar on a terminal, a plain line every few seconds
  otherwise (logs, CI), nothing with ``--json``.
"""

from __future__ import annotations

import json
import os
import sys
import time

PLAIN_EVERY_S = 2.0  # without a terminal: first line after this, then one per period


def add_json_argument(parser, what="the result as JSON"):
    """The one ``--json`` option every command has."""
    parser.add_argument(
        "--json", action="store_true", help=f"machine-readable output: {what} (errors too)"
    )


def wants_json(args) -> bool:
    return bool(getattr(args, "json", False))


def dumps(data) -> str:
    # One line per document (JSON Lines: a result, each monitor frame, an
    # error); default=str for paths, datetimes and other plain values.
    return json.dumps(data, default=str)


def emit(args, data, text=None):
    """Print a command's result: ``data`` as JSON with ``--json``, else ``text``."""
    if wants_json(args):
        print(dumps(data), flush=True)
    elif callable(text):
        text()
    elif text is not None:
        print(text, flush=True)


# Width for tables written to a pipe or file: rich would otherwise assume 80
# columns and cut names and dates with "…"; a reader of a file (grep, a
# script, a ticket) needs every character, so nothing is cut there.
PIPE_WIDTH = 1000


def error_json(message: str, code: int):
    print(dumps({"error": message, "exit_code": code}), flush=True)


def console(stderr: bool = False):
    """The rich Console every command prints through: the terminal's width
    on a terminal, never truncating when the output goes to a pipe or a
    file.

    rich ends the program with exit code 1 when the reader of its output
    went away (``Console.on_broken_pipe``); here that is a BrokenPipeError,
    which the CLI turns into exit 0 as for every other output (README)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self):
            self.quiet = True  # nothing more to a reader that is gone
            raise BrokenPipeError("the reader of the output went away")

    stream = sys.stderr if stderr else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty or os.environ.get("COLUMNS"):  # a terminal, or a width asked for
        return _Console(stderr=stderr)
    return _Console(stderr=stderr, width=PIPE_WIDTH)


def listing(title: str):
    """A rich Table for rows people read, 80 columns wide included: no
    vertical rules, no edge padding, so the cells keep their room (pass
    ``no_wrap`` to columns that must stay whole, such as dates)."""
    from rich import box
    from rich.table import Table

    return Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Progress of one operation on standard error (a context manager).

    ``unit``: "bytes" (a transfer), "s" (a timed test) or "" (items, or an
    open-ended count with ``note``). ``advance(n)`` adds to the count,
    ``update(completed=, note=)`` sets it; ``total(n)`` sets the end once it
    is known. ``start(total)`` and calling the object with a count are the
    callback protocol of ``deploy`` and ``Session.write_file``. ``show``:
    False for a run that is known to be short. ``note``: an operation that
    reports nothing while it runs (one long call): its note and elapsed time
    are shown as it goes.
    """

    def __init__(self, args, what: str, total=None, unit: str = "", show=True, note=None):
        self.what = what
        self.unit = unit
        self._total = total
        self._done = 0
        self._note = note or ""
        self._quiet = wants_json(args) or not show
        self._ticker = None
        self._stop = None
        self._rich = None
        self._t0 = time.monotonic()
        self._next_line = self._t0 + PLAIN_EVERY_S
        self._lines = 0

    def __enter__(self):
        if not self._quiet and _stderr_is_terminal():
            self._start_rich()  # its own thread redraws the elapsed time
        elif not self._quiet and self._note:
            import threading

            self._stop = threading.Event()
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def _tick(self):
        while not self._stop.wait(PLAIN_EVERY_S / 4):
            self.update()

    def __exit__(self, exc_type, exc, tb):
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
        if self._rich is not None:
            self._rich.stop()
        elif exc_type is None and self._lines:
            self._line(final=True)
        return False

    def _start_rich(self):
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        cols = [TextColumn("{task.description}"), BarColumn()]
        if self.unit == "bytes":
            cols += [DownloadColumn(), TransferSpeedColumn()]
        elif self._total is not None or self.unit:  # a count of known things
            cols.append(MofNCompleteColumn())
        cols.append(TimeElapsedColumn())
        self._rich = Progress(*cols, console=console(stderr=True))
        self._task = self._rich.add_task(self.what, total=self._total)
        self._rich.start()

    # -- the count -----------------------------------------------------------
    def total(self, n):
        self._total = n
        if self._rich is not None:
            self._rich.update(self._task, total=n)

    def start(self, total, note=""):
        """The work itself begins (deploy()'s protocol): its total, a new note."""
        self.total(total)
        self.update(note=note)

    @property
    def completed(self):
        return self._done

    def advance(self, n=1, note=None):
        self.update(completed=self._done + n, note=note)

    __call__ = advance  # transfer callbacks: called with the bytes just moved

    def update(self, completed=None, note=None):
        if completed is not None:
            self._done = completed
        if note is not None:
            self._note = note
        if self._quiet:
            return
        if self._rich is not None:
            # a count without an end (relay cycles) is shown in the label
            desc = " ".join(b for b in (self.what, self._open_count()) if b)
            self._rich.update(self._task, completed=self._done, description=desc)
        elif time.monotonic() >= self._next_line:
            self._line()

    def _open_count(self) -> str:
        """The note and the count of an operation without a known end."""
        if self._total:
            return self._note
        count = f"{self._done:g} {self.unit}".strip() if self._done else ""
        return " ".join(b for b in (self._note, count) if b)

    def _line(self, final=False):
        now = time.monotonic()
        self._next_line = now + PLAIN_EVERY_S
        self._lines += 1
        if self._total:
            count = f"{min(100, 100 * self._done / self._total):.0f}% ({self._done:g} of "
            count += f"{self._total:g} {self.unit})" if self.unit else f"{self._total:g})"
        else:
            count = f"{self._done:g} {self.unit}".strip() if self._done else ""
        if final:  # what was done, not what it was doing
            bits = ["done", count]
        else:
            bits = [count if self._total else "", self._open_count()]
        text = ", ".join(b for b in bits + [f"{now - self._t0:.0f} s"] if b)
        print(f"{self.what}: {text}", file=sys.stderr, flush=True)
