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


def test_run_loop_counts_overruns_and_trips(mpy):
    """Controller.run on the real-time virtual board: ticks that take longer
    than the period are counted; three in a row trip OVERRUN (latched), the
    valves are closed, and the loop keeps running (and stops on request)."""
    res = mpy.run(
        """
import sys
sys.path.append(".frozen")
import time
import vboard
w = vboard.get()
from cryo import board as cboard
from cryo.controller import Controller
b = cboard.build()
ctl = Controller(b, {"require_wdt": False})
orig = ctl.tick
state = {"n": 0}
def slow_tick(now):
    orig(now)
    state["n"] += 1
    if 3 <= state["n"] <= 6:
        time.sleep_ms(250)  # a tick that overruns its 100 ms period
ctl.tick = slow_tick
ctl.run(should_stop=lambda: state["n"] >= 10)
il = ctl.il
result([state["n"], ctl.ticker.overruns, bool(il.latched & (1 << 11)), ctl.protocol.name,
        w.levels[w.valve_id], w.levels[w.master_id]])
""",
        timeout=60,
    )
    n, overruns, latched, phase, valve, master = res
    assert n >= 10 and overruns >= 3
    assert latched and phase == "FAULT"
    assert valve == 0 and master == 0
