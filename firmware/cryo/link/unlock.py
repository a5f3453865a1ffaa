"""The service unlock of a locked device, across soft resets.

A locked (provisioned) device opens its REPL only when the service role
asks for it over the authenticated link (``cryo.link.channel``, command
``service``): ``main.py`` then returns to the REPL with a hard-reset timer
armed for ``unlock_s`` seconds. Service tools (mpremote) soft-reset the
board from the raw REPL, and a soft reset from the raw REPL runs boot.py but
*not* main.py, and clears every timer. So the deadline is kept on the flash
(``paths.AUTH_UNLOCK_PATH``, in ``ticks_ms``, which keep counting through a
soft reset), and boot.py of a locked device calls :func:`at_boot`:

* after a soft reset with the unlock still running: the reset timer is armed
  again for what is left of it (the REPL stays open until then);
* otherwise: a reset timer of ``GRACE_MS`` that ``main.py`` cancels when it
  starts; if main.py does not run (a raw-REPL soft reset without an unlock,
  a missing main.py) the board resets into main.py instead of idling at an
  open REPL.

``main.py`` of a locked device ends any unlock when it starts (:func:`end`):
every reset that runs main.py locks the device again.
"""

import os

from micropython import const

from cryo import board as _board

GRACE_MS = const(3000)
MAX_MS = const(14400000)  # the longest unlock (cryo.link.messages.UNLOCK_S)


def begin(path, clock, seconds):
    """Start an unlock of ``seconds``: deadline on flash, reset timer armed."""
    ms = seconds * 1000
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"%d\n" % clock.add(clock.ticks_ms(), ms))
    os.rename(tmp, path)
    return _board.reset_after(ms)


def end(path):
    try:
        os.remove(path)
    except OSError:
        pass


def remaining_ms(path, clock):
    """Milliseconds left of a recorded unlock (0: none, expired or unreadable)."""
    try:
        with open(path, "rb") as f:
            deadline = int(f.read().decode().strip())
    except (OSError, ValueError, UnicodeError):
        return 0
    left = clock.diff(deadline, clock.ticks_ms())
    if left <= 0 or left > MAX_MS:
        return 0
    return left


def at_boot(path, clock):
    """boot.py of a locked device: ``(reset timer, unlock still running)``."""
    left = 0
    if _board.last_reset() == "soft":
        left = remaining_ms(path, clock)
    if left > 0:
        return _board.reset_after(left), True
    end(path)
    return _board.reset_after(GRACE_MS), False
