"""What survives a reset of the virtual board: the plant, the physical
inputs and the injected faults (not the electronics).

Real time (``cryo sim``): the state is written to the relay's state file —
a fixed-size record, padded, so a shorter record never leaves a tail of
the previous one — at least every ``_STATE_EVERY_S`` of plant time and
before a reset; the restarted process restores it (boards/sim/sim_boot.py).
"""

import json

_STATE_BYTES = 4096  # fixed-size state record
_STATE_EVERY_S = 1.0  # saved at least this often (plant time)


def snapshot(world):
    """The world's state as a JSON-able dict."""
    ch = {}
    for name, c in world.channels.items():
        chip = c.chip
        ch[name] = [
            c.stuck,
            c.hot_c,
            c.extra_noise_c,
            c.drift_c_per_s,
            c.offset_c,
            chip.open_circuit,
            chip.short_gnd,
            chip.short_vcc,
            chip.bus,
        ]
    outs = []
    for pid in world.levels:
        if world.modes.get(pid) == 1:
            outs.append([pid, world.levels[pid]])
    return {
        "plant": world.plant.state(),
        "outputs": outs,
        "inputs": dict(world.logical),
        "valve_stuck": world.valves.solenoid_stuck,
        "master_stuck": world.valves.master_stuck,
        "adc_offline": world.adc_offline,
        "channels": ch,
    }


def restore(world, st, keep_outputs=False):
    """Restore ``world`` from :func:`snapshot`'s dict; ``keep_outputs``: a
    soft reset, where output pins keep their levels
    (docs/reference/reset_boot.rst) until the firmware drives them — the
    reason boot.py closes the valves first."""
    world.plant.restore(st["plant"])
    if keep_outputs:
        for pid, level in st.get("outputs", ()):
            world.modes[pid] = 1
            world.levels[pid] = level
        world.valve_edge()
    for role, v in st["inputs"].items():
        if role in world.inputs:
            world.hold_input(role, v)
    if "valve_supply" in world.inputs and "valve_supply" not in st["inputs"]:
        # a state saved before the read-back existed: it follows the loop
        world.hold_input("valve_supply", world.logical["estop"])
    world.valves.solenoid_stuck = st["valve_stuck"]
    world.valves.master_stuck = st.get("master_stuck")  # absent in older state files
    world.adc_offline = st["adc_offline"]
    for name, v in st["channels"].items():
        c = world.channels.get(name)
        if c is None:
            continue
        c.stuck, c.hot_c, c.extra_noise_c, c.drift_c_per_s, c.offset_c = v[:5]
        c.chip.open_circuit, c.chip.short_gnd, c.chip.short_vcc, c.chip.bus = v[5:]
        c.version = -1


class StateFile:
    """The relay's state file (opened "r+b"/"w+b"), written when due."""

    def __init__(self, f):
        self._f = f
        self._next_s = 0.0

    def due(self, t_s):
        """Plant time ``t_s`` calls for a save (and the next is scheduled)."""
        if t_s < self._next_s:
            return False
        self._next_s = t_s + _STATE_EVERY_S
        return True

    def save(self, world):
        data = json.dumps(snapshot(world)).encode()
        if len(data) > _STATE_BYTES:
            return
        f = self._f
        f.seek(0)
        f.write(data)
        f.write(b" " * (_STATE_BYTES - len(data)))
        f.flush()
