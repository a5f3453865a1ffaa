"""Fault-injection matrix on the virtual board (CPython and MicroPython).

``run_case(mode, phase, plant)`` drives the real firmware (core_rig.Rig:
emulated chips, valves, inputs and a physical plant, virtual time) to a
treatment ``phase``, injects one single fault ``mode`` at the hardware,
plant or operator level (docs/hazards.md names every mode) and watches the
patient until the fault is handled. Checked after every control tick AND
every valve sub-tick (``World.wait_for_tick``):

* no valve output energised while a condition is active or latched (so both
  valves are closed in the tick a condition rises);
* uncommanded cryogen flow (the path through both valves open while the
  solenoid output is de-energised, or at all after the first trip; a seat
  leak counts whenever the master is open) at most ``MAX_UNCOMMANDED_MS``;
* the TRUE surface temperature (the plant's surface node, not a sensor)
  never more than ``FLOOR_SLACK_C`` below the floor;
* the mode's expectation in this phase: ``detect`` (one of its conditions
  raised within the window: detection time = injection to condition, ms of
  virtual time), ``quiet`` (nothing trips; outside the cooling phases no
  valve is energised) or ``safe`` (only the checks above);
* every condition seen has a ``DEV_FAULT`` record in the device event log;
* latches intact (service-level ones too, against an operator
  acknowledgement) after a power cut and after a reset (``Rig.reboot``);
* no new treatment on tissue below the thaw threshold.

Returns a dict: ``fails`` (list of messages, empty = pass), ``detect_ms``,
``raised`` (condition names).
"""

import os

import core_rig
import core_scenarios as SC
import vboard

from cryo.interlock import conditions as C
from cryo.protocol import states as S

HERE = __file__[: __file__.rfind("/")]
ROOT = HERE[: HERE.rfind("/tests")]
PLANTS = {
    "fast": SC.FAST_PLANT,
    "strong": ROOT + "/boards/sim/plants/strong_spray.json",
}
# Inside the factory hard limits (floor -60 °C, disagreement 10 °C,
# stuck-open 2 °C/s over 2 s); short protocol times so every phase is
# reached within a minute of virtual time.
BASE = {
    "target_c": -35.0,
    "freeze_s": 5.0,
    "cycles": 2,
    "thaw_c": -5.0,
    "min_thaw_s": 10.0,
    "floor_c": -60.0,
    "disagree_c": 10.0,
    "stuck_rate_c_s": 2.0,
    "stuck_window_s": 2.0,
    "stuck_grace_s": 1.0,
    "stuck_s": 10.0,
}
# The 10x spray needs gains / 10 (docs/safety.md "Known gaps").
PLANT_CFG = {"fast": {"pid.kp": 0.0174, "pid.ki": 0.0039}, "strong": {}}
STEP_DEMAND = {"fast": 0.15, "strong": 0.5}  # TUNE: open-loop step test

PHASES = ("IDLE", "READY", "PRECOOL", "APPROACH", "HOLD", "THAW", "LAST_THAW", "DONE", "TUNE")
COOL = ("PRECOOL", "APPROACH", "HOLD", "TUNE")
TREAT = COOL + ("THAW", "LAST_THAW")
QUIET_IDLE = ("IDLE", "READY", "LAST_THAW", "DONE")

MAX_UNCOMMANDED_MS = 10000
QUIET_MAX_S = 30
FLOOR_SLACK_C = 2.0
AFTER_DETECT_MS = 3000
# Modes where cryogen may keep flowing after the trip (a stuck or leaking
# valve): watched long enough after detection for the 10 s flow bound.
FLOW_MODES = ("solenoid_stuck_open", "solenoid_leak", "tc12_drift_warm")
AFTER_DETECT_FLOW_MS = 12000


def _mask(names):
    m = 0
    for n in names:
        if n in C.NAMES:
            m |= 1 << C.code_of(n)
    return m


def _names(mask):
    return C.names(mask)


def _dose(il):
    """The interlock's cold dose of the current site (code >> q) * ms."""
    f = getattr(il, "dose", None)
    if f is None:
        return 0
    return f() if callable(f) else f


# ---------------------------------------------------------------- injections
def _chan(name, attr, value):
    def inj(run):
        ch = run.rig.world.channels[name]
        if attr in ("open_circuit", "short_gnd", "bus"):
            setattr(ch.chip, attr, value)
        else:
            setattr(ch, attr, value)

    return inj


def _chans(names, attr, value):
    fs = [_chan(n, attr, value) for n in names]

    def inj(run):
        for f in fs:
            f(run)

    return inj


def _valve(attr, value):
    def inj(run):
        setattr(run.rig.world, attr, value)

    return inj


def _leak(run):
    """Solenoid seat leak: 20 % flow whenever the master valve is open."""
    w = run.rig.world
    orig = w.plant.step

    def leaky(dt_s, duty, master):
        ms = getattr(w, "master_stuck", None)
        m_open = ms == "open" or (
            ms != "closed" and w.levels[w.master_id] == w.master_active and master
        )
        if m_open and duty < 0.2:
            duty = 0.2
        return orig(dt_s, duty, master)

    w.plant.step = leaky
    run.leak = True


def _cj_fault(run):
    """Tissue chip's die (cold-junction) sensor reads 90 °C: both its CJ
    field and its thermocouple result are shifted by the error."""
    chip = run.rig.world.channels["tissue"].chip
    orig = chip.set_state

    def bad(hot_c, cold_c):
        orig(hot_c + 90.0 - cold_c, 90.0)

    chip.set_state = bad


def _hang(run):
    run.hang(3000, 10)


def _late(run):
    run.hang(700, 700)


def _raise(*a, **k):
    raise OSError(5, "EIO")


def _no_room(*a, **k):
    return False


def _tick_exception(run):
    def boom(*a, **k):
        raise RuntimeError("injected fault in the tick")

    run.rig.ctl.protocol.step = boom


def _wdt_fail(run):
    ctl = run.rig.ctl
    if ctl.watchdog.running:
        ctl.board.wdt.feed = _raise
    else:
        run.rig.board.start_watchdog = _raise


def _flash_fail(run):
    """Every write of the treatment log fails (EIO); no room either."""
    log = run.rig.ctl.log
    log.has_room_for = _no_room
    for name in ("sample", "sample_c", "event", "begin_session"):
        setattr(log, name, _raise)


def _flash_full(run):
    run.rig.ctl.log.has_room_for = _no_room


def _reboot_mode(cause, hold=False):
    def inj(run):
        if hold:
            run.rig.hold(True)
        run.reboot(cause)

    return inj


def _estop(run):
    run.rig.world.set_input("estop", 0)


def _estop_blip(run):
    t = run.rig.now
    run.blip = [run.rig.clock.add(t, 30), run.rig.clock.add(t, 70)]


def _input(role, v):
    def inj(run):
        run.rig.world.set_input(role, v)

    return inj


def _pressure_loss(run):
    run.rig.world.plant.pressure_loss = 0.75


def _adc_high(run):
    run.rig.world.adc_u16 = lambda: 65535


def _adc_lost(run):
    run.rig.world.adc_offline = True


def _rtc_wrong(run):
    import machine

    run.rtc_saved = machine.RTC._offset_s
    machine.RTC._offset_s -= 400 * 86400  # more than a year back


def _restart(run):
    rig = run.rig
    try:
        rig.ctl.stop("operator stop")
    except Exception:  # noqa: BLE001 - nothing to stop
        pass
    run.restart_attempt()


_OOB = (("floor_c", -80.0), ("disagree_c", 20.0), ("stuck_rate_c_s", 5.0), ("stuck_window_s", 5.0))


def _config_oob(run):
    ctl = run.rig.ctl
    for name, value in _OOB:
        before = ctl.params.get(name)
        try:
            ctl.set_param(name, value, "service")
            refused = False
        except Exception:  # noqa: BLE001 - the refusal is the expected outcome
            refused = True
        if not refused or ctl.params.get(name) != before:
            run.fail("set_param(%s=%r, service) was accepted (hard limit widened)" % (name, value))


def _config_ram(run):
    run.rig.ctl.il.lim[0] -= 1


# name: (inject, conditions that count as detection, detect phases,
#        quiet phases, window_s). Phases in neither list: "safe".
SENSOR = ("sensor", "disagree")
NOFLOW = ("no_cool", "depleted")
# A stuck reading is visible only once the temperature moves (it reads the
# right value until then): required detection where the tissue changes.
MOVING = ("PRECOOL", "APPROACH", "HOLD", "THAW", "LAST_THAW", "TUNE")
MODES = {
    # In TUNE (open loop) the master opens only with the solenoid's pulses:
    # a stuck solenoid delivers the commanded pulses, nothing to detect
    # there; the next FREEZE entry's proof finds it (test_fault_matrix).
    "solenoid_stuck_open": (
        _valve("valve_stuck", "open"),
        ("stuck_open", "overcool", "excess_flow", "dose"),
        ("PRECOOL", "APPROACH", "HOLD", "THAW"),
        QUIET_IDLE,
        240,
    ),
    "solenoid_stuck_closed": (
        _valve("valve_stuck", "closed"),
        NOFLOW,
        ("PRECOOL", "APPROACH", "HOLD", "THAW"),
        QUIET_IDLE,
        240,
    ),
    "solenoid_leak": (_leak, (), (), QUIET_IDLE, 60),
    "master_stuck_open": (_valve("master_stuck", "open"), (), (), PHASES, 10),
    "master_stuck_closed": (
        _valve("master_stuck", "closed"),
        NOFLOW,
        ("PRECOOL", "APPROACH", "HOLD", "THAW"),
        QUIET_IDLE,
        240,
    ),
    "tc1_open": (_chan("tissue", "open_circuit", True), SENSOR, PHASES, (), 10),
    "tc1_short": (_chan("tissue", "short_gnd", True), SENSOR, PHASES, (), 10),
    "tc1_stuck": (_chan("tissue", "stuck", True), SENSOR, MOVING, (), 40),
    "tc1_noisy": (_chan("tissue", "extra_noise_c", 8.0), SENSOR, PHASES, (), 30),
    "tc1_drift_warm": (_chan("tissue", "drift_c_per_s", 0.5), SENSOR, PHASES, (), 40),
    "tc1_cold_junction": (_cj_fault, SENSOR, PHASES, (), 10),
    "tc2_open": (_chan("tissue2", "open_circuit", True), SENSOR, PHASES, (), 10),
    "tc2_short": (_chan("tissue2", "short_gnd", True), SENSOR, PHASES, (), 10),
    "tc2_stuck": (_chan("tissue2", "stuck", True), SENSOR, MOVING, (), 40),
    "tc2_drift_warm": (_chan("tissue2", "drift_c_per_s", 0.5), SENSOR, PHASES, (), 40),
    # The pair on the handpiece's shared connector drifting together (one
    # cause); the independent skin probe (tissue3) does not share it.
    "tc12_drift_warm": (
        _chans(("tissue", "tissue2"), "drift_c_per_s", 0.5),
        ("disagree", "excess_flow", "overcool", "no_cool", "freeze_time", "dose", "sensor"),
        ("PRECOOL", "APPROACH", "HOLD", "THAW"),
        (),
        90,
    ),
    "tc3_open": (_chan("tissue3", "open_circuit", True), SENSOR, PHASES, (), 10),
    "tc3_short": (_chan("tissue3", "short_gnd", True), SENSOR, PHASES, (), 10),
    "tc3_stuck": (_chan("tissue3", "stuck", True), SENSOR, MOVING, (), 40),
    "tc3_drift_warm": (_chan("tissue3", "drift_c_per_s", 0.5), SENSOR, PHASES, (), 40),
    "aux_open": (_chan("aux", "open_circuit", True), (), (), QUIET_IDLE, 20),
    "aux_short": (_chan("aux", "short_gnd", True), (), (), QUIET_IDLE, 20),
    "aux_stuck": (_chan("aux", "stuck", True), (), (), QUIET_IDLE, 20),
    "spi_stuck_zeros": (
        _chans(("tissue", "tissue2", "aux", "tissue3"), "bus", "zeros"),
        SENSOR,
        PHASES,
        (),
        5,
    ),
    "spi_all_ones": (
        _chans(("tissue", "tissue2", "aux", "tissue3"), "bus", "ones"),
        SENSOR,
        PHASES,
        (),
        5,
    ),
    "loop_hang": (_hang, ("overrun", "watchdog"), PHASES, (), 5),
    "tick_exception": (_tick_exception, ("internal",), PHASES, (), 5),
    "loop_late": (_late, ("overrun",), PHASES, (), 5),
    "watchdog_fails": (_wdt_fail, ("watchdog",), PHASES, (), 5),
    "flash_write_fails": (_flash_fail, ("storage",), PHASES, (), 5),
    "flash_full": (_flash_full, ("storage",), ("IDLE", "READY", "DONE"), (), 5),
    "power_cut": (_reboot_mode("power"), (), (), QUIET_IDLE, 10),
    "brownout_reset": (_reboot_mode("reset"), (), (), QUIET_IDLE, 10),
    "estop_open": (_estop, ("estop",), PHASES, (), 3),
    "estop_blip_40ms": (_estop_blip, ("estop",), PHASES, (), 3),
    "footswitch_released": (
        _input("footswitch", 0),
        ("released",),
        TREAT,
        ("IDLE", "READY", "DONE"),
        5,
    ),
    "handpiece_down": (_input("handpiece", 0), ("released",), TREAT, ("IDLE", "READY", "DONE"), 5),
    "footswitch_held_at_power_up": (_reboot_mode("power", hold=True), (), (), QUIET_IDLE, 10),
    "pressure_low": (_pressure_loss, ("pressure", "depleted"), PHASES, (), 5),
    "pressure_high": (_adc_high, ("pressure",), PHASES, (), 5),
    "pressure_sensor_lost": (_adc_lost, ("pressure", "depleted"), PHASES, (), 5),
    "rtc_wrong": (_rtc_wrong, (), (), PHASES, 10),
    "refreeze_after_stop": (_restart, (), (), (), 15),
    "config_out_of_bounds": (_config_oob, (), (), PHASES, 3),
    "config_corrupt_ram": (_config_ram, ("config",), PHASES, (), 3),
}
# Modes whose detection must include this condition (the contract: a stuck
# solenoid latches stuck_open, which only the service role clears; a floor
# trip alone is an operator acknowledgement away from the next treatment).
MUST_LATCH = {"solenoid_stuck_open": "stuck_open"}
# Modes that reboot the board at injection: afterwards no treatment may
# resume by itself (no valve energised until a new start).
REBOOTS = ("power_cut", "brownout_reset", "footswitch_held_at_power_up")


def expectation(mode, phase):
    m = MODES[mode]
    if phase in m[2]:
        return "detect"
    if phase in m[3]:
        return "quiet"
    return "safe"


# ----------------------------------------------------------------- the rig
def _config(plant):
    cfg = dict(BASE)
    for k, v in PLANT_CFG[plant].items():
        cfg[k] = v
    return cfg


def _tmpdir():
    """A fresh directory of our own: not ``cryo_core_*``, which the core
    tests' session end deletes in TMPDIR (also under a concurrent session)."""
    base = os.getenv("TMPDIR") or "/tmp"
    pid = os.getpid() if hasattr(os, "getpid") else 0
    n = 0
    while True:
        path = "%s/cryo_safety_%d_%d" % (base, pid, n)
        try:
            os.mkdir(path)
            return path
        except OSError:
            n += 1


def make_rig(plant, seed=1, cfg=None):
    """A rig with a persistent safety state directory of our own (``cfg``:
    the configuration, default the matrix's for ``plant``)."""
    persist = _tmpdir()
    if cfg is None:
        cfg = _config(plant)
    rig = core_rig.Rig(
        seed=seed, config=cfg, plant=PLANTS[plant], persist=persist, log=core_rig.MemLog()
    )
    rig.safety_cfg = cfg
    rig.persist_dir = persist
    return rig


def _start(rig, max_s=15):
    """Self-test (READY); retried while a no-refreeze rule or a warm-up wait
    refuses it. Returns True once READY."""
    t = 0
    while t <= max_s * 1000:
        try:
            rig.ctl.start()
        except Exception:  # noqa: BLE001 - refused: wait and try again
            pass
        if rig.phase() == S.READY:
            return True
        rig.step(10)
        t += 1000
    return False


def goto(rig, phase, plant):
    """Drive a fresh rig to ``phase`` (a PHASES name). True when there."""
    ctl = rig.ctl
    rig.step(3)
    if phase == "IDLE":
        return rig.phase() == S.IDLE
    if phase == "TUNE":
        rig.hold_for_tuning()
        try:
            ctl.start_step_test({"demand": STEP_DEMAND[plant], "duration_s": 120.0})
        except Exception:  # noqa: BLE001 - reported as "could not reach"
            return False
        rig.step(15)
        return rig.phase() == S.TUNE
    if not _start(rig):
        return False
    if phase == "READY":
        rig.step(2)
        return rig.phase() == S.READY
    rig.hold(True)
    rig.step(1)
    if phase == "PRECOOL":
        rig.step(2)
        return rig.phase() == S.PRECOOL
    proto = ctl.protocol
    if not rig.run_until(S.FREEZE, 600):
        return False
    if phase == "APPROACH":
        rig.step(3)
        return rig.phase() == S.FREEZE and not proto.reached
    n = 0
    while not (rig.phase() == S.FREEZE and proto.reached) and n < 3000:
        rig.step(1)
        n += 1
    if phase == "HOLD":
        rig.step(10)
        return rig.phase() == S.FREEZE and proto.reached
    if not rig.run_until(S.THAW, 3000):
        return False
    if phase == "THAW":
        rig.step(5)
        return rig.phase() == S.THAW and proto.cycle < proto.p["cycles"]
    n = 0
    while not (rig.phase() == S.THAW and proto.cycle == proto.p["cycles"]) and n < 8000:
        rig.step(1)
        n += 1
    if phase == "LAST_THAW":
        rig.step(5)
        return rig.phase() == S.THAW
    ok = rig.run_until(S.DONE, 8000)
    rig.step(5)
    return ok and rig.phase() == S.DONE


# Prefix cache (CPython only): a rig driven to a phase is copied for each
# mode, so the phases' lead-in runs once per plant. The copy is the whole
# object graph (world, board, controller); its persist directory is copied
# and re-pointed, so cases never share files.
_CACHE = {}
CLONE_ERRORS = []  # why a copy failed (the lead-in then runs again: slower, same result)


_LEAVES = (int, float, str, bytes, bytearray, type(None))


def _walkable(v):
    """Instances, dicts, lists, tuples: not modules, classes or functions
    (the walk must stay inside the rig's own objects)."""
    t = type(v).__name__
    return not isinstance(v, (type,) + _LEAVES) and t not in (
        "module",
        "function",
        "builtin_function_or_method",
        "method",
        "cell",
        "code",
    )


def _under(v, old):
    return v == old or v.startswith(old + "/")


def _rebase(obj, old, new, seen):
    """Re-point every path string under ``old`` to ``new`` in the graph."""
    if id(obj) in seen or not _walkable(obj):
        return
    seen.add(id(obj))
    if isinstance(obj, tuple):
        for v in obj:
            _rebase(v, old, new, seen)
        return
    box = obj if isinstance(obj, (dict, list)) else getattr(obj, "__dict__", None)
    if box is None:
        return
    for k in list(box) if isinstance(box, dict) else range(len(box)):
        v = box[k]
        if isinstance(v, str) and _under(v, old):
            box[k] = new + v[len(old) :]
        else:
            _rebase(v, old, new, seen)


def _is_file(v):
    return hasattr(v, "fileno") and hasattr(v, "seek") and hasattr(v, "name")


def _files(obj, old, seen, out):
    """Files under ``old`` held open in ``obj``'s graph: [(holder, key, file)]."""
    if id(obj) in seen or not _walkable(obj):
        return
    seen.add(id(obj))
    items = obj if isinstance(obj, dict) else getattr(obj, "__dict__", None)
    if items is not None:
        for k in list(items):
            v = items[k]
            if _is_file(v):
                if isinstance(v.name, str) and _under(v.name, old):
                    out.append((obj, k, v))
            else:
                _files(v, old, seen, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _files(v, old, seen, out)


def _clone(rig):
    """Copy of a rig: the object graph (files held open are reopened on the
    copy's own persist directory at the same position)."""
    import copy
    import shutil

    old = rig.persist_dir
    held = []
    _files(rig, old, set(), held)
    memo = {}
    for _h, _k, f in held:
        memo[id(f)] = None
    new = copy.deepcopy(rig, memo)
    dst = _tmpdir()
    os.rmdir(dst)
    shutil.copytree(old, dst)
    for holder, key, f in held:
        twin = memo[id(holder)]
        name = dst + f.name[len(old) :]
        g = open(name, f.mode.replace("w", "r+").replace("++", "+"))
        g.seek(f.tell())
        if isinstance(twin, dict):
            twin[key] = g
        else:
            setattr(twin, key, g)
    _rebase(new, old, dst, set())
    vboard.install(new.world)
    return new


def _drop_cache():
    for src, _ok in _CACHE.values():
        if src is not None:
            _remove(src.persist_dir)
    _CACHE.clear()


def at_phase(plant, phase, cache=True):
    """(rig, reached) at ``phase``: a copy of the cached rig under
    CPython, a fresh run otherwise (MicroPython, or a rig that cannot be
    copied)."""
    key = (plant, phase)
    if cache and key in _CACHE:
        src, ok = _CACHE[key]
        if src is not None:
            try:
                return _clone(src), ok
            except Exception as e:  # noqa: BLE001 - not copyable: run the lead-in again
                CLONE_ERRORS.append("%s: %s" % (type(e).__name__, e))
                _CACHE[key] = (None, ok)
    rig = make_rig(plant)
    ok = goto(rig, phase, plant)
    if cache and not _CACHE:
        try:
            import atexit

            atexit.register(_drop_cache)
        except ImportError:  # MicroPython runs never cache
            pass
    if cache and key not in _CACHE:
        try:
            _CACHE[key] = (_clone(rig), ok)
            vboard.install(rig.world)
        except Exception as e:  # noqa: BLE001 - e.g. MicroPython: no copy module
            CLONE_ERRORS.append("%s: %s" % (type(e).__name__, e))
            _CACHE[key] = (None, ok)
            vboard.install(rig.world)
    return rig, ok


# ----------------------------------------------------------------- a case
class Run:
    """One case: the rig, the watcher and the checks' record."""

    def __init__(self, rig, mode, phase, plant):
        self.rig = rig
        self.mode = mode
        self.phase = phase
        self.plant = plant
        self.fails = []
        self.seen = 0  # every condition bit seen active or latched
        self.t_inj = rig.now
        self.tripped_at = None
        self.detect_ms = None
        self.expect = _mask(MODES[mode][1])
        self.uncmd_ms = 0
        self.min_surface = 1000.0
        self.last_t = rig.now
        self.blip = None
        self.doses = []  # (t, site dose) of the last ticks
        self.leak = False  # the solenoid seat leaks (flow whenever the master is open)
        self.rtc_saved = None
        self.no_valve_after = None  # a time after which no valve may be energised
        self.refuse_from = None  # restart attempt on cold tissue: no cooling from here
        self.floor = rig.safety_cfg["floor_c"]
        self.thaw = rig.safety_cfg["thaw_c"]
        self.wdt_treating = False
        self._failed_kinds = {}

    def fail(self, msg, kind=None):
        k = kind or msg
        if k in self._failed_kinds:
            return
        self._failed_kinds[k] = 1
        t = self.rig.clock.diff(self.rig.now, self.t_inj)
        self.fails.append("t=%+d ms %s: %s" % (t, S.name(self.rig.phase()), msg))

    # -- the per-sub-tick watch -------------------------------------
    def energised(self):
        w = self.rig.world
        return (
            w.levels[w.valve_id] == w.valve_active,
            w.levels[w.master_id] == w.master_active,
        )

    def check(self, now):
        rig = self.rig
        w = rig.world
        il = rig.ctl.il
        mask = il.active | il.latched
        dt = rig.clock.diff(now, self.last_t)
        self.last_t = now
        v, m = self.energised()
        if mask:
            new = mask & ~self.seen
            self.seen |= mask
            if self.tripped_at is None:
                self.tripped_at = now
            if self.detect_ms is None and mask & self.expect:
                self.detect_ms = rig.clock.diff(now, self.t_inj)
            if v or m:
                self.fail(
                    "valve%s energised while %s active/latched"
                    % ("" if v and not m else (" and master" if v else " master"), _names(mask)),
                    "energised",
                )
            if new and (v or m):
                self.fail("valves not closed in the tick %s rose" % _names(new), "same_tick")
        # Cryogen passing the valves (the nozzle lags by the line's dead
        # time): the solenoid open (energised, or stuck) AND the master open.
        vs = getattr(w, "valve_stuck", None)
        ms = getattr(w, "master_stuck", None)
        sol = vs == "open" or (v and vs != "closed")
        mst = ms == "open" or (m and ms != "closed")
        path = sol and mst
        leak = self.leak and mst and not sol
        if (path and (not v or self.tripped_at is not None)) or leak:
            self.uncmd_ms += dt
            if self.uncmd_ms > MAX_UNCOMMANDED_MS:
                self.fail(
                    "uncommanded cryogen flow for more than %d ms" % MAX_UNCOMMANDED_MS, "uncmd"
                )
        s = w.plant.surface_c
        if s < self.min_surface:
            self.min_surface = s
        if s < self.floor - FLOOR_SLACK_C:
            self.fail(
                "true surface %.1f degC, more than %.0f degC below the floor %.0f"
                % (s, FLOOR_SLACK_C, self.floor),
                "floor",
            )
        if (v or m) and w.wdt_timeout_ms <= 0:
            self.fail(
                "%s energised with the hardware watchdog not armed" % ("valve" if v else "master"),
                "wdt_armed",
            )
        if self.no_valve_after is not None and (v or m):
            self.fail("a valve was energised after the reboot without a new start", "resume")
        if self.refuse_from is not None:
            st = rig.phase()
            if v or st in (S.PRECOOL, S.FREEZE):
                self.fail(
                    "new treatment started on tissue below the thaw threshold (%s, valve %d)"
                    % (S.name(st), 1 if v else 0),
                    "refreeze",
                )
        b = self.blip
        if b is not None:
            if rig.clock.diff(now, b[0]) >= 0 and w.logical["estop"] == 1 and len(b) == 2:
                w.set_input("estop", 0)
                b.append(1)
            elif len(b) == 3 and rig.clock.diff(now, b[1]) >= 0:
                w.set_input("estop", 1)
                self.blip = None

    def dose_5s_ago(self):
        """The site dose as it was 5 s (virtual) before now."""
        h = self.doses
        now = self.rig.now
        best = 0
        for t, d in h:
            if self.rig.clock.diff(now, t) >= 5000:
                best = d
        return best

    def tick(self):
        rig = self.rig
        ctl = rig.ctl
        clock = rig.clock
        deadline = clock.add(rig.now, rig.period)
        rig.world.wait_for_tick(ctl, deadline, self.check)
        ctl.tick(deadline)
        self.check(deadline)
        ctl.idle(deadline)  # the loop's planned idle point after the tick
        h = self.doses
        h.append((deadline, _dose(rig.ctl.il)))
        if len(h) > 80:
            h.pop(0)
        if rig.world.wdt_expired(deadline):
            self.wdt_bite()

    def wdt_bite(self):
        if (1 << self.rig.phase()) & S.TREATING:
            self.wdt_treating = True
        self.reboot("wdt")

    def hang(self, ms, chunk):
        """The loop stops: time passes without ticks or valve sub-ticks;
        the hard safety timer and the watchdog are all that act."""
        rig = self.rig
        left = ms
        while left > 0:
            step = chunk if chunk < left else left
            rig.skip(step)
            left -= step
            self.check(rig.now)
            if rig.world.wdt_expired(rig.now):
                self.wdt_bite()
                return

    def reboot(self, cause):
        rig = self.rig
        rig.reboot(cause)
        self.check(rig.now)

    def restart_attempt(self):
        """The operator tries a new treatment on the same spot: the handpiece
        stays on the skin, the footswitch is released, the self-test asked
        for, the footswitch pressed again."""
        rig = self.rig
        cold = rig.world.plant.surface_c < self.thaw - 1.0
        rig.world.set_input("footswitch", 0)
        self.tick()
        if cold:
            self.refuse_from = rig.now
        try:
            rig.ctl.start()
        except Exception:  # noqa: BLE001 - refusal is one of the outcomes
            pass
        rig.world.set_input("handpiece", 1)
        rig.world.set_input("footswitch", 1)
        k = 0
        while k < 20:
            self.tick()
            k += 1
        self.refuse_from = None

    # -- after the window -------------------------------------------
    def survive_reboots(self):
        rig = self.rig
        il = rig.ctl.il
        latched = il.latched
        # The site dose is written at most every 5 s (cryo.core.memory): a
        # cut may lose what accrued since; never more.
        dose = self.dose_5s_ago()
        for cause in ("power", "reset"):
            self.reboot(cause)
            k = 0
            while k < 3:
                self.tick()
                k += 1
            il = rig.ctl.il
            if latched & ~il.latched:
                self.fail(
                    "latch lost after a %s reboot: %s" % (cause, _names(latched & ~il.latched)),
                    "latch_" + cause,
                )
            if dose and _dose(il) < dose:
                self.fail(
                    "site cold dose lost after a %s reboot (%d -> %d code*ms, 5 s before the cut)"
                    % (cause, dose, _dose(il)),
                    "dose_" + cause,
                )
        svc = rig.ctl.il.latched & C.SERVICE_ACK
        if svc:
            try:
                rig.ctl.ack_fault("operator")
            except Exception:  # noqa: BLE001 - a refusal is fine
                pass
            if svc & ~rig.ctl.il.latched:
                self.fail(
                    "an operator acknowledgement cleared service latch(es) %s after reboots"
                    % _names(svc & ~rig.ctl.il.latched)
                )

    def check_devlog(self):
        from cryo.storage import device_records as D

        kind = D.DEV_FAULT
        logged = 0
        for rec in self.rig.ctl.memory.events():
            if rec[3] == kind and 0 <= rec[4] < 30:
                logged |= 1 << rec[4]
        if self.seen & ~logged:
            self.fail("fault(s) without a DEV_FAULT record: %s" % _names(self.seen & ~logged))

    def result(self, exp):
        return {
            "mode": self.mode,
            "phase": self.phase,
            "plant": self.plant,
            "expect": exp,
            "fails": self.fails,
            "detect_ms": self.detect_ms,
            "raised": _names(self.seen),
            "min_surface_c": int(self.min_surface * 10) / 10.0,
            "uncommanded_ms": self.uncmd_ms,
        }


def _remove(path):
    """Delete a case's persist directory (flat: the safety state, the event
    log and their temporary files)."""
    try:
        for name in os.listdir(path):
            os.remove(path + "/" + name)
        os.rmdir(path)
    except OSError:
        pass


def run_case(mode, phase, plant="fast", cache=True, sabotage=None):
    """One matrix case (module docstring). ``sabotage(run)``, for the tests
    of the checks themselves, breaks the firmware before the injection."""
    inject, conds, _d, _q, window_s = MODES[mode]
    exp = expectation(mode, phase)
    rig, ok = at_phase(plant, phase, cache)
    if mode == "watchdog_fails" and not rig.ctl.watchdog.running:
        # Not armed yet (no valve could open): the failure shows at the next
        # self-test, which the restart attempt below runs.
        exp = "quiet"
    run = Run(rig, mode, phase, plant)
    if not ok:
        run.fail("could not reach %s (state %s)" % (phase, S.name(rig.phase())))
        return run.result(exp)
    if rig.ctl.il.active | rig.ctl.il.latched:
        run.fail(
            "conditions before the injection: %s" % _names(rig.ctl.il.active | rig.ctl.il.latched)
        )
    try:
        if sabotage is not None:
            sabotage(run)
        inject(run)
        run.check(rig.now)
        if mode in REBOOTS:
            run.no_valve_after = rig.now
        if exp == "quiet" and window_s > QUIET_MAX_S:
            window_s = QUIET_MAX_S  # where the fault cannot act, 30 s shows it
        end = rig.clock.add(run.t_inj, window_s * 1000)
        while rig.clock.diff(end, rig.now) > 0:
            if exp == "detect" and run.detect_ms is not None:
                after = AFTER_DETECT_FLOW_MS if mode in FLOW_MODES else AFTER_DETECT_MS
                if rig.clock.diff(rig.now, run.t_inj) >= run.detect_ms + after:
                    break
            run.tick()
            if exp == "quiet" and mode not in REBOOTS and not (1 << rig.phase()) & S.COOLING:
                v, m = run.energised()
                if v or m:
                    run.fail(
                        "%s energised outside a cooling phase after %s"
                        % ("valve" if v else "master valve", mode),
                        "quiet_valve",
                    )
        if exp == "detect" and run.detect_ms is None:
            run.fail(
                "not detected within %d s (expected one of %s; raised %s)"
                % (window_s, ", ".join(conds), _names(run.seen) or "nothing")
            )
        if mode in MUST_LATCH and exp == "detect":
            need = MUST_LATCH[mode]
            if need in C.NAMES and not run.seen & (1 << C.code_of(need)):
                run.fail(
                    "%s never raised %r (service latch); raised %s"
                    % (mode, need, _names(run.seen) or "nothing")
                )
        if exp == "quiet" and run.seen:
            run.fail("tripped %s; nothing may trip" % _names(run.seen))
        run.no_valve_after = None
        run.survive_reboots()
        if run.wdt_treating and "watchdog" in C.NAMES:
            if not rig.ctl.il.latched & (1 << C.code_of("watchdog")):
                run.fail("watchdog reset during a treatment did not latch 'watchdog'")
        run.restart_attempt()
        run.check_devlog()
    except Exception as e:  # noqa: BLE001 - reported with the case
        run.fail("exception %s: %s" % (type(e).__name__, e), "exception")
    finally:
        if run.rtc_saved is not None:
            import machine

            machine.RTC._offset_s = run.rtc_saved
        _remove(rig.persist_dir)
    return run.result(exp)


def run_modes(modes, phase=None, plant="fast"):
    """MicroPython slice: one case per mode (``phase`` None: the mode's first
    detect phase, else HOLD), fresh lead-in each (no copy module)."""
    out = {}
    for m in modes:
        ph = phase
        if ph is None:
            d = MODES[m][2]
            ph = "HOLD" if (not d or "HOLD" in d) else d[0]
        out[m] = run_case(m, ph, plant, cache=False)
    return out
