"""The treatment log session, events, samples, the audit trail, storage room.

Every write is contained: a storage failure clears ``il.storage_ok`` (the
STORAGE condition, valves closed by the next evaluation in the same tick)
and never raises into the tick.
"""

from cryo.core.hardware import board_def, fw_version
from cryo.protocol import states as S
from cryo.storage import config as CFG
from cryo.storage import records as R


class SessionMixin:
    """Controller methods: log session, events, samples, audit (control path)."""

    def _event(self, now, kind, text):
        ev = self.events
        if len(ev) >= self._ev_max:
            ev.pop(0)
        ev.append((now, kind, text))

    def _log_event(self, now, code, arg=0, arg2=0):
        """One event (``code`` an ``EV_*`` of cryo.storage.records) into the
        open treatment log session; a storage failure trips STORAGE."""
        log = self.log
        if log is None or not log.active:
            return
        try:
            log.event(code, arg, arg2, now)
        except OSError as e:
            self.il.set_storage_ok(False)
            self._event(now, "storage", "log event failed: %s" % e)

    def _log_sample(self, now):
        """One sample into the open session. The conversion to the record's
        integer fields happens once, in the log (``TreatmentLog.sample_c``
        with ``cryo.storage.records.to_cc``/``to_dc``)."""
        log = self.log
        if log is None or not log.active:
            return
        try:
            log.sample_c(
                now,
                self.temp_c[0],
                self.temp_c[2],
                self.setpoint_c,
                self.demand,
                self.valve.is_open,
                self.protocol.state,
            )
        except OSError as e:
            self.il.set_storage_ok(False)
            self._event(now, "storage", "log sample failed: %s" % e)

    def _begin_session(self, now):
        log = self.log
        if log is None:
            return True
        p = self.params
        rtc_s, rtc_ms = 0, 0
        if self.rtc is not None:
            try:
                rtc_s, rtc_ms = self.rtc()
            except Exception as e:  # noqa: BLE001 - a dead RTC must not block a treatment
                self._event(now, "rtc", "unreadable: %s" % e)
        header = {
            "rtc_s": rtc_s,
            "rtc_ms": rtc_ms,
            "fw_version": fw_version(),
            "fw_hash": self.fw_hash,
            "config_hash": self._config_hash(),
            "board_id": str(board_def(self.board).get("name", "board"))[:16],
            "target_cc": int(p["target_c"] * 100),
            "thaw_cc": int(p["thaw_c"] * 100),
            "freeze_ds": int(p["freeze_s"] * 10),
            "cycles": int(p["cycles"]),
            "floor_cc": int(p["floor_c"] * 100),
            "max_freeze_ds": int(p["freeze_max_s"] * 10),
            "min_thaw_ds": int(p["min_thaw_s"] * 10),
        }
        try:
            log.begin_session(header, now, self.treatment_seconds())
            return True
        except Exception as e:  # noqa: BLE001 - LogFull or I/O: no treatment
            self.il.set_storage_ok(False)
            self._event(now, "storage", "cannot begin log session: %s" % e)
            return False

    def _config_hash(self):
        """SHA-256 of the configuration in force, for the session header.

        Kept from the last configuration change (``_rehash_config``: at
        construction and in ``set_param``, both between ticks), because
        formatting and hashing every value allocates ~17 kB — more than
        the largest tick allocates otherwise (7.8 kB, a limit re-placement)."""
        h = self._cfg_hash
        if h is None:
            h = self._rehash_config()
        return h

    def _rehash_config(self):
        self._cfg_hash = self._hash_config()
        return self._cfg_hash

    def _hash_config(self):
        try:
            cfg = dict(self.params)
            for k in self._extra:
                cfg[k] = self._extra[k]
            return CFG.config_hash(cfg)
        except (TypeError, ValueError):  # a value JSON cannot encode: zeros
            return b"\x00" * 32

    def _end_session(self, now, state):
        log = self.log
        if log is None or not log.active:
            return
        outcome = R.OUTCOME_COMPLETED
        if state == S.ABORTED:
            outcome = R.OUTCOME_STOPPED
        elif state == S.FAULT:
            outcome = R.OUTCOME_FAULT
        try:
            log.end_session({"outcome": outcome}, now)
        except Exception as e:  # noqa: BLE001
            self.il.set_storage_ok(False)
            self._event(now, "storage", "log end failed: %s" % e)

    def _audit(self, what, role, **fields):
        a = self.audit
        if a is None:
            return
        entry = {"what": what, "role": role}
        for k in fields:
            entry[k] = fields[k]
        try:
            a.append(entry)
        except Exception:  # noqa: BLE001 - audit failure is reported by storage checks
            self.il.set_storage_ok(False)

    def _check_storage(self, now):
        ok = 0
        log = self.log
        if log is not None:
            try:
                if log.active:
                    ok = 0 if log.full else 1
                else:
                    ok = 1 if log.has_room_for(self.treatment_seconds()) else 0
            except Exception as e:  # noqa: BLE001 - storage failure is a condition, not a crash
                self._event(now, "storage", "log check failed: %s" % e)
                ok = 0
        self.il.set_storage_ok(ok)
        self._storage_t = now

    def treatment_seconds(self):
        """Longest treatment the parameters allow (for log room checks)."""
        p = self.params
        thaw_allowance_s = 600  # a thaw through the latent-heat plateau takes minutes
        return int(
            p["precool_s"]
            + p["cycles"] * (p["approach_max_s"] + p["min_thaw_s"] + thaw_allowance_s)
            + 60
        )
