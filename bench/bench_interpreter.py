"""Baseline: the MicroPython unix port's speed on this machine."""

import mpyrun


def run():
    r = mpyrun.run(
        """
import time
def loop(n):
    s = 0
    for i in range(n):
        s += i & 7
    return s
ts = time_us(lambda: loop(1000), 200)
x = 1.5
result([ts[len(ts) // 2], bytes_per_call(lambda: x * 2.0, 100)])
"""
    )
    return [
        ("integer loop, 1000 iterations (median)", f"{r[0]} µs"),
        ("bytes allocated by one float multiply", f"{r[1]:.0f} B"),
    ]
