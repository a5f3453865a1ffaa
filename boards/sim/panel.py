"""The front panel of the real-time virtual board (``cryo sim --panel FILE``).

A host file holding the physical inputs as JSON, ``{"footswitch": 1, ...}``:
the technician's hands. The host writes it in place
(``host_tools.sim.write_panel``); the world reads it at most every
``_PANEL_MS`` of board time and applies what changed.
"""

import json

_PANEL_MS = 100  # the file is read at most this often (board time)


class FrontPanel:
    def __init__(self, f, clock):
        self._f = f  # the panel file, opened "rb"
        self._clock = clock
        self._text = None
        self._next = 0

    def poll(self, world, now, force=False):
        """Apply the file's inputs to ``world`` when its content changed.

        A half-written or empty read is ignored and read again next time.
        Keys: the board's inputs (``estop``, ``footswitch``, ``handpiece``),
        values 0/1 (logical: 1 = pressed / held / e-stop loop closed)."""
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
        if not isinstance(d, dict):
            return
        for role in d:
            if role in world.inputs and (1 if d[role] else 0) != world.logical[role]:
                world.set_input(role, d[role])
                world.log.append((now, "panel %s=%d" % (role, 1 if d[role] else 0)))
