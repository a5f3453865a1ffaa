"""The independent skin probe (``tissue3``): its own connector, chip and cold
junction, compared with ``tissue`` by the interlock (``disagree``), so a
cause the pair on the handpiece's shared connector has in common (both
drifting warm together) is seen. The fault-injection matrix covers every
phase on two plants (``tc12_drift_warm``, ``tc3_*``); these tests show what
the probe changes and that a slow first conversion is not a fault.
"""

import copy

import core_rig
import core_scenarios as SC
import safety_matrix as M
import vboard
from core_rig import Rig

from cryo.interlock import conditions as C
from cryo.protocol import states as S


def _board(without_skin_probe=False, max31856=False, tick_ms=None):
    d = copy.deepcopy(vboard.load_board())
    tcs = d["thermocouples"]
    if without_skin_probe:
        del tcs["tissue3"]
    if max31856:
        # Every channel on MAX31856 chips (SPI mode 1), as the RP2350,
        # ESP32-S3 and STM32 boards: its first conversion comes later.
        d["spi"]["phase"] = 1
        for name, tc in tcs.items():
            tc["chip"] = "max31856"
            tc["type"] = "K" if name == "aux" else "T"
    if tick_ms is not None:
        d["tick_ms"] = tick_ms
    return d


def _drift_in_the_hold(board):
    """The matrix's strong plant (calibrated tissue, 3x spray) held at its
    target, then both probes of the pair drift warm at 0.5 °C/s for 70 s.
    Returns (conditions seen, lowest true surface)."""
    rig = core_rig.Rig(
        seed=1,
        config=M._config("strong"),
        plant=M.PLANTS["strong"],
        board=board,
        persist=M._tmpdir(),
        log=core_rig.MemLog(),
    )
    assert M.goto(rig, "HOLD", "strong")
    assert not (rig.ctl.il.active | rig.ctl.il.latched)
    for name in ("tissue", "tissue2"):
        rig.world.channels[name].drift_c_per_s = 0.5
    seen = 0
    low = 100.0
    k = 0
    while k < 700:
        rig.step(1)
        seen |= rig.ctl.il.active | rig.ctl.il.latched
        low = min(low, rig.world.plant.surface_c)
        if seen:
            assert rig.valves_closed()
        k += 1
    return seen, low


def test_the_pair_drifting_warm_together_is_seen_only_by_the_skin_probe():
    floor = M.BASE["floor_c"]
    seen, low = _drift_in_the_hold(_board())
    assert seen & (1 << C.DISAGREE), C.names(seen)
    assert low >= floor - M.FLOOR_SLACK_C, low
    # Without the third probe the same drift raises nothing while the
    # regulator holds the warm reading at the target by cooling the real
    # surface further, past the floor.
    blind, low_blind = _drift_in_the_hold(_board(without_skin_probe=True))
    assert blind == 0, C.names(blind)
    assert low_blind < floor - M.FLOOR_SLACK_C, low_blind


def test_a_skin_probe_still_converting_is_not_a_disagreement():
    """Until a channel's first good sample only its liveness is judged: a
    MAX31856 board at a 50 ms tick evaluates the interlock several times
    before the chip's first conversion, and starts cleanly."""
    rig = Rig(seed=11, config=SC.FAST, plant=SC.FAST_PLANT, board=_board(max31856=True, tick_ms=50))
    rig.step(8)
    assert not (rig.ctl.il.active | rig.ctl.il.latched), C.names(rig.ctl.il.active)
    assert rig.ctl.start() is True
    assert rig.phase() == S.READY
    assert set(rig.ctl.status()["temps"]) == {"tissue", "tissue2", "aux", "tissue3"}
