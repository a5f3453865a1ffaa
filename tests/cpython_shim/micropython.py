"""Test-only stand-in for MicroPython's ``micropython`` module under CPython.

Lets pure-logic firmware modules import on CPython so hypothesis can drive
them. It never ships to a board.
"""


def const(x):
    return x


def native(f):
    return f


def viper(f):
    return f


def heap_lock():
    return 0


def heap_unlock():
    return 0


def kbd_intr(_ch):
    pass


def schedule(fn, arg):
    fn(arg)


def alloc_emergency_exception_buf(_n):
    pass
