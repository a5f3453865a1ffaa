"""Measured detection times of the fault-injection matrix, as markdown.

``.venv/bin/python tests/safety/detection_times.py [--plant fast|strong]``
runs every matrix case (CPython, virtual time) and prints one row per
failure mode: the conditions raised, and per plant the detection time
(injection → first expected condition, ms of virtual time) over the phases
where detection is required: min / median / max and how many of those
phases detected it. docs/safety.md can carry the table.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _p in (_HERE.parent, _HERE.parent / "core", _HERE):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import mpyrun  # noqa: E402

mpyrun.ensure_cpython_path()

import safety_matrix as M  # noqa: E402


def measure(plants=None):
    """{mode: {plant: [(phase, detect_ms or None, raised)]}} over the
    phases where the mode must be detected."""
    out = {}
    for plant in plants or list(M.PLANTS):
        for mode in M.MODES:
            rows = out.setdefault(mode, {}).setdefault(plant, [])
            for phase in M.PHASES:
                if M.expectation(mode, phase) != "detect":
                    continue
                r = M.run_case(mode, phase, plant)
                if r["expect"] == "detect":  # e.g. a watchdog not armed yet: quiet
                    rows.append((phase, r["detect_ms"], r["raised"]))
    return out


def _cell(rows):
    if not rows:
        return "not required"
    ms = sorted(d for _p, d, _r in rows if d is not None)
    if not ms:
        return "none of %d" % len(rows)
    return "%d / %d / %d (%d of %d)" % (ms[0], ms[len(ms) // 2], ms[-1], len(ms), len(rows))


def markdown(res):
    plants = sorted({p for v in res.values() for p in v})
    lines = [
        "| failure mode | expected conditions | raised | "
        + " | ".join("%s: min / median / max ms (phases)" % p for p in plants)
        + " |",
        "|---|---|---|" + "---|" * len(plants),
    ]
    for mode in M.MODES:
        raised = sorted({n for p in plants for _ph, _d, r in res[mode][p] for n in r})
        lines.append(
            "| %s | %s | %s | %s |"
            % (
                mode,
                ", ".join(M.MODES[mode][1]) or "-",
                ", ".join(raised) or "-",
                " | ".join(_cell(res[mode][p]) for p in plants),
            )
        )
    return "\n".join(lines)


if __name__ == "__main__":
    args = sys.argv[1:]
    plants = [args[args.index("--plant") + 1]] if "--plant" in args else None
    print(markdown(measure(plants)))
