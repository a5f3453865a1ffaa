"""Operator inputs of the interlock: the e-stop's normally-closed loop
(open now, or opened since the last evaluation however briefly: the pin
interrupt ``edge``), and the hold-to-run footswitch and handpiece during a
treatment.

``estop``, ``footswitch`` and ``handpiece`` are machine.Pin-like inputs (or
None). Integer-only and allocation-free; ``edge`` may run in a hard
interrupt.
"""

from micropython import const

from cryo.interlock import block as B
from cryo.interlock import conditions as C
from cryo.protocol import states as S

_EDGE_MASK = const(0xFFFF)  # e-stop edge counter wraps here (a small int)


class OperatorInputs:
    def __init__(self, estop=None, footswitch=None, handpiece=None):
        self._estop = estop
        self._foot = footswitch
        self._hand = handpiece
        self._edges = 0  # written only by edge()
        self._seen = 0

    def edge(self):
        """The e-stop loop opened (hard IRQ): count it. A counter, not a
        flag, so an edge that arrives while ``check`` reads it is never
        lost."""
        self._edges = (self._edges + 1) & _EDGE_MASK

    def check(self, ph, lim):
        """Condition bits (ESTOP, RELEASED)."""
        act = 0
        e = self._edges
        if e != self._seen:
            self._seen = e
            act |= 1 << C.ESTOP
        if self._estop is not None and self._estop.value() != lim[B.L_ESTOP_OK]:
            act |= 1 << C.ESTOP
        if (1 << ph) & S.TREATING:
            foot = self._foot
            hand = self._hand
            if (foot is not None and foot.value() != lim[B.L_FOOT_PRESSED]) or (
                hand is not None and hand.value() != lim[B.L_HAND_HELD]
            ):
                act |= 1 << C.RELEASED
        return act
