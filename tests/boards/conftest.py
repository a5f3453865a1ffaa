"""Fixtures for the board checks: ``target`` is the virtual board and, with
``pytest --port /dev/ttyACM0``, also the real board on that port."""

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "hil: end-to-end check that also runs on a real board given with --port"
    )


def _port(config):
    return config.getoption("--port", default=None)


@pytest.fixture(scope="session")
def device(request):
    """The real board on --port (skipped when none is given)."""
    port = _port(request.config)
    if not port:
        pytest.skip("hardware in the loop: no --port given (e.g. pytest --port /dev/ttyACM0)")
    import hil

    dev = hil.DeviceTarget(port)
    yield dev
    dev.close()


@pytest.fixture(params=["sim-esp32s3", "sim-rp2040", "sim-rp2350", "sim-stm32f4", "device"])
def target(request, mpy):
    """Where an end-to-end check runs: the virtual board wired from each real
    board's definition, then (with --port) the real board itself."""
    import hil

    if request.param.startswith("sim-"):
        return hil.SimTarget(request.param[4:])
    return request.getfixturevalue("device")
