"""The proof of the solenoid at FREEZE entry on every plant.

``cryo.interlock.proof.SolenoidProof`` fed with the physical plant of the
virtual board (boards/sim plant.py: the line's dead time, chill-down and
re-warming, the line and tissue probes' lag and noise) after the phases a
FREEZE follows: a PRECOOL (full flow, the line chilling fast) and a THAW
(no flow for a while, the line warming back). With a working solenoid
the proof must pass on every plant variant, at any noise seed; with the
solenoid stuck open (the cryogen keeps flowing through the open master
valve) it must find it, by its deadline at the latest. Factory limits on a
MAX31855-like scale (4 codes per degC); the grace is the one the plant's
dead time needs (``limits.stuck_grace_s``: 3 s for the 3 s line, as the
regulation bench configures it)."""

import plant as P
import pytest

from cryo.clock import ManualClock
from cryo.interlock import block as B
from cryo.interlock.proof import PASS, STUCK, SolenoidProof

_PER_C = 4
_PERIOD = 100  # ms per evaluation
PLANTS = P.VARIANTS + ("strong_spray", "long_line")
GRACE_S = {"dead_time_3s": 3.0, "long_line": 2.0}


def _limits(grace_s):
    lim = [0] * B.NL
    lim[B.L_STUCK_GRACE_MS] = int(grace_s * 1000)
    lim[B.L_STUCK_MS] = 2000
    lim[B.L_STUCK_DROP] = 4 * _PER_C  # 2 degC/s x 2 s, the factory maximum
    lim[B.L_AUX_DROP] = 2 * _PER_C
    lim[B.L_AUX_RISE] = 2 * _PER_C
    lim[B.L_DEPL_AUX] = -60 * _PER_C
    return lim


def _codes(p, code):
    code[B.TISSUE] = int(round(p.probe_c * _PER_C))
    code[B.AUX] = int(round(p.aux_c * _PER_C))


def _run(name, seed, before, stuck):
    """The verdict and its time (ms after FREEZE entry). ``before``:
    "precool" (full flow until the line reads -100 degC) or "thaw" (a
    full-flow pull-down, then 20 s without flow)."""
    p = P.Plant(P.load(name), seed)
    t = 0.0
    while p.aux_c > -100.0 and t < 120.0:
        p.step(0.1, 1.0, True)
        t += 0.1
    if before == "thaw":
        for _ in range(150):
            p.step(0.1, 1.0, True)
        for _ in range(200):
            p.step(0.1, 0.0, False)
    clock = ManualClock(0)
    proof = SolenoidProof(clock)
    lim = _limits(GRACE_S.get(name, 1.0))
    code = [0] * B.NCH
    now = 0
    proof.start(now)
    for i in range(200):
        p.step(_PERIOD / 1000.0, 1.0 if stuck else 0.0, True)
        now = clock.add(now, _PERIOD)
        _codes(p, code)
        v = proof.check(now, lim, code, True, False)
        if v:
            return v, (i + 1) * _PERIOD
    return 0, None


@pytest.mark.parametrize("before", ["precool", "thaw"])
@pytest.mark.parametrize("name", PLANTS)
def test_a_working_solenoid_passes_on_every_plant(name, before):
    for seed in range(6):
        v, t = _run(name, seed, before, stuck=False)
        assert v == PASS, (name, before, seed, v, t)


@pytest.mark.parametrize("before", ["precool", "thaw"])
@pytest.mark.parametrize("name", PLANTS)
def test_a_stuck_solenoid_is_found_on_every_plant(name, before):
    lim = _limits(GRACE_S.get(name, 1.0))
    deadline = lim[B.L_STUCK_GRACE_MS] + 2 * lim[B.L_STUCK_MS] + _PERIOD
    for seed in range(6):
        v, t = _run(name, seed, before, stuck=True)
        assert v == STUCK and t <= deadline, (name, before, seed, v, t)


def test_without_a_line_sensor_only_the_tissue_counts():
    """No line sensor: a resting tissue passes after grace + window; a
    falling one is stuck."""
    clock = ManualClock(0)
    lim = _limits(1.0)
    lim[B.L_AUX_DROP] = 1 << 28
    lim[B.L_AUX_RISE] = 0
    lim[B.L_DEPL_AUX] = 1 << 28
    for fall_c_s, want in ((0.0, PASS), (2.5, STUCK)):
        proof = SolenoidProof(clock)
        code = [0] * B.NCH
        now = 0
        proof.start(now)
        got = 0
        c = -20.0
        for _ in range(60):
            now = clock.add(now, _PERIOD)
            c -= fall_c_s * _PERIOD / 1000.0
            code[B.TISSUE] = int(round(c * _PER_C))
            got = proof.check(now, lim, code, False, False)
            if got:
                break
        assert got == want, (fall_c_s, got)


def test_with_the_redundant_probe_both_must_fall():
    """The spray cools the skin under both tissue probes: one probe falling
    alone (noise, a probe fault: the sensor checks' business) is no
    evidence against the solenoid; both falling are."""
    clock = ManualClock(0)
    lim = _limits(1.0)
    for falls, want in (((2.5, 0.0), PASS), ((0.0, 2.5), PASS), ((2.5, 2.5), STUCK)):
        proof = SolenoidProof(clock)
        code = [0] * B.NCH
        code[B.AUX] = 20 * _PER_C  # a resting, warm line
        now = 0
        proof.start(now)
        got = 0
        c = [-20.0, -20.0]
        for _ in range(60):
            now = clock.add(now, _PERIOD)
            for k in (0, 1):
                c[k] -= falls[k] * _PERIOD / 1000.0
            code[B.TISSUE] = int(round(c[0] * _PER_C))
            code[B.TISSUE2] = int(round(c[1] * _PER_C))
            got = proof.check(now, lim, code, True, True)
            if got:
                break
        assert got == want, (falls, got)
