"""Probe used by the differential test: the same calls on both interpreters."""

from cryo.clock import ManualClock


def add_diff(t, d):
    c = ManualClock()
    s = c.add(t, d)
    return [s, c.diff(s, t)]
