"""Solenoid wear: the valve's lifetime cycle count and when service is due.

A cryogenic solenoid is rated for a number of closed->open cycles (its
datasheet: typically 10^6-10^7); past it the seat and the plunger wear and
the valve may leak or stick, the failure the interlock's stuck-open watch
then has to catch. The count since boot is the valve's own
(``SolenoidValve.cycles``); what came before is in the safety state on
flash (``cryo.storage.safety_state``, field ``valve_cycles``), written by
``cryo.core.memory`` at the idle point. A power cut loses at most the
cycles since the last save (at most a minute's, see ``SafetyMemory``).

``service_cycles``: the limit from the board definition
(``valve.service_cycles``, the fitted valve's rating with a margin); None
when the definition gives none (no warning, the status says so).
"""

from micropython import const

_SAT = const((1 << 30) - 1)  # small-int bound on a 32-bit board


class ValveWear:
    def __init__(self, valve, saved_cycles, service_cycles=None):
        self._valve = valve
        self._base = saved_cycles if saved_cycles < _SAT else _SAT
        self.service_cycles = service_cycles
        self._session_start = 0

    def lifetime(self):
        """Closed->open cycles over the valve's life (saturates at 2**30 - 1)."""
        n = self._base + self._valve.cycles
        return n if n < _SAT else _SAT

    def service_due(self):
        return self.service_cycles is not None and self.lifetime() >= self.service_cycles

    def begin_session(self):
        self._session_start = self._valve.cycles

    def session_cycles(self):
        """Cycles since the treatment session began."""
        return self._valve.cycles - self._session_start
