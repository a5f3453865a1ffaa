"""What the controller writes down: the treatment log session, the audit
trail, and the recent events and faults kept in RAM for ``status``.

``Journal(log, audit, interlock, wear, rtc)``: ``log`` a
``cryo.storage.log.TreatmentLog`` (None: no storage; the STORAGE condition
then blocks a treatment), ``audit`` a ``cryo.storage.audit.AuditTrail``,
``wear`` the ``cryo.core.wear.ValveWear`` whose counts close a session,
``rtc`` a callable returning (seconds since 2000-01-01, ms) for session
headers (None: zeros).

Every write is contained: a storage failure clears the interlock's storage
health (``set_storage_ok(False)``: the STORAGE condition, the valves closed
by the evaluation that follows in the same tick) and never raises into the
tick. The device event log beside it (faults outside sessions, boots,
acknowledgements) belongs to ``cryo.core.memory.SafetyMemory``.

Control path.
"""

from cryo.protocol import states as S
from cryo.storage import records as R

_RECENT = 32  # (t_ms, kind, text) kept for status and the demo
_FAULTS = 64  # (t_ms, condition names, phase name) kept
# A thaw through the latent-heat plateau takes minutes: the room a session
# reserves counts this much per cycle beyond the minimum thaw time.
_THAW_ALLOWANCE_S = 600


def _ds(seconds):
    """Seconds -> the header's 0.1 s fields (rounded, like every logged value)."""
    return int(round(seconds * 10))


def treatment_seconds(p):
    """Longest treatment the parameters ``p`` allow (log room)."""
    return int(
        p["precool_s"]
        + p["cycles"] * (p["approach_max_s"] + p["min_thaw_s"] + _THAW_ALLOWANCE_S)
        + 60
    )


class Journal:
    def __init__(self, log, audit, interlock, wear, rtc=None):
        self.log = log
        self._audit = audit
        self._il = interlock
        self._wear = wear
        self._room_ok = 1  # the last room check's answer (a change is noted)
        self.rtc = rtc
        self.events = []  # recent (t_ms, kind, text), bounded
        self.fault_history = []  # (t_ms, condition names, phase name), bounded

    def log_budget(self):
        """Why the log's budget is smaller than ``log.max_kib`` on this
        board's flash (``TreatmentLog.capped``); None if it is not."""
        return None if self.log is None else self.log.capped

    def note(self, now, kind, text):
        """A line in the recent-events ring (RAM only)."""
        ev = self.events
        if len(ev) >= _RECENT:
            ev.pop(0)
        ev.append((now, kind, text))

    def fault(self, now, names, phase):
        if len(self.fault_history) < _FAULTS:
            self.fault_history.append((now, names, phase))

    def _failed(self, now, what, e):
        self._il.set_storage_ok(False)
        self.note(now, "storage", "%s failed: %s" % (what, e))

    def event(self, now, code, arg=0, arg2=0):
        """One event (``code`` an ``EV_*`` of cryo.storage.records) into the
        open treatment log session."""
        log = self.log
        if log is None or not log.active:
            return
        try:
            # committed at the idle point right after the tick (commit_soon)
            log.event(code, arg, arg2, now, False)
        except OSError as e:
            self._failed(now, "log event", e)

    def sample(self, now, tissue_c, aux_c, setpoint_c, demand, valve_open, state):
        """One sample into the open session. The conversion to the record's
        integer fields happens once, in the log (``TreatmentLog.sample_c``)."""
        log = self.log
        if log is None or not log.active:
            return
        try:
            log.sample_c(now, tissue_c, aux_c, setpoint_c, demand, valve_open, state)
        except OSError as e:
            self._failed(now, "log sample", e)

    def begin(self, now, p, fw_version, fw_hash, config_hash, board_id):
        """Open a session for a treatment with parameters ``p``; False (and
        STORAGE) when the log cannot take it."""
        log = self.log
        if log is None:
            return True
        rtc_s, rtc_ms = 0, 0
        if self.rtc is not None:
            try:
                rtc_s, rtc_ms = self.rtc()
            except Exception as e:  # noqa: BLE001 - a dead RTC must not block a treatment
                self.note(now, "rtc", "unreadable: %s" % e)
        header = {
            "rtc_s": rtc_s,
            "rtc_ms": rtc_ms,
            "fw_version": fw_version,
            "fw_hash": fw_hash,
            "config_hash": config_hash,
            "board_id": board_id[:16],
            "target_cc": R.to_cc(p["target_c"]),
            "thaw_cc": R.to_cc(p["thaw_c"]),
            "freeze_ds": _ds(p["freeze_s"]),
            "cycles": int(p["cycles"]),
            "floor_cc": R.to_cc(p["floor_c"]),
            "max_freeze_ds": _ds(p["freeze_max_s"]),
            "min_thaw_ds": _ds(p["min_thaw_s"]),
        }
        try:
            log.begin_session(header, now, treatment_seconds(p))
            self._wear.begin_session()
            return True
        except Exception as e:  # noqa: BLE001 - LogFull or I/O: no treatment
            self._failed(now, "begin log session", e)
            return False

    def end(self, now, state):
        """Close the open session with the outcome of end phase ``state``."""
        log = self.log
        if log is None or not log.active:
            return
        outcome = R.OUTCOME_COMPLETED
        if state == S.ABORTED:
            outcome = R.OUTCOME_STOPPED
        elif state == S.FAULT:
            outcome = R.OUTCOME_FAULT
        try:
            w = self._wear
            # committed with the summary that follows: one flash commit
            log.event(R.EV_VALVE_CYCLES, w.session_cycles(), w.lifetime(), now, False)
            log.end_session({"outcome": outcome}, now)
        except Exception as e:  # noqa: BLE001
            self._failed(now, "log end", e)

    def commit(self):
        """The idle point: the log's queued samples to flash."""
        log = self.log
        if log is not None and log.active:
            log.commit_soon()

    def audit(self, what, role, **fields):
        a = self._audit
        if a is None:
            return
        entry = {"what": what, "role": role}
        for k in fields:
            entry[k] = fields[k]
        try:
            a.append(entry)
        except Exception:  # noqa: BLE001 - audit failure is reported by storage checks
            self._il.set_storage_ok(False)

    def check_room(self, now, p):
        """Whether the log can take the open session or, between sessions,
        the longest treatment ``p`` allows (1/0; part of the interlock's
        storage health, ``Tick.check_storage``)."""
        ok = 0
        log = self.log
        if log is not None:
            try:
                if log.active:
                    ok = 0 if log.full else 1
                else:
                    secs = treatment_seconds(p)
                    ok = 1 if log.has_room_for(secs) else 0
                    if not ok and self._room_ok:  # say why once, when it changes
                        from cryo.storage.log import no_room

                        need = log.bytes_for(secs)
                        text = no_room(secs, need, log.free_bytes(), log.capacity_bytes())
                        self.note(now, "storage", text)
            except Exception as e:  # noqa: BLE001 - storage failure is a condition, not a crash
                self.note(now, "storage", "log check failed: %s" % e)
                ok = 0
        self._room_ok = ok
        return ok
