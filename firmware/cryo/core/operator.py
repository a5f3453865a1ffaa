"""The operator's commands: start, begin and stop a treatment; acknowledge
a fault; pause the audio alarm; hand the device to service.

``Operator(parts)`` answers the footswitch (``pressed``: what the device
does without a host) and the link (``start``, ``begin``, ``stop``,
``ack_fault``, ``pause_audio``, ``request_service_mode``). Before a
treatment it runs the self-test (sensors, no re-freezing, valve read-back,
watchdog armed, log room); ``tune_guard`` is the same kind of check for an
experiment in the TUNE phase. Refusals name the reason (``NotNow`` /
``Denied``); every role-asserted action is audited. The controller
publishes these methods under their names (``COMMANDS``).

Control path, between ticks (the footswitch inside the tick's control part).
"""

import cryo
from cryo.board import CHANNELS
from cryo.core.roles import denied, not_now, role_level
from cryo.interlock import conditions as C
from cryo.protocol import states as S
from cryo.storage import device_records as D
from cryo.storage import records as R

COMMANDS = (
    "start",
    "self_test",
    "begin",
    "stop",
    "ack_fault",
    "pause_audio",
    "request_service_mode",
    "request_reset",
)


class Operator:
    def __init__(self, parts):
        self._p = parts
        self._tick = parts.ticker
        self.service_requested = False
        self.service_role = None
        self.reset_requested = False

    def _now(self, now):
        return self._p.clock.ticks_ms() if now is None else now

    def pressed(self, now):
        """The technician's footswitch press starts a treatment: in READY it
        begins; in IDLE/DONE/ABORTED, with the handpiece out of its holder,
        it first runs the self-test and begins if that passed — what the
        device does without a host. Nothing starts in FAULT or service mode."""
        if self.service_requested:
            return
        st = self._tick.protocol.state
        try:
            if (1 << st) & S.STARTABLE and self._p.inputs.in_hand():
                if self.start(now):
                    self.begin(now)
            elif st == S.READY:
                self.begin(now)
        except Exception as e:  # noqa: BLE001 - refused (e.g. handpiece not held): stay put
            self._p.journal.note(now, "begin", "refused: %s" % e)

    def start(self, now=None):
        """IDLE/DONE/ABORTED → SELF_TEST → READY (or back, naming the reason)."""
        now = self._now(now)
        il = self._p.il
        if il.blocking():
            raise not_now("cannot start: %s" % ", ".join(C.names(il.blocking())))
        if not self._tick.protocol.start(now):
            raise not_now("cannot start in %s" % self._tick.protocol.name)
        ok, why = self.self_test(now)
        self._tick.protocol.self_test_done(ok, now, why)
        return ok

    def self_test(self, now):
        """Pre-treatment self-test: sensors, no re-freezing, valve outputs,
        the watchdog armed, log room. Returns (ok, reason)."""
        il = self._p.il
        why = self._refreeze_refusal(now)
        if why:
            return False, why
        temps = self._p.inputs.temps
        ch = 0
        while ch < len(CHANNELS):
            if il.required & (1 << ch):  # the tissue probes
                t = temps[ch]
                if il.bad[ch] or t is None:
                    return False, "sensor %s not reading" % CHANNELS[ch]
                if not (-10.0 <= t <= 45.0):
                    return False, "sensor %s implausible before treatment: %.1f C" % (
                        CHANNELS[ch],
                        t,
                    )
            ch += 1
        # Valve outputs: both de-energised and reading back de-energised.
        self._p.valve.force_closed()
        self._p.master.close()
        board = self._p.board
        for energised, name in (
            (board.valve_energised(), "valve"),
            (board.master_pin.value() != 0, "master valve"),
        ):
            if energised:
                return False, "%s output reads energised while commanded closed" % name
        if not self._arm_watchdog(now):
            return False, "no hardware watchdog"
        self._tick.check_storage(now)
        if not il.storage_ok():
            return False, "log storage unavailable or full"
        return True, ""

    def _refreeze_refusal(self, now):
        """Why the site may not be cooled again now (cryo.core.site), also
        recorded in the device event log; None when it may."""
        p = self._p.settings.params
        why = self._p.site.refusal(p["thaw_c"], p["min_thaw_s"])
        if why:
            t = self._p.inputs.temps[0]
            self._p.memory.record(D.DEV_REFUSED, D.REFUSED_NOT_THAWED, R.to_cc(t), now)
        return why

    def _arm_watchdog(self, now):
        """The hardware watchdog runs before any valve may open (every path
        into a cooling phase calls this). False when it is required and
        cannot run (the WATCHDOG condition then blocks)."""
        why = self._p.watchdog.arm()
        if why:
            self._p.journal.note(now, "watchdog", why)
        self._p.il.set_wdt_armed(self._p.watchdog.running)
        if self._p.settings.params["require_wdt"] and not self._p.watchdog.running:
            self._p.il.set_wdt_ok(False)
            return False
        return True

    def _hold_to_run(self, what):
        if not self._p.inputs.pedal():
            raise not_now("%s: footswitch is not pressed/held" % what)
        if not self._p.inputs.in_hand():
            raise not_now("%s: handpiece is not pressed/held" % what)

    def begin(self, now=None):
        """READY → PRECOOL: open the log session, then let the interlock grant."""
        now = self._now(now)
        if self._tick.protocol.state != S.READY:
            raise not_now("begin needs READY, state is %s" % self._tick.protocol.name)
        if self._p.il.blocking():
            raise not_now("cannot begin: %s" % ", ".join(C.names(self._p.il.blocking())))
        self._hold_to_run("cannot begin")
        st = self._p.settings
        name = str(self._p.board.definition.get("name", "board"))
        if not self._p.journal.begin(
            now, st.params, cryo.VERSION, self._p.fw_hash, st.config_hash(), name
        ):
            self._tick.protocol.abort(now, "log storage")
            return False
        self.new_site_if_moved(now)
        return self._tick.protocol.begin(now, self._p.inputs.temps[0])

    def new_site_if_moved(self, now):
        """A treatment on a new site (cryo.core.site) starts its cold dose at 0."""
        if self._p.site.is_new():
            self._p.il.new_site()
            self._p.memory.record(D.DEV_SITE, 0, D.SITE_NEW, now)
            self._p.journal.note(now, "site", "new treatment site: cold dose from 0")

    def tune_guard(self, now, what):
        """An experiment in the TUNE phase may start (the guard of ``cryo.core.engineer.Engineer``):
        idle, nothing blocking, hold-to-run, the site thawed, the watchdog
        armed; else NotNow naming why."""
        st = self._tick.protocol.state
        if not ((1 << st) & S.STARTABLE):
            raise not_now("%s needs an idle controller, state is %s" % (what, S.name(st)))
        if self._p.il.blocking():
            raise not_now("cannot start %s: %s" % (what, ", ".join(C.names(self._p.il.blocking()))))
        self._hold_to_run("%s is hold-to-run" % what)
        why = self._refreeze_refusal(now)
        if why:
            raise not_now("cannot start %s: %s" % (what, why))
        if not self._arm_watchdog(now):
            raise not_now("cannot start %s: no hardware watchdog" % what)

    def stop(self, reason="operator stop", now=None):
        """Stop a treatment now: valves closed in this call, then ABORTED."""
        now = self._now(now)
        self._tick.quench()
        self._p.journal.event(now, R.EV_STOP, 0, 0)
        return self._tick.protocol.abort(now, reason)

    # -- alarms and faults ---------------------------------------------------

    def ack_fault(self, role, now=None):
        """Acknowledge latched faults with a role; FAULT → IDLE once clear."""
        now = self._now(now)
        lvl = role_level(role)
        il = self._p.il
        before = il.latched
        cleared, still = il.acknowledge(lvl)
        j = self._p.journal
        j.note(now, "ack", "%s cleared %s" % (role, ",".join(C.names(cleared)) or "-"))
        j.audit("ack", role, cleared=C.names(cleared), still=C.names(still))
        i = 0
        while i < C.COUNT:
            if cleared & (1 << i):
                j.event(now, R.EV_ACK, i, lvl)
                self._p.memory.record(D.DEV_ACK, i, lvl, now)
            i += 1
        # An acknowledgement is a command between ticks: made durable now.
        self._tick.remember(now)
        if not (il.active | il.latched) and self._tick.protocol.state == S.FAULT:
            self._tick.protocol.clear_fault(now)
        if still and before:
            need = "service" if still & C.SERVICE_ACK else "the cause removed"
            return {"cleared": C.names(cleared), "latched": C.names(still), "needs": need}
        return {
            "cleared": C.names(cleared),
            "latched": C.names(still),
            "state": self._tick.protocol.name,
        }

    def pause_audio(self, role="operator", now=None):
        now = self._now(now)
        ev = self._p.alarms.pause_audio(now)
        self._p.journal.note(now, "audio_pause", "%s paused audio" % role)
        self._p.journal.event(now, R.EV_AUDIO_PAUSE, ev["ms"] // 1000, role_level(role))
        return ev

    def _stop_allowed(self, role, what):
        if role_level(role) < 2:
            raise denied("%s needs role engineer or service (got %s)" % (what, role))
        st = self._tick.protocol.state
        if not ((1 << st) & (S.STARTABLE | (1 << S.FAULT) | (1 << S.READY))):
            raise not_now("%s is not allowed in %s; stop the treatment first" % (what, S.name(st)))

    def request_service_mode(self, role):
        """Host asks for service mode: only when no treatment runs."""
        self._stop_allowed(role, "service mode")
        if self._p.watchdog.running:
            raise not_now(
                "service mode needs a watchdog that is not armed yet: it was armed by the "
                "first treatment since power-up; reset the board (a reset request over the "
                "link or a power cycle), then request service mode"
            )
        self._p.valve.force_closed()
        self._p.master.close()
        self.service_requested = True
        self.service_role = role
        self._p.journal.audit("service_mode", role)
        self._p.journal.note(
            self._p.clock.ticks_ms(), "service", "service mode requested by %s" % role
        )
        return True

    def request_reset(self, role):
        """Host asks for a hard reset, outside a treatment only: the loop
        stops like for service mode and main.py resets the board. Unlike
        service mode it is allowed with the watchdog armed: the reset is
        what disarms it (the only other way is a power cycle)."""
        self._stop_allowed(role, "a reset")
        self._p.valve.force_closed()
        self._p.master.close()
        self.service_requested = True  # the loop's stop condition
        self.service_role = role
        self.reset_requested = True
        self._p.journal.audit("reset", role)
        self._p.journal.note(self._p.clock.ticks_ms(), "reset", "reset requested by %s" % role)
        return True
