"""Interlock fault injection on the virtual board (CPython and MicroPython).

``run_case(condition, phase)`` builds a fresh rig, drives a treatment to
``phase``, injects the condition's cause *at the hardware/plant level* (chip
fault, sensor reading, stuck valve, empty dewar, pressed e-stop, released
footswitch, stalled loop, failing watchdog, corrupted limit in RAM, failing
log storage) and then ticks until the condition is recorded (or a bound).
After every tick it checks: once the condition is recorded, both valve
outputs are de-energised in *that* tick (and the plant sees no flow).

Returns a dict: ``recorded`` (bool), ``ticks`` (ticks from injection to the
trip), ``closed_same_tick`` (valves closed in the trip tick), ``open_before``
(the cryogen valve was open in the tick before), ``state`` (protocol state
after the trip), ``history`` (the controller's fault record), ``alarm``
(priority name signalled), ``phase_at_trip``.
"""

from core_rig import Rig

from cryo.interlock import block as B
from cryo.interlock import conditions as C
from cryo.protocol import states as S

CORE = __file__[: __file__.rfind("/")]
FAST_PLANT = CORE + "/fast_plant.json"
# Every probe on the skin: an injection meant to exercise one condition's
# own path moves them all (one moved alone is a disagreement).
_TISSUE = ("tissue", "tissue2", "tissue3")

# Short protocol so every phase is reached within seconds of virtual time.
FAST = {
    "target_c": -35.0,
    "freeze_s": 5.0,
    "cycles": 2,
    "thaw_c": -5.0,
    "min_thaw_s": 10.0,
    # The core tests run the fast plant (10x spray) with the calibrated
    # plant's gains: its reading falls up to 40 degC/s on the approach and
    # the regulator turns it round in time, so the floor's anticipation
    # looks less far ahead (the safety matrix runs it with gains / 10 and
    # the default lead).
    "floor_lead_s": 0.2,
}

PHASES = ("IDLE", "READY", "PRECOOL", "FREEZE", "THAW")

# Where each condition can arise (docs/safety.md explains the others:
# e.g. no freeze timer runs before a treatment, a released footswitch is
# the normal state before one, the master valve is closed outside a
# treatment so a stuck solenoid delivers nothing).
APPLIES = {
    "overcool": PHASES,
    "freeze_time": ("PRECOOL", "FREEZE", "THAW"),
    "dose": ("PRECOOL", "FREEZE", "THAW"),
    "sensor": PHASES,
    "disagree": PHASES,
    "no_cool": ("PRECOOL", "FREEZE", "THAW"),
    "stuck_open": ("PRECOOL", "FREEZE", "THAW"),
    "depleted": ("PRECOOL", "FREEZE"),
    "pressure": PHASES,
    "estop": PHASES,
    "released": ("PRECOOL", "FREEZE", "THAW"),
    "overrun": PHASES,
    "watchdog": ("READY", "PRECOOL", "FREEZE", "THAW"),  # armed by the self-test
    "config": PHASES,
    "storage": PHASES,
    "firmware": PHASES,
    "internal": PHASES,
    # Valve-open budget of a FREEZE before its target: from PRECOOL and THAW
    # the treatment reaches that FREEZE after the injection (in THAW a
    # reading frozen cold keeps the valves closed: the dose ends it).
    "excess_flow": ("PRECOOL", "FREEZE"),
}

EXTRA_CONFIG = {
    # A stuck-open valve shows once the regulator asks for nothing: a warm
    # target leaves the floor (-60 degC) far enough away that the stuck-open
    # check, not the floor, is what trips on the fast plant.
    "stuck_open": {"target_c": -20.0},
    # Shorter limits so the time-integrated conditions trip within seconds.
    "dose": {"dose_max_cs": 400.0, "dose_threshold_c": 0.0, "target_c": -25.0},
    "freeze_time": {"freeze_max_s": 15.0},
    # The fast plant reaches the target after about 4 s of full flow and
    # holds it for 5 s at a fraction of that.
    "excess_flow": {"flow_max_s": 4.5},
}


def _stick(rig, name, value_c):
    ch = rig.world.channels[name]
    ch.stuck = True
    ch.hot_c = value_c


def _raise_oserror(*a, **k):
    raise OSError(28, "ENOSPC")


def _no_room(*a, **k):
    return False


def _raise_runtime(*a, **k):
    raise RuntimeError("injected defect")


def inject(rig, cond):
    w = rig.world
    ctl = rig.ctl
    if cond == "overcool":
        # The tissue keeps getting colder at 20 °C/s on every probe (fast but
        # plausible for a spray: sensor supervision accepts it) until it
        # crosses the hard floor.
        for name in _TISSUE:
            w.channels[name].drift_c_per_s = -20.0
    elif cond == "freeze_time":
        # The sequencer fails to end FREEZE (its copy of freeze_s corrupted):
        # the interlock's own hold limit must stop the freeze.
        p = dict(ctl.protocol.p)
        p["freeze_s"] = 100000.0
        ctl.protocol.p = p
    elif cond == "dose":
        # The tissue probes read ever colder than the plant, 1 °C/s (a
        # plausible rate, so sensor supervision stays quiet): the cold dose
        # grows until its limit, before the (lowered) floor is reached.
        for name in _TISSUE:
            w.channels[name].drift_c_per_s = -1.0
    elif cond == "sensor":
        w.channels["tissue"].chip.open_circuit = True
    elif cond == "disagree":
        w.channels["tissue2"].offset_c = 15.0
    elif cond == "no_cool":
        w.valve_stuck = "closed"
    elif cond == "stuck_open":
        w.valve_stuck = "open"
    elif cond == "depleted":
        w.plant.empty_reservoir()
    elif cond == "pressure":
        w.plant.pressure_loss = 0.75
    elif cond == "estop":
        w.set_input("estop", 0)
    elif cond == "released":
        w.set_input("footswitch", 0)
    elif cond == "overrun":
        rig.skip(1000)  # the loop stalls for 1 s (heartbeat 500 ms)
    elif cond == "watchdog":
        if ctl.watchdog.running:
            ctl.board.wdt.feed = _raise_oserror  # the armed watchdog cannot be fed
        else:
            rig.board.start_watchdog = _raise_oserror  # it cannot be armed
    elif cond == "config":
        ctl.il.lim[0] -= 1  # one corrupted limit word in RAM
    elif cond == "firmware":
        ctl.il.set_fw_ok(False)  # no authentic app (boot's cryo.app FAULT_NO_APP)
    elif cond == "internal":
        # A firmware defect: an exception out of a part of the tick.
        ctl.protocol.step = _raise_runtime
    elif cond == "excess_flow":
        # Every tissue probe reads warm (the handpiece lifted off the skin;
        # a cause shared by the pair alone is the skin probe's
        # disagreement): the readings stay above the target while the
        # tissue freezes.
        for name in _TISSUE:
            _stick(rig, name, w.channels[name].hot_c)
    elif cond == "storage":
        log = ctl.log
        log.has_room_for = _no_room
        log.sample = _raise_oserror
        log.event = _raise_oserror
    else:
        raise ValueError("no injection for %r" % cond)


def goto(rig, phase):
    """Drive a fresh rig to ``phase`` (name). Returns True when there."""
    rig.step(3)
    if phase == "IDLE":
        return rig.phase() == S.IDLE
    rig.ctl.start()
    if phase == "READY":
        rig.step(2)
        return rig.phase() == S.READY
    rig.hold(True)
    # The press is acted on at the idle point after the tick (PRECOOL
    # begins there); the next tick opens the valves.
    rig.step(2)
    if phase == "PRECOOL":
        return rig.phase() == S.PRECOOL
    if phase == "FREEZE":
        ok = rig.run_until_regulating(200)  # FREEZE, the solenoid proved closed
        rig.step(15)  # mid pull-down, valve open
        return ok and rig.phase() == S.FREEZE
    ok = rig.run_until(S.THAW, 2000)
    rig.step(5)
    return ok and rig.phase() == S.THAW


def run_case(cond, phase, seed=1, max_ticks=3000, start_ms=0, board=None):
    """``board``: a board definition dict (None: boards/sim/board.json)."""
    cfg = dict(FAST)
    extra = EXTRA_CONFIG.get(cond)
    if extra:
        for k in extra:
            cfg[k] = extra[k]
    rig = Rig(seed=seed, config=cfg, plant=FAST_PLANT, start_ms=start_ms, board=board)
    if not goto(rig, phase):
        return {"error": "could not reach %s (state %s)" % (phase, S.name(rig.phase()))}
    ctl = rig.ctl
    il = ctl.il
    bit = 1 << C.code_of(cond)
    if (il.active | il.latched) & bit:
        return {"error": "%s already active before injection" % cond}
    clean_before = not (il.active | il.latched)
    inject(rig, cond)
    out = {
        "recorded": False,
        "ticks": -1,
        "closed_same_tick": None,
        "open_before": False,
        "state": None,
        "clean_before": clean_before,
    }
    n = 0
    all_closed_after = True
    flow_seen = False
    while n < max_ticks:
        was_open = ctl.valve.is_open
        rig.step(1)
        n += 1
        if rig.world.plant.flow > 0.0:
            flow_seen = True
        if (il.active | il.latched) & bit:
            out["recorded"] = True
            out["ticks"] = n
            out["closed_same_tick"] = rig.valves_closed()
            out["open_before"] = was_open
            out["state"] = S.name(rig.phase())
            out["phase_at_trip"] = (
                ctl.journal.fault_history[-1][2] if ctl.journal.fault_history else None
            )
            break
    if out["recorded"]:
        # Stays safe afterwards: a few more ticks with the valves closed.
        k = 0
        while k < 20:
            rig.step(1)
            if not rig.valves_closed():
                all_closed_after = False
            k += 1
    else:
        out["state"] = S.name(rig.phase())
    out["closed_after"] = all_closed_after
    out["flow_seen"] = flow_seen
    out["history"] = [h[1] for h in ctl.journal.fault_history]
    out["alarm"] = C.PRIORITY_NAMES[ctl.alarms.priority]
    out["latched"] = C.names(il.latched)
    return out


def run_phases(cond, phases=PHASES):
    """All phases for one condition (one MicroPython process per condition)."""
    res = {}
    for ph in phases:
        res[ph] = run_case(cond, ph, max_ticks=3000 if ph in APPLIES[cond] else 300)
    return res


def alloc_proof(cond, assert_no_alloc):
    """Drive to FREEZE, inject ``cond``, then prove that evaluating it — the
    trip path included: condition check, permit withdrawal, valve and master
    de-energise — allocates nothing. Each proof call clears the masks first
    so every call is a fresh trip. Returns (proved, tripped_each_call)."""
    cfg = dict(FAULT_FREE)
    extra = EXTRA_CONFIG.get(cond)
    if extra:
        for k in extra:
            cfg[k] = extra[k]
    rig = Rig(seed=2, config=cfg, plant=FAST_PLANT)
    goto(rig, "FREEZE")
    il = rig.ctl.il
    clock = rig.clock
    bit = 1 << C.code_of(cond)
    inject(rig, cond)
    n = 0
    while n < 3000 and not ((il.active | il.latched) & bit):
        rig.step(1)
        n += 1
    if cond == "overcool":
        # The anticipation tripped first: go on until the reading itself is
        # below the floor, the condition the proof re-evaluates.
        while n < 3000 and il.code[0] >= il.lim[B.L_FLOOR0]:
            rig.step(1)
            n += 1
    now = rig.now
    phase = S.FREEZE
    rig.ctl.protocol.state = phase
    il.set_phase(phase, now)
    if cond == "freeze_time":
        il.mark_reached(clock.add(now, -100000))
    if cond == "no_cool":
        il._cooling.expire_watch(now)  # the watch ran out long ago
    prover = _TripProver(il, now, clock.add(now, -1000) if cond == "overrun" else now, bit)
    if cond == "excess_flow":
        prover.spend_budget = True  # the valve-open budget is spent
    if cond == "stuck_open":
        # Re-arm the observation window each call: still falling since long ago.
        prover.stuck_t = clock.add(now, -10000)
        prover.stuck_ref = il.code[0] + 1000
    try:
        # A bound method: a closure over more than a few cells would make
        # MicroPython's closure call allocate its argument array.
        ok = assert_no_alloc(prover.trip, 50)
    except AssertionError as e:
        return str(e), False
    return ok, prover.count >= 50 and rig.valves_closed()


class _TripProver:
    def __init__(self, il, now, last, bit):
        self.il = il
        self.now = now
        self.last = last
        self.bit = bit
        self.count = 0
        self.stuck_t = None
        self.stuck_ref = 0
        self.spend_budget = False

    def trip(self):
        il = self.il
        # Test set-up, not an interface: clear the masks so every call is a
        # fresh trip of the same path.
        il.active = 0
        il.latched = 0
        il._new = 0
        il.phase = 4  # FREEZE
        il._last = self.last
        if self.stuck_t is not None:
            il.master_open = True  # the trip closed it: cryogen could flow again
            il.set_demand(0)  # the solenoid is commanded closed
            il._proof.cancel()  # proved at FREEZE entry: the watch judges now
            il._stuck.arm_for_proof(self.stuck_t, self.stuck_ref)
        if self.spend_budget:
            il._limits.spend_budget_for_proof(il.lim)
        il.evaluate(self.now)
        if il._new & self.bit:
            self.count += 1


FAULT_FREE = FAST


class _Lcg:
    def __init__(self, seed):
        self.s = (seed * 2654435761 + 1) & 0x7FFFFFFF

    def next(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 8) % n


def random_walk(seed, steps=150, start_ms=0):
    """Random readings, events and commands (a deterministic LCG, so the same
    walk runs on MicroPython); checks after every tick that an open valve
    means PRECOOL/FREEZE/TUNE with the permit and nothing active or latched,
    and that a latched fault has both valves closed. Returns counters."""
    rng = _Lcg(seed)
    rig = Rig(seed=seed, config=FAST, plant=FAST_PLANT, start_ms=start_ms)
    w = rig.world
    ctl = rig.ctl
    il = ctl.il
    seen = {"open_ticks": 0, "latched_ticks": 0, "violations": 0, "refused": 0}
    chans = ("tissue", "tissue2", "aux", "tissue3")

    def check():
        if rig.board.valve_pin.value() or w.valve_is_open():
            seen["open_ticks"] += 1
            st = rig.phase()
            if not (
                st in (S.PRECOOL, S.FREEZE, S.TUNE)
                and il.permit
                and il.latched == 0
                and il.active == 0
            ):
                seen["violations"] += 1
        if il.latched:
            seen["latched_ticks"] += 1
            if not rig.valves_closed():
                seen["violations"] += 1

    rig.step(3)
    k = 0
    while k < steps:
        a = rng.next(20)
        try:
            if a <= 6:
                n = 1 + rng.next(40)
                while n > 0:
                    rig.step(1)
                    check()
                    n -= 1
            elif a <= 9:
                rig.hold(False)
                rig.step(1)
                check()
                ctl.start()
                rig.hold(True)  # the footswitch press (edge) begins the treatment
            elif a == 10:
                rig.hold(rng.next(3) != 0)
            elif a == 11:
                w.set_input("estop", rng.next(6) != 0)
            elif a == 12:
                ctl.stop("walk")
            elif a <= 14:
                ctl.ack_fault(("operator", "engineer", "service", "service")[rng.next(4)])
            elif a == 15:
                ch = w.channels[chans[rng.next(3)]]
                ch.chip.open_circuit = rng.next(5) == 0
            elif a == 16:
                w.channels[chans[rng.next(2)]].offset_c = float(rng.next(31) - 15)
            elif a == 17:
                w.valve_stuck = (None, None, None, "open", "closed")[rng.next(5)]
            elif a == 18:
                w.plant.pressure_loss = rng.next(5) * 0.2
            else:
                rig.skip(rng.next(700))
        except Exception as e:  # noqa: BLE001 - refusals carry a reason
            if not str(e):
                seen["violations"] += 1
            seen["refused"] += 1
        k += 1
    return seen
