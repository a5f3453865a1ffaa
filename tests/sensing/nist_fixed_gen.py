"""Generator of the integer NIST tables in firmware/cryo/sensing/nist_fixed.py.

Knots: E(t) in nV at uniform temperature steps inside zones (1 °C steps near
-270 °C where the Seebeck coefficient collapses, coarser above), every knot
computed in exact rational arithmetic from the verbatim NIST coefficients
(``sensing_nist.exact_emf``) and rounded to 1 nV. Per segment one curvature
term ``G`` (m°C): the inverse is ``t = t_k + H (f + G/H f (1 - f))`` with
``f = (E - E_k) / (E_k+1 - E_k)``, G fitted by least squares to the NIST
function on the segment.

``python tests/sensing/nist_fixed_gen.py`` prints the literals;
test_nist_fixed.py checks that the firmware module holds exactly these.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sensing_nist as nist  # noqa: E402

# (zone start °C, step °C); the last zone ends at the top of the range.
# Steps divide their zone exactly so that knots fall on -250, -200, 0 °C
# (0 °C: the NIST functions change polynomial there) and on the range end.
ZONES = {
    "K": ((-270, 1), (-250, 2), (-200, 4), (0, 7)),
    "T": ((-270, 1), (-250, 2), (-200, 4), (0, 8)),
}
T_MAX = {"K": 1372, "T": 400}
_SAMPLES = 24


def _float_emf(ty, t):
    from cryo import thermocouple

    return thermocouple.emf_mv(ty, t)


def build(ty):
    """(E_nV, G_mC, zone_first_knot, zone_start_C, zone_step_C), tuples of ints."""
    zones = ZONES[ty]
    top = T_MAX[ty]
    temps = []
    zk, zt, zh = [], [], []
    for i, (start, h) in enumerate(zones):
        end = zones[i + 1][0] if i + 1 < len(zones) else top
        assert (end - start) % h == 0, (ty, start, h)
        zk.append(len(temps))
        zt.append(start)
        zh.append(h)
        temps.extend((start + j * h, h) for j in range((end - start) // h))
    temps.append((top, 0))
    e = [round(nist.exact_emf(ty, t) * 1e6) for t, _ in temps]
    g = []
    for k in range(len(temps) - 1):
        t0, h = temps[k]
        w = e[k + 1] - e[k]
        num = den = 0.0
        for j in range(1, _SAMPLES):
            t = t0 + h * j / _SAMPLES
            f = (_float_emf(ty, t) * 1e6 - e[k]) / w
            r = (t - t0) / h - f
            phi = f * (1 - f)
            num += r * phi
            den += phi * phi
        g.append(round(num / den * h * 1000))
    return tuple(e), tuple(g), tuple(zk), tuple(zt), tuple(zh)


def literal(name, values, per_line=10):
    out = ["%s = (" % name]
    for i in range(0, len(values), per_line):
        out.append("    " + ", ".join(str(v) for v in values[i : i + per_line]) + ",")
    out.append(")")
    return "\n".join(out)


def module_text():
    parts = []
    for ty in ("K", "T"):
        e, g, zk, zt, zh = build(ty)
        parts.append(literal("_%s_E" % ty, e))
        parts.append(literal("_%s_G" % ty, g, 16))
        parts.append("_%s_ZK = %r" % (ty, zk))
        parts.append("_%s_ZT = %r" % (ty, zt))
        parts.append("_%s_ZH = %r" % (ty, zh))
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1] / "firmware"))
    sys.path.insert(0, str(HERE.parent / "cpython_shim"))
    print(module_text())
