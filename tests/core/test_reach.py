"""When a FREEZE has reached its target (cryo.protocol.protocol): the
tissue reading within ``REACH_BAND_C`` of the target for
``REACH_CONFIRM_MS``, the hold counted from its entry into the band. On
the fast plant the reading dips into the band and out again before it
stays: the dip must not start the hold."""

import core_scenarios as SC
from core_rig import Rig

from cryo.protocol import states as S
from cryo.protocol.protocol import REACH_BAND_C, REACH_CONFIRM_MS


def _to_reached(rig):
    rig.step(3)
    rig.ctl.start()
    rig.hold(True)
    assert rig.run_until(S.FREEZE, 3000)
    ctl = rig.ctl
    seen = []  # (tick time, reading) in FREEZE until the target counts as reached
    while not ctl.protocol.reached:
        assert len(seen) < 3000 and rig.phase() == S.FREEZE, S.name(rig.phase())
        rig.step(1)
        seen.append((rig.now, ctl.inputs.temps[0]))
    return seen


def test_the_hold_starts_at_the_first_sample_of_a_stay_in_the_band_not_at_a_dip():
    rig = Rig(seed=42, config=SC.FAST, plant=SC.FAST_PLANT)
    seen = _to_reached(rig)
    ctl = rig.ctl
    edge = SC.FAST["target_c"] + REACH_BAND_C
    inside = [t_c[1] <= edge for t_c in seen]
    # the stay that counted: every sample from its entry to the confirmation
    k = len(inside) - 1
    while k > 0 and inside[k - 1]:
        k -= 1
    entry = seen[k][0]
    assert all(inside[k:])
    assert ctl.protocol.t_reached == entry
    assert rig.clock.diff(seen[-1][0], entry) >= REACH_CONFIRM_MS
    assert rig.clock.diff(seen[-2][0], entry) < REACH_CONFIRM_MS  # reached at the first chance
    # an earlier dip into the band, shorter than the confirmation, did not count
    assert any(inside[:k]), "the fast plant no longer dips into the band first"
    # the interlock's hold limit counts from the same instant
    assert ctl.il.reached and ctl.il.reached_t == entry
    # and the hold lasts freeze_s from the entry
    assert rig.run_until(S.THAW, 3000)
    assert rig.clock.diff(rig.now, entry) >= SC.FAST["freeze_s"] * 1000
    assert rig.clock.diff(rig.now, entry) < SC.FAST["freeze_s"] * 1000 + 2 * rig.period
