"""Gain schedule per setpoint band: lookup, bounded table, bumpless apply."""

from pathlib import Path

import pytest

from cryo.control.schedule import GainSchedule
from cryo.pid import PID

CTL_LIB = Path(__file__).resolve().parent / "ctl_lib"


def test_nearest_band_within_width_else_default():
    s = GainSchedule((0.05, 0.01, 0.0), band_c=5.0)
    s.store(-25.0, 0.17, 0.039, 0.0)
    s.store(-10.0, 0.3, 0.08, 0.0)
    assert s.lookup(-25.0) == (0.17, 0.039, 0.0, -25.0)
    assert s.lookup(-28.0) == (0.17, 0.039, 0.0, -25.0)
    assert s.lookup(-13.0) == (0.3, 0.08, 0.0, -10.0)
    assert s.lookup(-40.0) == (0.05, 0.01, 0.0, None)  # out of every band
    s.store(-26.0, 0.2, 0.05, 0.0)  # within band/2 of -25: replaces it
    assert s.n == 2 and s.lookup(-25.0)[:3] == (0.2, 0.05, 0.0)


def test_bounded_and_validated():
    s = GainSchedule((0.05, 0.01, 0.0), band_c=2.0, capacity=2)
    s.store(-25.0, 0.17, 0.039, 0.0)
    s.store(-10.0, 0.3, 0.08, 0.0)
    with pytest.raises(ValueError, match="full"):
        s.store(-40.0, 0.1, 0.01, 0.0)
    with pytest.raises(ValueError, match="kp"):
        s.store(-30.0, -0.1, 0.0, 0.0)
    with pytest.raises(ValueError, match="setpoint_c"):
        s.store(float("nan"), 0.1, 0.0, 0.0)
    before = s.to_list()
    with pytest.raises(ValueError, match="setpoint_c, kp, ki, kd"):
        s.from_list([[-20.0, 0.1, 0.01, 0.0], [1, 2]])
    assert s.to_list() == before  # a rejected table leaves the old one
    s.from_list([[-20.0, 0.1, 0.01, 0.0]])
    assert s.to_list() == [[-20.0, 0.1, 0.01, 0.0]]
    with pytest.raises(ValueError, match="successful autotune"):
        s.store_result({"ok": False, "reason": "timeout"})


def test_apply_is_bumpless_and_only_on_change(mpy):
    r = mpy.run(
        """
from cryo.control.schedule import GainSchedule
from cryo.pid import PID
s = GainSchedule((0.05, 0.01, 0.0))
s.store_result({"ok": True, "setpoint_c": -25.0, "kp": 0.17, "ki": 0.039, "kd": 0.0})
pid = PID(0.05, 0.01, 0.0)
k = 0
while k < 100:
    pid.update(-25.0, -24.0, 0.2)
    k += 1
before = pid.output
changed = s.apply(pid, -25.0)
again = s.apply(pid, -25.0)
after = pid.update(-25.0, -24.0, 0.2)
result([changed, again, before, after, [pid.kp, pid.ki, pid.kd], s.active])
""",
        extra_path=[CTL_LIB],
    )
    changed, again, before, after, gains, active = r
    assert changed is True and again is False
    assert gains == [0.17, 0.039, 0.0] and active == -25.0
    assert abs(after - before) <= 0.039 * 1.0 * 0.2 + 1e-9  # one integral step, no P bump


def test_autotune_result_carries_its_setpoint():
    from fopdt import Fopdt

    from cryo.clock import ManualClock
    from cryo.control.autotune import RelayAutotune

    plant = Fopdt(gain=100.0, tau=20.0, dead_time=2.0, rest_c=30.0, dt_s=0.05)
    c = ManualClock()
    t = RelayAutotune(c, -20.0, hysteresis_c=0.3)
    y = plant.measured()
    while not t.done:
        y = plant.step(t.step(c.ticks_ms(), y))
        c.advance(50)
    s = GainSchedule((0.05, 0.01, 0.0))
    s.store_result(t.result)
    pid = PID(0.05, 0.01, 0.0)
    assert s.apply(pid, -21.0) and pid.kp == t.result["kp"]
