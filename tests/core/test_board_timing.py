"""The board definition's watchdog and tick reach the controller.

The board's ``watchdog.timeout_ms`` is the ceiling (never above the clinical
2000 ms); the config's ``wdt_ms`` may only shorten it. The board's
``tick_ms`` is the default control period; a config ``period_ms`` wins.
"""

import copy
from pathlib import Path

import pytest
import vboard
from core_rig import Rig

from cryo.core.settings import WDT_CLINICAL_MAX_MS, watchdog_timeout_ms


def _board(wdt_ms=1000, tick_ms=50):
    d = copy.deepcopy(vboard.load_board())
    if wdt_ms is None:
        d.pop("watchdog", None)
    else:
        d["watchdog"] = {"timeout_ms": wdt_ms}
    if tick_ms is None:
        d.pop("tick_ms", None)
    else:
        d["tick_ms"] = tick_ms
    return d


@pytest.mark.parametrize(
    "config_ms, board_ms, want",
    [
        (None, 1000, 1000),  # the board's value
        (600, 1000, 600),  # the config may shorten it
        (5000, 1000, 1000),  # ... never lengthen it
        (None, 0, WDT_CLINICAL_MAX_MS),  # no board value: the clinical maximum
        (8000, None, WDT_CLINICAL_MAX_MS),  # a long config value is capped there too
        (None, 5000, WDT_CLINICAL_MAX_MS),  # a board above the clinical limit is capped
        (700, 0, 700),
    ],
)
def test_watchdog_rule(config_ms, board_ms, want):
    assert watchdog_timeout_ms(config_ms, board_ms) == want


def test_board_watchdog_and_tick_are_used():
    rig = Rig(seed=31, board=_board(1000, 50))
    assert rig.ctl.period_ms == 50 and rig.ctl.config_errors == []
    rig.step(6)  # 300 ms: the chips' first conversions (~100 ms) are in
    assert rig.ctl.start() is True
    assert rig.world.wdt_timeout_ms == 1000


def test_config_shortens_but_never_lengthens_the_board_watchdog():
    short = Rig(seed=32, board=_board(1000, 100), config={"limits.wdt_ms": 600})
    short.step(3)
    short.ctl.start()
    assert short.world.wdt_timeout_ms == 600
    at_limit = Rig(seed=33, board=_board(1000, 100), config={"wdt_ms": 2000})
    at_limit.step(3)
    at_limit.ctl.start()
    assert at_limit.world.wdt_timeout_ms == 1000  # the board's hardware ceiling


def test_a_config_watchdog_above_the_clinical_maximum_is_rejected_not_capped():
    from cryo.link.errors import NotNow

    rig = Rig(seed=37, board=_board(1000, 100), config={"wdt_ms": 5000})
    assert any("wdt_ms" in m and "2000" in m for m in rig.ctl.config_errors), rig.ctl.config_errors
    rig.step(3)
    with pytest.raises(NotNow, match="config"):
        rig.ctl.start()
    assert not rig.world.valve_is_open()


def test_config_period_overrides_the_board_tick_and_absent_fields_keep_defaults():
    rig = Rig(seed=34, board=_board(1000, 50), config={"pid.period_ms": 100})
    assert rig.ctl.period_ms == 100
    bare = Rig(seed=35, board=_board(None, None))
    assert bare.ctl.period_ms == 100 and bare.ctl.settings.wdt_ms == WDT_CLINICAL_MAX_MS


def test_board_timing_under_micropython(mpy):
    got = mpy.run(
        """
import sys
sys.path.append(%r)
import json, vboard
from core_rig import Rig
d = vboard.load_board()
d = json.loads(json.dumps(d))
d["watchdog"] = {"timeout_ms": 800}
d["tick_ms"] = 50
rig = Rig(seed=36, board=d, config={"wdt_ms": 1500})
rig.step(6)
ok = rig.ctl.start()
result([rig.ctl.period_ms, ok, rig.world.wdt_timeout_ms])
"""
        % str(Path(__file__).resolve().parent)
    )
    assert got == [50, True, 800]
