"""Callbacks run as interrupt handlers: pin IRQs and ``machine.Timer``.

``hard=True`` callbacks run with the heap locked, as MicroPython runs hard
interrupt handlers (MicroPython docs, reference/isr_rules.rst: a hard ISR
cannot allocate), so an allocating handler raises MemoryError here as it
would on a board.
"""

import sys

try:
    from micropython import heap_lock, heap_unlock
except ImportError:  # CPython without the test shim: nothing to lock

    def heap_lock():
        return 0

    def heap_unlock():
        return 0


# Hard callbacks run with the heap locked only under MicroPython: CPython
# has no heap lock, and its stand-in must not pretend to test allocation.
_LOCK_HEAP = sys.implementation.name == "micropython"


def dispatch(cb, arg, hard):
    """Run an IRQ or timer callback ``cb(arg)``; a hard one with the heap locked."""
    if hard and _LOCK_HEAP:
        heap_lock()
        try:
            cb(arg)
        finally:
            heap_unlock()
    else:
        cb(arg)
