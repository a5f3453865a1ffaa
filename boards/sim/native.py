"""``@micropython.native`` for the plant's hot loops, under both interpreters.

MicroPython's compiler recognises the decorator by its spelling
(``@micropython.native``) and emits machine code (about 3x faster here);
CPython gets a stand-in ``micropython`` whose ``native`` returns the
function unchanged. Use: ``from native import micropython``.
"""

import sys

if sys.implementation.name == "micropython":
    import micropython
else:

    class micropython:  # noqa: N801 - CPython stand-in for the decorator
        @staticmethod
        def native(f):
            return f
