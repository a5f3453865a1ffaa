import os
import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(_TESTS))
# Tests import with --import-mode=importlib (test files in different areas
# may share a basename); each area's helper modules stay importable by name.
for _area in sorted(_TESTS.iterdir()):
    if (
        _area.is_dir()
        and not _area.name.startswith((".", "_"))
        and _area.name not in ("mpy_lib", "cpython_shim")
    ):
        sys.path.append(str(_area))
import mpyrun  # noqa: E402

mpyrun.ensure_cpython_path()


class MicroPython:
    """Handle given to tests by the ``mpy`` fixture."""

    exe = staticmethod(mpyrun.micropython_exe)
    run = staticmethod(mpyrun.run)
    run_raw = staticmethod(mpyrun.run_raw)
    call_each = staticmethod(mpyrun.call_each)
    differential = staticmethod(mpyrun.differential)
    facts = staticmethod(mpyrun.facts)
    float_tol = staticmethod(mpyrun.float_tol)


@pytest.fixture(scope="session")
def mpy():
    """Run snippets under the real MicroPython interpreter.

    ``mpy.run(code)`` returns what the snippet passed to ``result(...)``;
    ``assert_no_alloc`` and ``bytes_per_call`` are pre-imported in snippets.
    """
    mpyrun.micropython_exe()  # fail early with the install hint
    return MicroPython()


def pytest_addoption(parser):
    parser.addoption(
        "--port",
        default=None,
        help="serial port of a real board (e.g. /dev/ttyACM0) for the hardware-in-the-loop "
        "tests in tests/boards/ (deselected when not given)",
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "mpy" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mpy)


def pytest_report_header(config):
    try:
        exe = mpyrun.micropython_exe()
    except RuntimeError as e:
        return str(e)
    f = mpyrun.facts()
    return (
        "micropython: %s (MICROPYTHON=%s): %s floats, sys.maxsize 2**%d - 1, ticks wrap at 2**%d"
        % (
            exe,
            os.environ.get("MICROPYTHON", "unset"),
            "float32" if f["float32"] else "double",
            f["maxsize"].bit_length(),
            f["ticks_period"].bit_length() - 1,
        )
    )


def pytest_terminal_summary(terminalreporter):
    passed = terminalreporter.stats.get("passed", [])
    n_mpy = sum(1 for r in passed if "mpy" in r.keywords)
    terminalreporter.write_line(
        "interpreters: %d passed tests ran firmware under MicroPython, %d under CPython only"
        % (n_mpy, len(passed) - n_mpy)
    )
