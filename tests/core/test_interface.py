"""The controller's public interface after its split into cryo/core/ parts:
what other modules import from ``cryo.controller`` is still there,
on CPython and on the real MicroPython unix port (multiple inheritance of
the mixins included)."""

PUBLIC_METHODS = (
    "tick",
    "run",
    "safe",
    "safety_isr",
    "service_valve",
    "start",
    "self_test",
    "begin",
    "stop",
    "ack_fault",
    "pause_audio",
    "request_service_mode",
    "get_param",
    "set_param",
    "save_config",
    "status",
    "start_autotune",
    "autotune_status",
    "stop_autotune",
    "start_step_test",
    "step_test_status",
    "step_trace",
    "stop_step_test",
    "treatment_seconds",
)
NAMES = ("Controller", "EXTRAS", "check_extra", "check_extras", "role_level", "make_sensor")


def test_public_names_cpython():
    import cryo.controller as CC

    assert all(hasattr(CC, n) for n in NAMES)
    missing = [m for m in PUBLIC_METHODS if not callable(getattr(CC.Controller, m, None))]
    assert missing == []
    assert CC.role_level("service") == 3
    assert CC.check_extra("pid.kp", 99.0) == "pid.kp = 99.0 is outside 0.0..10.0"


def test_public_names_micropython(mpy):
    res = mpy.run(
        """
import cryo.controller as CC
names = %r
methods = %r
result([[n for n in names if not hasattr(CC, n)],
        [m for m in methods if not hasattr(CC.Controller, m)],
        CC.role_level("engineer")])
"""
        % (NAMES, PUBLIC_METHODS)
    )
    assert res == [[], [], 2]
