"""The board's thermocouple channels: emulated chips on the SPI bus.

Which emulated chip (boards/sim/chips/) answers on which chip-select pin,
which plant temperature each channel measures, and the scenario's faults
on that reading (stuck, extra noise, drift); the chips' own faults (open
circuit, shorts, a dead bus) live in the emulators. Selecting a chip and
SPI transfers are allocation-free; a chip's float NIST work runs once per
plant step, when it is next selected.
"""

import plant as _plant

# Which plant temperature a thermocouple channel of the board measures.
_SOURCES = {"tissue": "probe", "tissue2": "probe2", "aux": "aux", "tissue3": "probe3"}


class Channel:
    """One thermocouple channel: chip emulator + scenario faults on its reading."""

    def __init__(self, name, chip, source):
        self.name = name
        self.chip = chip
        self.source = source  # 'probe', 'probe2', 'probe3' or 'aux'
        self.version = -1
        self.hot_c = 25.0
        self.stuck = False
        self.extra_noise_c = 0.0
        self.drift_c_per_s = 0.0
        self.offset_c = 0.0


def make_chip(kind, tc_type, clock):
    """The emulator of one thermocouple chip of board.json."""
    if kind == "max31855":
        from chips.max31855 import Max31855Emu

        return Max31855Emu(tc_type, clock)
    if kind == "max31856":
        from chips.max31856 import Max31856Emu

        try:
            return Max31856Emu(tc_type, clock)
        except TypeError:
            return Max31856Emu(tc_type)
    raise ValueError("board.json: unknown thermocouple chip %r; allowed: max31855, max31856" % kind)


class Thermocouples:
    """``channels`` by name, ``by_cs`` by chip-select pin id."""

    def __init__(self, board, clock, seed):
        self.channels = {}
        self.by_cs = {}
        for name, spec in board["thermocouples"].items():
            chip = make_chip(spec["chip"], spec.get("type", "K"), clock)
            ch = Channel(name, chip, _SOURCES.get(name, "probe"))
            self.channels[name] = ch
            self.by_cs[spec["cs"]] = ch
        self._selected = None
        self._noise = _plant.Noise(seed + 7919)

    def chip_select(self, pid, level, version, plant):
        """The CS pin ``pid`` went to ``level`` (low: selected); a selected
        chip first sees the plant of step ``version``."""
        ch = self.by_cs[pid]
        if level == 0:
            self._present(ch, version, plant)
            self._selected = ch
            ch.chip.select()
        else:
            ch.chip.deselect()
            if self._selected is ch:
                self._selected = None

    def deselect_all(self, levels):
        """Reset: every CS pin high, no chip selected."""
        for pid, ch in self.by_cs.items():
            levels[pid] = 1
            ch.chip.deselect()
        self._selected = None

    def _present(self, ch, version, plant):
        if ch.version != version:
            ch.version = version
            ch.chip.set_state(ch.hot_c, plant.cold_junction_c)

    def present_all(self, version, plant):
        for ch in self.channels.values():
            self._present(ch, version, plant)

    def transfer(self, wbuf, rbuf):
        """An SPI transfer: to the selected chip; none: MISO floats high (0xFF)."""
        ch = self._selected
        if ch is None:
            if rbuf is not None:
                i = 0
                n = len(rbuf)
                while i < n:
                    rbuf[i] = 0xFF
                    i += 1
            return
        ch.chip.transfer(wbuf, rbuf)

    def update(self, plant, dt=0.0):
        """Each channel's reading after a plant step of ``dt`` s."""
        for ch in self.channels.values():
            if ch.stuck:
                continue
            v = plant.probe_c
            if ch.source == "probe2":
                v = plant.probe2_c
            elif ch.source == "probe3":
                v = plant.probe3_c
            elif ch.source == "aux":
                v = plant.aux_c
            ch.offset_c += ch.drift_c_per_s * dt
            v += ch.offset_c
            if ch.extra_noise_c:
                v += ch.extra_noise_c * self._noise.gauss()
            ch.hot_c = v
