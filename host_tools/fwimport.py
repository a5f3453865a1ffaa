"""Import firmware modules (record layouts, schema, manifest) on the host.

Record layouts, the config schema and the app manifest are defined once in
``firmware/cryo`` and imported by the host tools (conventions.md). Firmware
modules do ``from micropython import const``; under CPython a minimal
stand-in is registered (only if no real/test ``micropython`` module is
importable), with ``firmware/`` put on ``sys.path``.
"""

import sys
import types

from host_tools import FIRMWARE_DIR


def ensure():
    if str(FIRMWARE_DIR) not in sys.path:
        sys.path.insert(0, str(FIRMWARE_DIR))
    if "micropython" in sys.modules:
        return
    try:
        import micropython  # noqa: F401  (the test shim, when on sys.path)

        return
    except ImportError:
        pass
    m = types.ModuleType("micropython")
    m.const = lambda x: x
    m.native = m.viper = lambda f: f
    m.heap_lock = m.heap_unlock = lambda: 0
    m.kbd_intr = lambda ch: None
    m.schedule = lambda fn, arg: fn(arg)
    m.alloc_emergency_exception_buf = lambda n: None
    sys.modules["micropython"] = m


ensure()
