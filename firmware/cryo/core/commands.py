"""Operator and host commands: start/self-test, begin, stop, acknowledge,
audio pause, service mode, and the ``status()`` snapshot.

Refusals name the reason (``NotNow``/``Denied``); every accepted
role-asserted action is audited.
"""

from cryo.core.hardware import CHANNELS
from cryo.core.roles import denied, not_now, role_level
from cryo.interlock import conditions as C
from cryo.protocol import states as S
from cryo.storage import records as R


class CommandsMixin:
    """Controller methods: commands and status (control path)."""

    def start(self, now=None):
        """IDLE/DONE/ABORTED → SELF_TEST → READY (or back, naming the reason)."""
        now = self.clock.ticks_ms() if now is None else now
        il = self.il
        if il.blocking():
            raise not_now("cannot start: %s" % ", ".join(C.names(il.blocking())))
        if not self.protocol.start(now):
            raise not_now("cannot start in %s" % self.protocol.name)
        ok, why = self.self_test(now)
        self.protocol.self_test_done(ok, now, why)
        return ok

    def self_test(self, now):
        """Pre-treatment self-test: sensors, no re-freezing, valve outputs,
        the watchdog armed, log room. Returns (ok, reason)."""
        il = self.il
        why = self._refreeze_refusal(now)
        if why:
            return False, why
        ch = 0
        while ch < 2:
            if il.required & (1 << ch):
                if il.bad[ch] or self.temp_c[ch] is None:
                    return False, "sensor %s not reading" % CHANNELS[ch]
                t = self.temp_c[ch]
                if not (-10.0 <= t <= 45.0):
                    return False, "sensor %s implausible before treatment: %.1f C" % (
                        CHANNELS[ch],
                        t,
                    )
            ch += 1
        # Valve outputs: both de-energised and reading back de-energised.
        self.valve.force_closed()
        self.master.close()
        for pin, name in ((self.board.valve_pin, "valve"), (self.board.master_pin, "master valve")):
            if pin.value() != 0:
                return False, "%s output reads energised while commanded closed" % name
        if not self._arm_watchdog(now):
            return False, "no hardware watchdog"
        self._check_storage(now)
        if not il.storage_ok():
            return False, "log storage unavailable or full"
        return True, ""

    def _refreeze_refusal(self, now):
        """Why the site may not be cooled again now (cryo.core.site), also
        recorded in the device event log; None when it may."""
        p = self.params
        why = self.site.refusal(p["thaw_c"], p["min_thaw_s"])
        if why:
            self.memory.record(R.DEV_REFUSED, R.REFUSED_NOT_THAWED, R.to_cc(self.temp_c[0]), now)
        return why

    def _arm_watchdog(self, now):
        """Start the hardware watchdog before any valve may open (every
        path into a cooling phase calls this). False when it is required
        and cannot run (the WATCHDOG condition then blocks)."""
        if self.wdt is None:
            try:
                self.wdt = self.board.start_watchdog(self.wdt_ms)
            except Exception as e:  # noqa: BLE001 - reported as the self-test result
                self._event(now, "watchdog", "could not start: %s" % e)
        self.il.set_wdt_armed(self.wdt is not None)
        if self.params["require_wdt"] and self.wdt is None:
            self.il.set_wdt_ok(False)
            return False
        return True

    def begin(self, now=None):
        """READY → PRECOOL: open the log session, then let the interlock grant."""
        now = self.clock.ticks_ms() if now is None else now
        if self.protocol.state != S.READY:
            raise not_now("begin needs READY, state is %s" % self.protocol.name)
        if self.il.blocking():
            raise not_now("cannot begin: %s" % ", ".join(C.names(self.il.blocking())))
        for role, level in (("footswitch", self._foot_level), ("handpiece", self._hand_level)):
            pin = self.board.footswitch if role == "footswitch" else self.board.handpiece
            if pin is not None and pin.value() != level:
                raise not_now("cannot begin: %s is not pressed/held" % role)
        if not self._begin_session(now):
            self.protocol.abort(now, "log storage")
            return False
        self._new_site_if_moved(now)
        return self.protocol.begin(now, self.temp_c[0])

    def _new_site_if_moved(self, now):
        """A treatment on a new site (cryo.core.site) starts its cold dose at 0."""
        if self.site.is_new():
            self.il.new_site()
            self.memory.record(R.DEV_SITE, 0, R.SITE_NEW, now)
            self._event(now, "site", "new treatment site: cold dose from 0")

    def stop(self, reason="operator stop", now=None):
        """Stop a treatment now: valves closed in this call, then ABORTED."""
        now = self.clock.ticks_ms() if now is None else now
        self.valve.force_closed()
        self.demand = 0.0
        self._log_event(now, R.EV_STOP, 0, 0)
        return self.protocol.abort(now, reason)

    def ack_fault(self, role, now=None):
        """Acknowledge latched faults with a role; FAULT → IDLE once clear."""
        now = self.clock.ticks_ms() if now is None else now
        lvl = role_level(role)
        il = self.il
        before = il.latched
        cleared, still = il.acknowledge(lvl)
        self._event(now, "ack", "%s cleared %s" % (role, ",".join(C.names(cleared)) or "-"))
        self._audit("ack", role, cleared=C.names(cleared), still=C.names(still))
        i = 0
        while i < C.COUNT:
            if cleared & (1 << i):
                self._log_event(now, R.EV_ACK, i, lvl)
                self.memory.record(R.DEV_ACK, i, lvl, now)
            i += 1
        # An acknowledgement is a command between ticks: made durable now.
        self._remember(now)
        if not (il.active | il.latched) and self.protocol.state == S.FAULT:
            self.protocol.clear_fault(now)
        if still and before:
            need = "service" if still & C.SERVICE_ACK else "the cause removed"
            return {"cleared": C.names(cleared), "latched": C.names(still), "needs": need}
        return {"cleared": C.names(cleared), "latched": C.names(still), "state": self.protocol.name}

    def pause_audio(self, role="operator", now=None):
        now = self.clock.ticks_ms() if now is None else now
        ev = self.alarms.pause_audio(now)
        self._event(now, "audio_pause", "%s paused audio" % role)
        self._log_event(now, R.EV_AUDIO_PAUSE, ev["ms"] // 1000, role_level(role))
        return ev

    def request_service_mode(self, role):
        """Host asks for service mode: only when no treatment runs."""
        lvl = role_level(role)
        if lvl < 2:
            raise denied("service mode needs role engineer or service (got %s)" % role)
        st = self.protocol.state
        if not ((1 << st) & (S.STARTABLE | (1 << S.FAULT) | (1 << S.READY))):
            raise not_now(
                "service mode is not allowed in %s; stop the treatment first" % S.name(st)
            )
        if self.wdt is not None:
            raise not_now(
                "service mode needs a watchdog that is not armed yet: it was armed by the "
                "first treatment since power-up; reset the board, then request service mode"
            )
        now = self.clock.ticks_ms()
        self.valve.force_closed()
        self.master.close()
        self.service_requested = True
        self.service_role = role
        self._audit("service_mode", role)
        self._event(now, "service", "service mode requested by %s" % role)
        return True

    def status(self):
        """Snapshot for the host (the telemetry fields of cryo.link.messages)."""
        il = self.il
        t = self.temp_c
        temps = {}
        i = 0
        while i < 3:
            if self._drv[i] is not None:
                temps[CHANNELS[i]] = t[i]
            i += 1
        pid = self.pid
        return {
            "t_ms": self._last_tick,
            "phase": self.protocol.name,
            "cycle": self.protocol.cycle,
            "setpoint_c": self.setpoint_c,
            "temps": temps,
            "cj_c": self.cj_c,
            "demand": self.demand,
            "valve": self.valve.is_open,
            "master": il.master_open,
            "p": pid.p_term if pid is not None else None,
            "i": pid.i_term if pid is not None else None,
            "d": pid.d_term if pid is not None else None,
            "faults": C.names(il.active),
            "latched": C.names(il.latched),
            "alarms": C.names(self.alarms.mask),
            "alarm_priority": C.PRIORITY_NAMES[self.alarms.priority],
            "mode": "service"
            if self.service_requested
            else "autotune"
            if self._tuner is not None
            else "step"
            if self._step is not None
            else "auto",
            "overruns": self.overruns,
            "site_frozen": self.site.frozen,
            "internal_error": self.internal_error,
            "gain_band": self.schedule.active if self.schedule is not None else None,
            "reason": self.protocol.reason,
        }
