"""firmware/main.py on the virtual board under MicroPython (real time, 10 Hz):
an uncaught exception or a KeyboardInterrupt in the loop, or service mode,
all end with both valves de-energised."""

import pytest

SNIPPET = """
import sys
sys.path.append(".frozen")  # asyncio is frozen; MICROPYPATH in the rig omits it
import vboard
w = vboard.get()  # the real-time virtual board (BoardClock)
import cryo.controller as CC
orig = CC.Controller.tick
state = {"n": 0}
def tick(self, now):
    orig(self, now)
    state["n"] += 1
    if state["n"] == 4:
        # energise both valves, as in the middle of a freeze, then fail
        self.board.valve_pin.value(1)
        self.board.master_pin.value(1)
        %s
CC.Controller.tick = tick
import main
outcome = "returned"
try:
    ctl = main.main()
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
except RuntimeError as e:
    outcome = "RuntimeError: " + str(e)
result([outcome, w.levels[w.valve_id], w.levels[w.master_id], state["n"]])
"""


@pytest.mark.parametrize(
    "action,expect",
    [
        ("raise RuntimeError('boom in tick')", "RuntimeError: boom in tick"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("self.request_service_mode('service')", "returned"),
    ],
)
def test_main_leaves_valves_closed(mpy, action, expect):
    outcome, valve, master, n = mpy.run(SNIPPET % action, timeout=60)
    assert outcome == expect
    assert n >= 4
    assert valve == 0 and master == 0
