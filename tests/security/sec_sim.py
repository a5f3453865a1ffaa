"""A provisioned virtual board for the attack tests.

``ProvisionedSim`` runs the real `cryo sim` (boot.py, main.py, controller,
command channel on the console); ``provision`` gives it PINs and a service
key the way a manufacturer would on a development board (real `cryo config
pin` and `cryo keys` over mpremote), after which every start of that flash
image enforces authentication.
"""

from sim_harness import SimProcess

from host_tools import cli
from host_tools.link import Link

SERVICE_PIN = "9182"
ENGINEER_PIN = "4711"


class ControllerSim(SimProcess):
    def wait_ready(self):
        # boot.py and main.py: the controller answers hello once its loop runs
        with Link(self.port, timeout=1) as link:
            link.await_controller(boot_wait=30)
            self.hello = link.hello()


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
    ]
    for argv in steps:
        assert cli.main(argv) == 0, argv
    sim.wait_ready()  # the session restarted the controller: now provisioned
    assert sim.hello["auth"] is True and sim.hello["device"] == "sim-0001"
