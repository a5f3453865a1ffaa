"""The safety path's integers stay small ints on a 32-bit board.

MicroPython on a 32-bit port keeps integers up to 2**30 - 1 in the object
word; a larger value is a heap object, so arithmetic that overflows it in
``Interlock.evaluate`` would allocate (and could raise MemoryError with the
heap locked). The 64-bit unix port cannot show this, so the bounds are
checked here by arithmetic: every limit the block can hold, for every
parameter at either end of its hard range, both converters and the
cold-junction range, and every product and sum the evaluation forms.
"""

import itertools

import core_scenarios as SC
from core_rig import Rig

from cryo.interlock import block as B
from cryo.interlock import limits as LIM
from cryo.protocol import params as P

SMALL = 1 << 30  # first value that is not a small int on a 32-bit board
_DT_MAX = 1000  # Interlock bounds the integration step to this (ms)
_SAT = 1 << 28  # the integrals saturate here


def _param_corners():
    """Every numeric parameter at its low and its high hard limit (one at a
    time, the others at their defaults), and all at low / all at high."""
    base = P.defaults()
    numeric = [p for p in P.PARAMS if not isinstance(p[1], bool)]
    yield base
    for p in numeric:
        for v in (p[2], p[3]):
            c = dict(base)
            c[p[0]] = v
            yield c
    for end in (2, 3):
        c = dict(base)
        for p in numeric:
            c[p[0]] = p[end]
        yield c


def _drivers():
    rig = Rig(seed=1, config=SC.FAST, plant=SC.FAST_PLANT)
    return rig.ctl.inputs._lim_drv


def test_every_limit_and_every_product_stays_a_small_int():
    d0, d1, da, d3 = _drivers()
    checked = 0
    for p, cj, sp in itertools.product(_param_corners(), (-20.0, 24.0, 70.0), (-50.0, -20.0)):
        blk = LIM.build(p, d0, d1, cj, sp, (1, 1, 1), lambda kpa: int(kpa * 100), da, d3)
        assert len(blk) == B.NL
        for i, v in enumerate(blk):
            assert isinstance(v, int) and -SMALL < v < SMALL, (i, v, p)
        # Codes the tissue channel can report across the whole thermocouple range.
        c_lo = int(d0.code_for(-270.0, cj))
        c_hi = int(d0.code_for(400.0, cj))
        for c0 in (c_lo, c_hi):
            # Disagreement maps (tissue2, tissue3): M * code0 before the shift.
            for m, b, sh in (
                (B.L_DIS_M, B.L_DIS_B, B.L_DIS_SHIFT),
                (B.L_DIS3_M, B.L_DIS3_B, B.L_DIS3_SHIFT),
            ):
                assert abs(blk[m] * c0) < SMALL, (blk[m], c0)
                exp = blk[b] + ((blk[m] * c0) >> blk[sh])
                assert abs(exp) < SMALL
                for c in (int(d.code_for(t, cj)) for d in (d1, d3) for t in (-270.0, 400.0)):
                    assert abs(c - exp) < SMALL
            # Dose and no-cool increments at the largest step, added to a
            # value just below saturation.
            inc = abs((blk[B.L_DOSE_THR] - c0) >> blk[B.L_Q]) * _DT_MAX
            assert _SAT + inc < SMALL, (inc, blk[B.L_Q])
            band = blk[B.L_SP] + blk[B.L_HYST]
            inc = abs((c0 - band) >> blk[B.L_Q]) * _DT_MAX
            assert _SAT + inc < SMALL
        # Floor anticipation: the fall over the rate window times the lead.
        assert abs(c_hi - c_lo) * blk[B.L_LEAD_MS] < SMALL
        # Valve-open budget: demand (per mille) times the step.
        assert _SAT + 1000 * _DT_MAX < SMALL
        # Low-passes of the stuck-open watch and the solenoid proof (x8) and
        # the limits they compare with, shifted the same (a line sensor
        # fitted: without one those limits are never shifted).
        ends = [int(d.code_for(t, cj)) for d in (d1, da, d3) for t in (-270.0, 400.0)]
        for c in [c_lo, c_hi] + ends:
            assert abs(c << 3) * 2 < SMALL, c
        for i in (B.L_STUCK_DROP, B.L_AUX_DROP, B.L_AUX_RISE, B.L_DEPL_AUX):
            assert abs(blk[i] << 3) < SMALL, (i, blk[i])
        assert blk[B.L_STUCK_GRACE_MS] + 2 * blk[B.L_STUCK_MS] < SMALL
        # Limit sums a tick forms (watch goal, band).
        assert abs(c_lo - blk[B.L_WATCH_DROP]) < SMALL
        checked += 1
    assert checked > 100


def test_integrals_saturate_below_the_limit_they_compare_with():
    """A saturated integral must still trip: every integral limit is below
    the saturation value."""
    d0, d1, da, d3 = _drivers()
    for p in _param_corners():
        blk = LIM.build(p, d0, d1, 24.0, -35.0, (1, 1, 1), None, da, d3)
        assert blk[B.L_DOSE_MAX] < _SAT
        assert blk[B.L_NOCOOL_MAX] < _SAT
        assert blk[B.L_FLOW_MAX_MS] < _SAT


def test_each_tissue_channels_agreement_slots_are_consecutive():
    """cryo.interlock.sensors reads a channel's M, B and limit as three
    consecutive slots of the limit block."""
    for m, b, lim in ((B.L_DIS_M, B.L_DIS_B, B.L_DIS_MAX), (B.L_DIS3_M, B.L_DIS3_B, B.L_DIS3_MAX)):
        assert (b, lim) == (m + 1, m + 2)
