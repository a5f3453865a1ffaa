"""docs/hazards.md and the test suite agree: every row of the hazard table
names at least one test, every named test exists (pytest's own collection,
parametrized ids included; ``[pattern]`` may use ``*``), and every
fault-injection mode of the matrix has a row."""

import fnmatch
import re
import subprocess
import sys
from pathlib import Path

import safety_matrix as M

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "hazards.md"
REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(\[[^`]*\])?`")


def _rows():
    rows = []
    for line in DOC.read_text().splitlines():
        if re.match(r"\|\s*H\d+\s*\|", line):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.append((cells[0], cells))
    return rows


def _collect(files):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    ids = [ln.strip() for ln in proc.stdout.splitlines() if "::" in ln]
    assert ids, proc.stdout[-3000:] + proc.stderr[-3000:]
    return ids


def test_every_row_names_an_existing_test():
    rows = _rows()
    assert len(rows) >= 40, "hazard table not found or too short in %s" % DOC
    headers = [ln for ln in DOC.read_text().splitlines() if ln.startswith("| ID |")]
    assert headers and headers[0].rstrip().endswith("test(s) |"), headers
    refs = {}
    for rid, cells in rows:
        assert len(cells) == 7, "%s: %d columns, want 7" % (rid, len(cells))
        found = REF.findall(cells[6])
        assert found, "%s names no test: %r" % (rid, cells[6])
        refs[rid] = found
    files = sorted({f for found in refs.values() for f, _n, _p in found})
    for f in files:
        assert (ROOT / f).is_file(), "named test file %s does not exist" % f
    ids = _collect(files)
    missing = []
    for rid, found in refs.items():
        for f, name, param in found:
            base = "%s::%s" % (f, name)
            if param:
                ok = any(fnmatch.fnmatchcase(i, base + param.replace("[", "[[]", 1)) for i in ids)
            else:
                ok = any(i == base or i.startswith(base + "[") for i in ids)
            if not ok:
                missing.append("%s: %s%s" % (rid, base, param))
    assert not missing, "tests named in docs/hazards.md that pytest does not collect: %s" % missing


def test_every_matrix_mode_has_a_row():
    text = DOC.read_text()
    named = set(re.findall(r"test_single_fault\[(\w+)-\*\]", text))
    assert set(M.MODES) - named == set(), "modes without a hazard row: %s" % sorted(
        set(M.MODES) - named
    )
    assert named - set(M.MODES) == set(), "rows naming unknown modes: %s" % sorted(
        named - set(M.MODES)
    )


def test_row_ids_are_unique_and_in_order():
    ids = [rid for rid, _c in _rows()]
    assert ids == ["H%02d" % (i + 1) for i in range(len(ids))], ids
