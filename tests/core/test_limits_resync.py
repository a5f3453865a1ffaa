"""The raw limit block follows the cold junction (docs/safety.md "Limits as
raw codes"): the MAX31855's code for a fixed tissue temperature moves with
its die temperature, so the controller rebuilds the block once the cold
junction has moved CJ_RESYNC_C since the last build — on the control path,
inside a tick, so what that rebuild allocates is measured here."""

import core_scenarios as SC

from cryo.interlock import block as B
from cryo.interlock import limits as LIM


def _floor_code_follows(rig):
    ctl = rig.ctl
    drv = ctl.inputs._lim_drv[0]
    return ctl.il.lim[B.L_FLOOR0] == drv.code_for(ctl.params["floor_c"], ctl.inputs._cj_limits)


def test_limits_follow_the_cold_junction_in_resync_steps():
    from core_rig import Rig

    rig = Rig(seed=61)  # default plant: the die warms 6 degC over ~15 min
    rig.step(3)
    ctl = rig.ctl
    cj0 = ctl.inputs._cj_limits
    assert _floor_code_follows(rig)
    builds = []
    for _ in range(3000):  # 300 s of ticks
        rig.step()
        if ctl.inputs._cj_limits != (builds[-1] if builds else cj0):
            builds.append(ctl.inputs._cj_limits)
            assert _floor_code_follows(rig)
        # Between rebuilds the block is at most CJ_RESYNC_C behind the die.
        assert abs(ctl.inputs.cj_c - ctl.inputs._cj_limits) < LIM.CJ_RESYNC_C
    assert len(builds) >= 2 and builds[-1] - cj0 >= 2 * LIM.CJ_RESYNC_C, builds
    # ... in steps of CJ_RESYNC_C, not every tick.
    steps = [b - a for a, b in zip([cj0] + builds, builds)]
    assert all(LIM.CJ_RESYNC_C <= s < 2 * LIM.CJ_RESYNC_C for s in steps), steps


def test_code_for_cache_stays_bounded_and_exact():
    # More distinct kept temperatures than cache slots (setpoint changes
    # over a long service life): the cache replaces slots, never grows, and
    # every code equals a fresh driver's (which computes everything).
    from core_rig import Rig

    rig = Rig(seed=63)
    drv = rig.ctl.inputs._lim_drv[0]
    slots = len(drv._ef_t)
    for i in range(200):
        t = -80.0 + 0.37 * i
        fresh = type(drv)(drv._spi, drv._cs, drv.tc_type)
        assert drv.code_for(t, 24.5, True) == fresh.code_for(t, 24.5), t
        assert drv.code_for(t, 26.0, True) == fresh.code_for(t, 26.0), t
        assert drv.code_for(t + 0.1, 26.0) == fresh.code_for(t + 0.1, 26.0), t
    assert len(drv._ef_t) == len(drv._ef_e) == slots == 24
    # Only kept temperatures enter it: one-off probes (the channel's rate
    # slope around the present reading) leave the limits in place.
    kept = list(drv._ef_t)
    for i in range(100):
        drv.code_for(-150.0 + i * 0.731, 25.0)
    assert drv._ef_t == kept


def test_resync_costs_one_polynomial_per_driver(mpy):
    # The drivers keep E(T) of the limit temperatures: rebuilding after the
    # cold junction moved computes only the new E(T_CJ), so it allocates a
    # fraction of the first build (which evaluates every limit's polynomial),
    # also after many one-off conversions in between.
    res = mpy.run(
        """
import gc, sys
sys.path.append(%r)
from core_rig import Rig
from cryo.interlock import limits as LIM
rig = Rig(seed=62)
rig.step(3)
ctl = rig.ctl
ld = ctl.inputs._lim_drv
cj = ctl.inputs.cj_c
def empty_caches():
    for d in ld:
        if d is not None:
            d.__init__(d._spi, d._cs, d.tc_type)
def build(at):
    gc.collect()
    a = gc.mem_alloc()
    blk = LIM.build(ctl.params, ld[0], ld[1], at, ctl.ticker.setpoint_c, (1, 1, 1), ctl.inputs._p_code, ld[2])
    return gc.mem_alloc() - a, blk
empty_caches()
first, blk_first = build(cj + 1.0)
again, blk_again = build(cj + 1.0)
for i in range(60):  # one-off conversions between rebuilds (channel rate slopes)
    ld[0].code_for(-180.0 + 3.1 * i, cj + 1.0)
moved, blk_moved = build(cj + 2.0)
empty_caches()
result([first, again, moved, blk_first == blk_again,
        blk_moved == LIM.build(ctl.params, ld[0], ld[1], cj + 2.0, ctl.ticker.setpoint_c, (1, 1, 1), ctl.inputs._p_code, ld[2])])
"""
        % SC.CORE
    )
    first, again, moved, same, exact = res
    assert same and exact  # the cache changes the cost, never a code
    assert moved * 2 < first, (first, again, moved)
    assert again <= moved, (first, again, moved)
