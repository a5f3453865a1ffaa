"""A provisioned virtual board for the attack tests.

``ProvisionedSim`` runs the real `cryo sim` (boot.py, main.py, controller,
command channel on the console); ``provision`` gives it PINs and a service
key the way a manufacturer would on a development board (real `cryo config
pin` and `cryo keys` over mpremote), after which every start of that flash
image enforces authentication.
"""

import time

from sim_harness import SimProcess

from host_tools import cli
from host_tools.device.link import Link, LinkError

SERVICE_PIN = "9182"
ENGINEER_PIN = "4711"


class ControllerSim(SimProcess):
    def wait_ready(self, timeout=30):
        # boot.py and main.py: ready when the controller answers hello (its
        # boot output may look like a REPL to a Link meanwhile: ask again)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if time.monotonic() > deadline:
                raise AssertionError("no controller answer: " + console_output(self))
            time.sleep(0.2)

    def _answers(self):
        try:
            with Link(self.port, timeout=1) as link:
                self.hello = link.hello()
            return True
        except LinkError:
            return False


def console_output(sim):
    """What the board's console shows now (a newline sent, 2 s read), with
    the sim's own log: for failure messages."""
    import serial

    with serial.Serial(sim.port, timeout=2) as ser:
        ser.write(b"\r\n")
        seen = ser.read(4000)
    return "%s %r" % (sim.stderr(), seen)


def provision(sim, keys_dir, monkeypatch):
    """PINs for service and engineer, a master secret, the device's key."""
    monkeypatch.setenv("CRYO_KEYS", str(keys_dir))
    steps = [
        ["config", "--port", sim.port, "--role", "service", "--pin", SERVICE_PIN]
        + ["pin", "service", SERVICE_PIN],
        ["config", "--port", sim.port, "--role", "service", "--pin", SERVICE_PIN]
        + ["pin", "engineer", ENGINEER_PIN],
        ["keys", "init"],
        ["keys", "provision", "--port", sim.port, "--device-id", "sim-0001"],
        # a hard reset: the provisioned start (the sessions above restart the
        # controller by a soft reset, which a late byte can leave at the REPL)
        ["reset", "--port", sim.port],
    ]
    for argv in steps:
        assert cli.main(argv) == 0, argv
    sim.wait_ready()  # the session restarted the controller: now provisioned
    assert sim.hello["auth"] is True and sim.hello["device"] == "sim-0001"
