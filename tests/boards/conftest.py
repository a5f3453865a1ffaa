"""Fixtures for the board checks: ``target`` is where an end-to-end check
runs — the virtual board wired from each real board's definition, the same
virtual board behind a serial port (``cryo sim``, firmware's main.py
running), and, with ``pytest --port /dev/ttyACM0``, the real board."""

import os
import threading
from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "hil: end-to-end check that also runs on a real board given with --port"
    )


def _port(config):
    return config.getoption("--port", default=None)


@pytest.fixture(scope="session")
def device(request):
    """The real board on --port (tests that use it directly exist only then)."""
    port = _port(request.config)
    import hil

    dev = hil.DeviceTarget(port)
    yield dev
    dev.close()


@pytest.fixture(scope="session")
def cryo_sim_device(tmp_path_factory):
    """The real-time virtual board (``cryo sim``) wired from the RP2040
    definition, reached over its pty exactly as a board over USB.

    Its ROM holds the firmware and boot.py but no main.py: the state the
    hardware checks need (the loop not running, no watchdog armed), as on a
    real board booted for service."""
    import shutil

    import boardcheck
    import hil

    from host_tools.virtual.board import VirtualBoard

    d = tmp_path_factory.mktemp("cryo_sim")
    rom = d / "rom"
    shutil.copytree(
        boardcheck.FIRMWARE / "cryo", rom / "cryo", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(boardcheck.FIRMWARE / "boot.py", rom / "boot.py")
    vb = VirtualBoard(
        flash=str(d / "flash.img"),
        board=str(boardcheck.BOARDS / "rp2040" / "board.json"),
        rom=str(rom),
        log=(relay_log := []).append,
    )
    port = vb.open()
    stop = threading.Event()
    thread = threading.Thread(target=vb.serve, kwargs={"until": stop.is_set}, daemon=True)
    thread.start()
    try:
        dev = hil.DeviceTarget(port, timeout=5)
    except Exception as e:
        # Say what the board was doing: a silent board and a dead one need
        # different fixes.
        alive = vb.proc is not None and vb.proc.poll() is None
        state = "exited %r" % (vb.proc and vb.proc.poll(),)
        if alive:  # a child stuck between fork and exec is still python
            try:
                state = "running " + os.readlink("/proc/%d/exe" % vb.proc.pid)
            except OSError:
                state = "running"
        relay = "alive" if thread.is_alive() else "dead"
        stop.set()
        thread.join(timeout=5)
        vb.close()
        raise RuntimeError(
            "cryo sim did not answer mpremote: interpreter %s, relay %s, relay log %r"
            % (state, relay, relay_log)
        ) from e
    yield dev
    try:
        dev.close()
    finally:
        stop.set()
        thread.join(timeout=5)
        vb.close()


_TARGETS = ("sim-esp32s3", "sim-rp2040", "sim-rp2350", "sim-stm32f4", "cryo-sim")


def pytest_generate_tests(metafunc):
    # The real board is a target only when one is attached (--port): without
    # it the device cases do not exist, rather than being collected and skipped.
    if "target" in metafunc.fixturenames:
        targets = _TARGETS + (("device",) if _port(metafunc.config) else ())
        metafunc.parametrize("target", targets, indirect=True)


@pytest.fixture
def target(request, mpy):
    """Where an end-to-end check runs: the virtual board wired from each real
    board's definition, ``cryo sim`` over its serial port, then (with
    --port) the real board itself."""
    import hil

    if request.param.startswith("sim-"):
        return hil.SimTarget(request.param[4:])
    if request.param == "cryo-sim":
        return request.getfixturevalue("cryo_sim_device")
    return request.getfixturevalue("device")


def pytest_collection_modifyitems(config, items):
    # Checks written for the real board alone (they take ``device``) are
    # deselected without --port, reported as such, never skipped.
    if _port(config):
        return
    here = Path(__file__).parent
    keep, drop = [], []
    for item in items:
        mine = here in Path(item.path).parents
        (drop if mine and "device" in getattr(item, "fixturenames", ()) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
