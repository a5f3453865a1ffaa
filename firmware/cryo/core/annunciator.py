"""What the operator sees and hears follow the interlock: the alarms
(IEC 60601-1-8), the freeze lamp, and the records of each alarm's start and
end and of the master valve (IEC 60601-1-8 6.12 alarm log).

Called after the valves have been dealt with (the interlock closes them
itself), so nothing here delays a safe state.
"""

from cryo.interlock import conditions as C
from cryo.storage import records as R


class Annunciator:
    def __init__(self, il, alarms, journal, freeze_led):
        self._il = il
        self._alarms = alarms
        self._journal = journal
        self._freeze_led = freeze_led  # a Pin or None
        self._mask = 0  # blocking conditions last annunciated
        self._master = False  # master valve state last recorded
        self._lit = -1

    def alarm_now(self, now):
        """A trip: sound its alarm at once (before the records)."""
        self._alarms.update(self._il.blocking(), now)

    def update(self, now):
        """Alarm starts and ends, the master valve's record, the lamp."""
        il = self._il
        mask = il.blocking()
        old = self._mask
        if mask != old:
            self._record_changes(old, mask, now)
            self._mask = mask
            self._alarms.update(mask, now)
        if il.master_open != self._master:
            self._master = il.master_open
            self._journal.event(now, R.EV_MASTER_VALVE, 1 if il.master_open else 0, 0)
        fl = self._freeze_led
        if fl is not None:
            lit = 1 if il.master_open else 0
            if lit != self._lit:
                self._lit = lit
                fl.value(lit)

    def _record_changes(self, old, new, now):
        j = self._journal
        i = 0
        while i < C.COUNT:
            b = 1 << i
            if new & b and not old & b:
                j.event(now, R.EV_ALARM_ON, i, C.PRIORITY[i])
            elif old & b and not new & b:
                j.event(now, R.EV_ALARM_OFF, i, 0)
            i += 1
