"""boards/<name>/manifest.py freezes the controller for that board.

The manifests are run here with the manifest API of MicroPython's
tools/manifestfile.py (include/package/module/require/freeze) recorded, and
what they freeze is the firmware's ``cryo`` package (test_boards_mpy_cross.py
compiles every module at the manifests' ``opt=1`` for every board's arch).
"""

from pathlib import Path

import boardcheck
import pytest

from host_tools import mpylib

REAL_BOARDS = ("esp32s3", "rp2040", "rp2350", "stm32f4")


def run_manifest(path: Path):
    calls = []

    def record(name):
        def f(*args, **kw):
            calls.append((name, args, kw))

        return f

    api = {n: record(n) for n in ("include", "package", "module", "require", "freeze", "metadata")}
    exec(compile(path.read_text(), str(path), "exec"), api)
    return calls


@pytest.mark.parametrize("name", REAL_BOARDS)
def test_manifest_freezes_the_controller_package(name):
    path = boardcheck.BOARDS / name / "manifest.py"
    calls = run_manifest(path)
    assert ("include", ("$(PORT_DIR)/boards/manifest.py",), {}) in calls
    packages = [(a, kw) for n, a, kw in calls if n == "package"]
    assert len(packages) == 1
    args, kw = packages[0]
    assert args == ("cryo",)
    base = (path.parent / kw["base_path"]).resolve()
    assert base == boardcheck.FIRMWARE
    # Neither boot.py nor main.py: they stay on the filesystem.
    assert not [c for c in calls if c[0] in ("module", "freeze")]
    assert kw["opt"] == 1  # what test_boards_mpy_cross.py compiles with
    assert required(calls) == set(mpylib.REQUIRES)


def required(calls):
    """micropython-lib packages a manifest freezes: those the firmware
    imports (host_tools/mpylib.py), taken from the pinned source's own
    micropython-lib, never a copy in this repository."""
    return {a[0] for n, a, kw in calls if n == "require"}


def test_the_firmware_imports_what_it_requires_and_keeps_no_copy():
    import ast

    imported = set()
    for f in boardcheck.FIRMWARE.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
    assert set(mpylib.REQUIRES) <= imported
    for pkg in mpylib.REQUIRES:
        assert not list(boardcheck.FIRMWARE.rglob(pkg + ".py"))


def test_the_emulated_boards_manifest_freezes_firmware_asyncio_and_the_virtual_board():
    """boards/qemu-mps2 (built by `make qemu`): the controller as the real
    boards freeze it, asyncio from the MicroPython tree, every module of
    the virtual board that runs beside it (each one exists) and the board's
    own ROM."""
    path = boardcheck.BOARDS / "qemu-mps2" / "manifest.py"
    calls = run_manifest(path)
    assert ("include", ("$(MPY_DIR)/extmod/asyncio",), {}) in calls
    packages = {a[0]: kw for n, a, kw in calls if n == "package"}
    assert (path.parent / packages["cryo"]["base_path"]).resolve() == boardcheck.FIRMWARE
    assert packages["cryo"]["opt"] == 1
    assert required(calls) == set(mpylib.REQUIRES)
    sim = boardcheck.BOARDS / "sim"
    assert (path.parent / packages["chips"]["base_path"]).resolve() == sim
    where = {
        a[0]: (path.parent / kw.get("base_path", ".")).resolve()
        for n, a, kw in calls
        if n == "module"
    }
    for m, d in where.items():
        assert (d / m).is_file(), m
    # Every module of the virtual board but the real-time ROM (sim_boot.py,
    # the unix port's) is frozen: a module left out is an ImportError on qemu.
    needed = {p.name for p in sim.glob("*.py")} - {"sim_boot.py"}
    frozen = {m for m, d in where.items() if d == sim}
    assert needed <= frozen, sorted(needed - frozen)
    # the board's own ROM, real-time mode (`cryo sim --board qemu-mps2`)
    assert where["_boot.py"] == where["qemu_rom.py"] == path.parent
