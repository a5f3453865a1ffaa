"""Docs that stay true: every source file a document names exists.

A path in backticks in README.md or docs/*.md (``cryo/core/tick.py``,
``core/inputs.py``, ``host_tools/logs.py``, ``boards/sim/vboard.py``) must
name a file of the repository — resolved from the repository root, from
``firmware/``, ``firmware/cryo/`` or ``boards/sim/`` (how the docs abbreviate firmware
paths). A module that moves or is deleted then fails here until the text
that describes it is corrected."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PATH = re.compile(r"`([A-Za-z0-9_./-]+\.(?:py|json|md))`")
_BASES = (ROOT, ROOT / "firmware", ROOT / "firmware" / "cryo", ROOT / "boards" / "sim")
_EXTERNAL = ("klippy/",)  # other projects' files the docs cite (Klipper)


def _docs():
    return [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def _missing(doc):
    out = []
    for m in _PATH.finditer(doc.read_text()):
        rel = m.group(1)
        if "*" in rel or rel.startswith(("/", "~")) or "<" in rel:
            continue
        if "/" not in rel or "NNN" in rel:
            continue  # a bare file name is a name, not a path; NNN a pattern
        if rel.startswith(_EXTERNAL):
            continue
        if not any((b / rel).exists() for b in _BASES):
            out.append(rel)
    return out


def test_every_path_in_the_docs_exists():
    bad = {d.name: _missing(d) for d in _docs()}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, bad


def test_the_check_sees_a_wrong_path(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("see `cryo/core/no_such_part.py` and `core/tick.py`")
    assert _missing(doc) == ["cryo/core/no_such_part.py"]
