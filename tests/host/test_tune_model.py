"""Model-based tuning on the host: proposals always inside the allowed
ranges (with a warning naming what the rule wanted) and the predicted
undershoot / ripple from the firmware PID on the fitted model."""

import numpy as np
import pytest

from cryo.storage import schema
from host_tools import fopdt
from host_tools.commands.tune import _gains_table, _proposal


def test_rules_from_a_fast_small_model_are_clamped_with_a_warning():
    # A step that did not start at rest: tiny gain and dead time -> huge gains
    ku, tu, raw = fopdt.fopdt_rules(0.4, 2.0, 0.05)
    assert raw["zn"]["kp"] > 10.0
    gains, warns = fopdt.clamped_rules(raw)
    for name, g in gains.items():
        for gain in ("kp", "ki", "kd"):
            f = schema.field("pid." + gain)
            assert f[3] <= g[gain] <= f[4], (name, gain)
    assert any(w.startswith("zn: kp") and "above the allowed 10" in w for w in warns)


def test_model_limits_match_the_schema():
    from cryo.control.model import GAIN_LIMITS

    for gain, hi in GAIN_LIMITS.items():
        assert schema.field("pid." + gain)[4] == hi


def test_grace_range_matches_the_schema():
    from cryo.control.model import GRACE_RANGE

    f = schema.field("limits.stuck_grace_s")
    assert (f[3], f[4]) == GRACE_RANGE


def test_stuck_grace_covers_the_dead_time_or_says_it_cannot():
    from cryo.control.model import stuck_grace

    assert stuck_grace(0.0) == (0.3, True)  # the margin alone (sample period, low-pass)
    assert stuck_grace(0.6) == (0.9, True)  # rounded up to 0.1 s, never below θ + margin
    g, ok = stuck_grace(2.5)
    assert ok and 2.75 <= g <= 2.8
    assert stuck_grace(3.0) == (3.0, False)  # longer than the watch may wait


def test_prediction_follows_the_preload_on_a_long_dead_time():
    m = {"gain": 120.0, "tau": 30.0, "dead_time": 2.5, "y0": 32.0}
    _, _, raw = fopdt.fopdt_rules(m["gain"], m["tau"], m["dead_time"])
    g = raw["simc"]
    hold = (32.0 + 25.0) / 120.0
    right = fopdt.predict(m, g, -25.0, hold_duty=hold, i_zone_c=2.0)
    wrong = fopdt.predict(m, g, -25.0, hold_duty=0.95, i_zone_c=2.0)  # far above the hold
    assert right["t_reach_s"] is not None and wrong["t_reach_s"] is not None
    assert right["undershoot_c"] < 2.0 < wrong["undershoot_c"]
    assert right["ripple_rms_c"] < 0.5


def test_table_prints_predictions_per_rule():
    m = {"gain": 120.0, "tau": 30.0, "dead_time": 1.0}
    _, _, raw = fopdt.fopdt_rules(m["gain"], m["tau"], m["dead_time"])
    gains, _ = fopdt.clamped_rules(raw)
    pred = _proposal(m, 32.0, -25.0, gains, 0.47)
    text = _gains_table(gains, "simc", pred)
    assert "undershoot" in text and "ripple RMS" in text
    assert text.count("°C") >= 2 * len(gains)


def test_step_fit_reports_its_quality():
    t = np.arange(0, 60, 0.1)
    y = 30 - 20 * 0.4 * (1 - np.exp(-np.clip(t - 1.5, 0, None) / 8.0))
    good = fopdt.fit_fopdt(t, y + np.random.default_rng(1).normal(0, 0.05, len(t)), 0.4)
    bad = fopdt.fit_fopdt(t, y + np.random.default_rng(1).normal(0, 3.0, len(t)), 0.4)
    assert good["r2"] > 0.99 and bad["r2"] < 0.9
    assert pytest.approx(1.0, abs=0.01) == good["r2"]
