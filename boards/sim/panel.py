"""The front panel of the real-time virtual board (``cryo sim --panel FILE``).

A host file holding the physical inputs as JSON, ``{"footswitch": 1, ...}``:
the technician's hands. The host writes it in place
(``host_tools.sim.write_panel``); the world reads it at most every
``_PANEL_MS`` of board time and applies what changed.
"""

import json

_PANEL_MS = 100  # the file is read at most this often (board time)

# The panel file's schema, for the board and the host alike: a JSON object
# whose keys are these inputs, each 0 or 1. Nothing else is a panel file.
INPUTS = ("estop", "footswitch", "handpiece")
SIZE = 64  # the host pads the file to this size: a read never sees a shorter tail


def problem(state):
    """Why ``state`` (a parsed panel file) is not a front-panel state; None if it is."""
    if not isinstance(state, dict):
        return "not a JSON object of inputs"
    for key in state:
        if key not in INPUTS:
            return "unknown input %r; allowed: %s" % (key, ", ".join(INPUTS))
        value = state[key]
        if type(value) is not int or value not in (0, 1):
            return "%s is %r; allowed: 0 or 1" % (key, value)
    return None


class FrontPanel:
    def __init__(self, f, clock):
        self._f = f  # the panel file, opened "rb"
        self._clock = clock
        self._text = None
        self._next = 0

    def poll(self, world, now, force=False):
        """Apply the file's inputs to ``world`` when its content changed.

        A half-written or empty read is ignored and read again next time.
        Keys: ``INPUTS``, values 0/1 (logical: 1 = pressed / held / e-stop
        loop closed)."""
        if not force and self._clock.diff(now, self._next) < 0:
            return
        self._next = self._clock.add(now, _PANEL_MS)
        try:
            self._f.seek(0)
            text = self._f.read()
        except OSError:
            return
        if isinstance(text, bytes):
            text = text.decode()
        if text == self._text or not text.strip():
            return
        try:
            d = json.loads(text)
        except ValueError:
            return  # caught mid-write: read again next time
        self._text = text
        if problem(d) is not None:
            return  # not a panel state: the host refuses to write one
        for role in d:
            if role in world.inputs and (1 if d[role] else 0) != world.logical[role]:
                world.set_input(role, d[role])
                world.log.append((now, "panel %s=%d" % (role, 1 if d[role] else 0)))
