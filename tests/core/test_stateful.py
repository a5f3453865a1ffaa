"""Hypothesis stateful test: random readings, events and commands on the
virtual board; whatever happens, an open cryogen valve means the protocol is
in PRECOOL or FREEZE (or an engineer's TUNE run), the interlock grants the
permit, and no condition is active or latched; a latched fault always has
both valves closed.

Runs under CPython (firmware through the ``micropython`` shim, the virtual
board's emulated chips and plant), starting just before the 2**30 tick wrap
in half of the examples.
"""

import core_scenarios as SC
from core_rig import Rig
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from cryo.clock import TICKS_PERIOD
from cryo.interlock import conditions as C
from cryo.protocol import states as S

ROLES = ("operator", "engineer", "service")


class TreatmentMachine(RuleBasedStateMachine):
    @initialize(
        seed=st.integers(0, 1000),
        near_wrap=st.booleans(),
    )
    def setup(self, seed, near_wrap):
        start = TICKS_PERIOD - 3000 if near_wrap else 0
        self.rig = Rig(seed=seed, config=SC.FAST, plant=SC.FAST_PLANT, start_ms=start)
        self.rig.step(3)
        self.max_open_state = None

    # -- time ----------------------------------------------------------
    @rule(n=st.integers(1, 40))
    def tick(self, n):
        for _ in range(n):
            self.rig.step(1)
            self._check_tick()

    @rule(ms=st.integers(100, 1500))
    def stall(self, ms):
        self.rig.skip(ms)

    # -- commands --------------------------------------------------------
    @rule()
    def start(self):
        try:
            self.rig.ctl.start()
        except Exception as e:  # noqa: BLE001 - refused with a reason is fine
            assert str(e)

    @rule(n=st.integers(5, 60))
    def treat(self, n):
        """Start, press the footswitch with the handpiece held, and run."""
        try:
            self.rig.ctl.start()
        except Exception:  # noqa: BLE001
            pass
        self.rig.hold(True)
        self.tick(n)

    @rule(kind=st.sampled_from(("autotune", "step")), n=st.integers(5, 60))
    def tune(self, kind, n):
        """An engineer's autotune or step test (TUNE phase, hold-to-run)."""
        try:
            if kind == "autotune":
                self.rig.ctl.start_autotune({"setpoint_c": -30.0})
            else:
                self.rig.ctl.start_step_test({"demand": 0.5, "duration_s": 5.0})
        except Exception as e:  # noqa: BLE001 - refused with a reason is fine
            assert str(e)
        self.tick(n)

    @rule(on=st.booleans())
    def hold(self, on):
        self.rig.hold(on)

    @rule(which=st.sampled_from(("footswitch", "handpiece")), on=st.booleans())
    def operator_input(self, which, on):
        self.rig.world.set_input(which, 1 if on else 0)

    @rule(pressed=st.booleans())
    def estop(self, pressed):
        self.rig.world.set_input("estop", 0 if pressed else 1)

    @rule()
    def stop(self):
        self.rig.ctl.stop("random stop")
        assert self.rig.ctl.valve.is_open is False

    @rule(role=st.sampled_from(ROLES))
    def ack(self, role):
        self.rig.ctl.ack_fault(role)

    # -- readings and plant ----------------------------------------------
    @rule(
        ch=st.sampled_from(("tissue", "tissue2", "aux")),
        temp=st.one_of(st.none(), st.floats(-120.0, 45.0)),
    )
    def reading(self, ch, temp):
        c = self.rig.world.channels[ch]
        if temp is None:
            c.stuck = False
        else:
            c.stuck = True
            c.hot_c = temp

    @rule(ch=st.sampled_from(("tissue", "tissue2")), offset=st.floats(-20.0, 20.0))
    def offset(self, ch, offset):
        self.rig.world.channels[ch].offset_c = offset

    @rule(ch=st.sampled_from(("tissue", "tissue2", "aux")), broken=st.booleans())
    def open_circuit(self, ch, broken):
        self.rig.world.channels[ch].chip.open_circuit = broken

    @rule(mode=st.sampled_from((None, "open", "closed")))
    def valve_stuck(self, mode):
        self.rig.world.valve_stuck = mode

    @rule(loss=st.floats(0.0, 1.0))
    def pressure(self, loss):
        self.rig.world.plant.pressure_loss = loss

    # -- properties --------------------------------------------------------
    def _check_tick(self):
        il = self.rig.ctl.il
        if il.latched:
            event("latched " + ",".join(C.names(il.latched)))
            assert self.rig.valves_closed(), "latched %s with a valve energised" % C.names(
                il.latched
            )

    @invariant()
    def open_valve_only_when_permitted(self):
        if not hasattr(self, "rig"):
            return
        rig = self.rig
        il = rig.ctl.il
        if rig.board.valve_pin.value() or rig.world.valve_is_open():
            st_ = rig.phase()
            event("valve open in %s" % S.name(st_))
            # PRECOOL/FREEZE of a treatment, or an engineer's TUNE run.
            assert st_ in (S.PRECOOL, S.FREEZE, S.TUNE), S.name(st_)
            assert il.permit and rig.ctl.valve.permit
            assert il.latched == 0, C.names(il.latched)
            assert il.active == 0, C.names(il.active)
        if rig.board.master_pin.value():
            assert (1 << rig.phase()) & S.TREATING
            assert not il.latched


TreatmentMachine.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_treatment_state_machine = TreatmentMachine.TestCase


def test_random_walks_under_micropython(mpy):
    """The same invariants on the real interpreter: deterministic random walks
    (readings, faults, commands, stalls), one starting before the 2**30 wrap."""
    import json

    walks = [(2, 0), (3, 0), (5, TICKS_PERIOD - 5000)]
    res = mpy.run(
        """
import sys
sys.path.append(%r)
import gc
gc.threshold(200000)
import core_scenarios as SC
out = []
for seed, start in %s:
    out.append(SC.random_walk(seed, 150, start))
result(out)
"""
        % (SC.CORE, json.dumps(walks))
    )
    for r in res:
        assert r["violations"] == 0, r
    assert sum(r["open_ticks"] for r in res) > 0  # the valve did open somewhere
    assert sum(r["latched_ticks"] for r in res) > 0  # and faults did latch


def test_random_walk_cpython_matches_micropython(mpy):
    cpy = SC.random_walk(4, 80)
    mp = mpy.run(
        """
import sys
sys.path.append(%r)
import core_scenarios as SC
result(SC.random_walk(4, 80))
"""
        % SC.CORE
    )
    assert cpy == mp and cpy["violations"] == 0
