"""docs/safety.md states what the code defines: the condition table (code,
name, priority, latching and the role that acknowledges) and the factory
clinical bounds must match cryo.interlock.conditions and the schema."""

import re
from pathlib import Path

from cryo.interlock import conditions as C
from cryo.storage import schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "safety.md"


def _rows():
    text = DOC.read_text()
    start = text.index("| code | name | priority |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_condition_table_matches_the_code():
    rows = _rows()
    assert [int(r[0]) for r in rows] == list(range(C.COUNT))
    for r in rows:
        code = int(r[0])
        assert r[1] == "`%s`" % C.NAMES[code], r
        assert r[2] == C.PRIORITY_NAMES[C.PRIORITY[code]].upper(), r
        latching = bool((1 << code) & C.LATCHING)
        assert r[3].startswith("yes") == latching or r[3].startswith("fallback: yes"), r
        if latching:
            service = bool((1 << code) & C.SERVICE_ACK)
            assert ("**service**" in r[3]) == service, r


def test_factory_bounds_in_the_doc_are_the_schema_ranges():
    text = DOC.read_text()
    sec = text[text.index("### Factory clinical bounds") :]
    sec = sec[: sec.index("\n## ")]
    for name, lo, hi in (
        ("limits.floor_c", -60, -30),
        ("limits.max_freeze_s", 10, 60),
        ("limits.cold_dose_cs", 100, 6000),
        ("limits.disagree_c", 2, 10),
    ):
        f = schema.field(name)
        assert (f[3], f[4]) == (lo, hi), name
        assert name in schema.CLINICAL_BOUNDS
        shown = re.search(re.escape("`%s`" % name) + r"\s+\(([−\d.]+)…([−\d.]+)", sec)
        assert shown, name
        got = tuple(float(x.replace("−", "-")) for x in shown.groups())
        assert got == (lo, hi), (name, got)
    for name in ("stuck_rate_c_s", "stuck_line_c", "wdt_ms", "max_cycles", "approach_max_s"):
        assert "limits." + name in schema.CLINICAL_BOUNDS
        assert name in sec, name
