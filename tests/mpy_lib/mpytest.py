"""Helpers that run inside MicroPython during tests.

``result(obj)`` prints the structured result the pytest fixture parses;
``assert_no_alloc`` proves a call allocates nothing (``heap_lock`` turns any
allocation into ``MemoryError``); ``bytes_per_call`` measures allocation with
the collector paused. Every float operation allocates on MicroPython (floats
are boxed), so only integer code can pass ``assert_no_alloc``.
"""

import gc
import json

import micropython

_MARK = "\x1e@@RESULT@@"


def result(obj):
    print(_MARK + json.dumps(obj))


def assert_no_alloc(fn, n=100, *args):
    """Call ``fn(*args)`` ``n`` times with the heap locked.

    Raises AssertionError naming the call if anything allocated.
    """
    fn(*args)  # warm up: first calls may intern or cache
    gc.collect()
    # A while loop: range() and *args would allocate themselves.
    i = 0
    micropython.heap_lock()
    try:
        if args:
            while i < n:
                fn(*args)
                i += 1
        else:
            while i < n:
                fn()
                i += 1
    except MemoryError:
        micropython.heap_unlock()
        raise AssertionError("allocated under heap_lock: %r" % (fn,))
    micropython.heap_unlock()
    return True


def bytes_per_call(fn, n=100, *args):
    """Average bytes allocated per call of ``fn(*args)`` (collector paused)."""
    fn(*args)
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        for _ in range(n):
            fn(*args)
        after = gc.mem_alloc()
    finally:
        gc.enable()
    return (after - before) / n


def time_us(fn, n=1000, *args):
    """Per-call samples in microseconds, sorted (for median/p99)."""
    import time

    out = []
    for _ in range(n):
        t0 = time.ticks_us()
        fn(*args)
        out.append(time.ticks_diff(time.ticks_us(), t0))
    out.sort()
    return out
