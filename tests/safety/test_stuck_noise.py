"""The stuck-open watch tells a noisy probe from a fall.

``cryo.interlock.stuck.StuckOpenWatch`` with the factory limits on a
MAX31855 code scale (4 codes per degC): a resting tissue read by a probe
with sigma 0.5 degC of noise (a slow, noisy probe of docs/plant.md) for
ten minutes with the solenoid commanded closed must never look stuck; a
real fall of 1 degC/s (cryogen through a stuck valve) must still be seen
within three seconds of the grace (one window and the low-pass's lag), at
any noise seed."""

import random

from cryo.clock import ManualClock
from cryo.interlock import block as B
from cryo.interlock.stuck import StuckOpenWatch

_PER_C = 4  # MAX31855: 0.25 degC per code
_PERIOD = 100  # ms per evaluation


def _limits():
    lim = [0] * B.NL
    lim[B.L_STUCK_GRACE_MS] = 1000
    lim[B.L_STUCK_MS] = 2000
    lim[B.L_STUCK_DROP] = 1 * _PER_C  # 0.5 degC/s x 2 s
    lim[B.L_AUX_DROP] = 2 * _PER_C
    lim[B.L_AUX_RISE] = 2 * _PER_C
    lim[B.L_DEPL_AUX] = -1000 * _PER_C  # the line is warm: only the tissue counts
    return lim


def _run(seed, fall_c_s, seconds):
    rng = random.Random(seed)
    clock = ManualClock(0)
    watch = StuckOpenWatch(clock)
    lim = _limits()
    code = [0] * B.NCH
    true_c = -20.0
    now = 0
    n = seconds * 1000 // _PERIOD
    for i in range(n):
        now = clock.add(now, _PERIOD)
        if i * _PERIOD >= 1000:
            true_c -= fall_c_s * _PERIOD / 1000.0
        code[B.TISSUE] = int(round((true_c + rng.gauss(0.0, 0.5)) * _PER_C))
        code[B.AUX] = 20 * _PER_C
        if watch.check(now, lim, code, False, True, True):
            return i * _PERIOD
    return None


def test_noise_alone_never_looks_stuck():
    for seed in range(40):
        assert _run(seed, 0.0, 600) is None, seed


def test_a_fall_is_still_seen_within_three_seconds_of_the_grace():
    for seed in range(20):
        t = _run(seed, 1.0, 60)
        assert t is not None and t <= 1000 + 3000, (seed, t)


def test_the_noise_is_enough_to_trip_a_single_sample_rule():
    """The premise: this noise against a 1 degC drop, sample by sample
    (what the watch compared before its low-pass), trips within seconds."""
    rng = random.Random(1)
    lim = _limits()
    code = [0] * B.NCH
    code[B.AUX] = 20 * _PER_C
    tripped = 0
    ref = -20 * _PER_C
    for _ in range(6000):
        c = int(round((-20.0 + rng.gauss(0.0, 0.5)) * _PER_C))
        if ref - c >= lim[B.L_STUCK_DROP]:
            tripped += 1
    assert tripped > 100  # of 6000 samples (10 minutes at 10 Hz)
