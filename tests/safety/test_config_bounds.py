"""Clinical hard limits no configuration can widen (IEC 60601-1 single
fault: a wrong configuration is one fault): a controller built with a
limit outside its factory bound latches CONFIG and starts nothing."""

import pytest
import safety_matrix as M

from cryo.interlock import conditions as C
from cryo.protocol import states as S

WIDENED = [
    ("floor_c", -80.0),
    ("floor_c", -61.0),
    ("disagree_c", 20.0),
    ("stuck_rate_c_s", 5.0),
    ("stuck_window_s", 5.0),
    ("stuck_grace_s", 5.0),
]


@pytest.mark.parametrize("name,value", WIDENED)
def test_widened_limit_latches_config_and_refuses_treatment(name, value):
    cfg = dict(M.BASE)
    cfg[name] = value
    rig = M.make_rig("fast", cfg=cfg)
    try:
        _refused(rig, name, value)
    finally:
        M._remove(rig.persist_dir)


def _refused(rig, name, value):
    rig.step(3)
    il = rig.ctl.il
    assert (il.active | il.latched) & (1 << C.CONFIG), "%s=%r accepted: %s" % (
        name,
        value,
        C.names(il.active | il.latched),
    )
    try:
        rig.ctl.start()
    except Exception:  # noqa: BLE001 - the refusal is the expected outcome
        pass
    rig.hold(True)
    rig.step(20)
    assert rig.phase() not in (S.PRECOOL, S.FREEZE, S.READY), S.name(rig.phase())
    assert rig.valves_closed()


def test_matrix_configuration_is_inside_the_bounds():
    """The matrix itself runs inside the bounds (no test widens a limit)."""
    for plant in M.PLANTS:
        rig = M.make_rig(plant)
        rig.step(3)
        M._remove(rig.persist_dir)
        assert not (rig.ctl.il.active | rig.ctl.il.latched), plant
        assert not rig.ctl.config_errors, rig.ctl.config_errors
