"""The firmware stays portable: only the board layer touches ``machine``, and
nothing CPython-only slips in.

The forbidden lists are not taken on trust: each entry is re-checked against
the real MicroPython unix port here, and the missing builtin methods are
measured by comparing ``dir()`` on both interpreters.
"""

import textwrap

import boardcheck
import pytest

BOARD_LAYER = boardcheck.FIRMWARE / "cryo" / "board"


def _outside_board_layer():
    return [p for p in boardcheck.firmware_files() if BOARD_LAYER not in p.parents]


def machine_importers(paths):
    return [
        "%s:%d" % (boardcheck.rel(p), line)
        for p in paths
        for line, mod in boardcheck.imports_of(p)
        if mod in ("machine", "umachine", "pyb", "esp32", "rp2")
    ]


def test_only_the_board_layer_imports_machine():
    files = _outside_board_layer()
    assert files, "no firmware found outside cryo/board/"
    offenders = machine_importers(files)
    assert offenders == [], (
        "only firmware/cryo/board/ may import machine (or pyb/esp32/rp2); found in: "
        + ", ".join(offenders)
    )


def test_machine_import_check_catches_nested_and_dynamic_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        textwrap.dedent(
            """
            def later():
                from machine import Pin
                return Pin
            pyb = __import__("pyb")
            import umachine as m
            """
        )
    )
    good = tmp_path / "good.py"
    good.write_text("import time\nfrom cryo.board import Board\n")
    bad_hits = [h.rsplit(":", 1)[1] for h in machine_importers_tmp([bad])]
    assert bad_hits == ["3", "5", "6"]
    assert machine_importers_tmp([good]) == []


def machine_importers_tmp(paths):
    return [
        "%s:%d" % (p.name, line)
        for p in paths
        for line, mod in sorted(boardcheck.imports_of(p))
        if mod in ("machine", "umachine", "pyb", "esp32", "rp2")
    ]


@pytest.fixture(scope="module")
def missing_methods(mpy):
    measured = boardcheck.micropython_missing_methods()
    own = boardcheck.defined_names(
        boardcheck.firmware_files() + sorted((boardcheck.BOARDS / "sim").rglob("*.py"))
    )
    return measured - own


def test_firmware_has_no_cpython_only_features(missing_methods):
    found = []
    for path in boardcheck.firmware_files():
        found += boardcheck.scan_cpython_only(path, missing_methods)
    assert found == [], "CPython-only constructs in firmware:\n" + "\n".join(found)


PLANTED = """\
import dataclasses
from typing import Optional
from enum import IntEnum
import functools

@dataclasses.dataclass
class Frame:
    code: int

def f(a, b, n, data):
    x = 3
    s = f"{x=}"
    t = f"a={x}"
    for p, q in zip(a, b, strict=True):
        pass
    v = int.from_bytes(data, "big", signed=True)
    w = "abc".removeprefix("a")
    if (m := n) > 2:
        pass
    try:
        pass
    except KeyError as e:
        raise ValueError("bad") from e
    return sum(a, start=0)
"""


def test_scanner_flags_each_planted_construct(tmp_path, missing_methods):
    src = tmp_path / "planted.py"
    src.write_text(PLANTED)
    hits = boardcheck.scan_cpython_only(src, missing_methods)
    text = "\n".join(hits)
    for needle in (
        ":1: imports 'dataclasses'",
        ":2: imports from 'typing'",
        ":3: imports from 'enum'",
        ":4: imports 'functools'",
        ":7: @dataclass",
        ":12: f-string '='",
        ":14: zip(strict=...)",
        ":16: from_bytes(signed=...)",
        ":17: .removeprefix()",
        ":23: raise ... from",
        ":24: sum(start=...)",
    ):
        assert needle in text, "scanner missed %r in:\n%s" % (needle, text)
    # f"a={x}" (line 13) and the walrus (line 18) are fine on MicroPython.
    assert ":13:" not in text and ":18:" not in text
    assert len(hits) == 11


def test_forbidden_modules_really_are_missing_on_micropython(mpy):
    code = "out = {}\n"
    for mod in boardcheck.CPYTHON_ONLY_MODULES:
        code += "try:\n    __import__(%r)\n    out[%r] = 'present'\nexcept ImportError:\n" % (
            mod,
            mod,
        )
        code += "    out[%r] = 'missing'\n" % mod
    code += "result(out)\n"
    got = mpy.run(code)
    assert got == {m: "missing" for m in boardcheck.CPYTHON_ONLY_MODULES}


KEYWORD_PROBES = {
    ("zip", "strict"): "list(zip([1], [2], strict=True))",
    ("sum", "start"): "sum([1, 2], start=1)",
    ("from_bytes", "signed"): "int.from_bytes(b'\\x01', 'big', signed=True)",
}


def test_forbidden_keywords_really_fail_on_micropython(mpy):
    assert set(KEYWORD_PROBES) == set(boardcheck.CPYTHON_ONLY_KEYWORDS)
    code = "out = []\n"
    for expr in KEYWORD_PROBES.values():
        code += (
            "try:\n    %s\n    out.append('ok')\nexcept TypeError:\n    out.append('TypeError')\n"
            % expr
        )
    code += "result(out)\n"
    assert mpy.run(code) == ["TypeError"] * len(KEYWORD_PROBES)


def test_allowed_constructs_really_work_on_micropython(mpy):
    """Walrus, keyword-only arguments and annotations are fine on MicroPython."""
    got = mpy.run(
        """
def kw(a, *, b=2):
    return a + b
def ann(x: int) -> int:
    return x
vals = [y for x in (1, 2, 3) if (y := x * 2) > 2]
result([vals, kw(1, b=3), ann(4)])
"""
    )
    assert got == [[4, 6], 4, 4]


def test_measured_missing_methods_are_real(missing_methods, mpy):
    for name in ("removeprefix", "bit_length", "format_map", "ljust", "isascii"):
        assert name in missing_methods
    # and they really fail on MicroPython
    got = mpy.run(
        """
out = []
for expr in ("'ab'.removeprefix('a')", "(5).bit_length()", "'x'.ljust(3)"):
    try:
        eval(expr)
        out.append('ok')
    except AttributeError:
        out.append('missing')
result(out)
"""
    )
    assert got == ["missing"] * 3
    assert "split" not in missing_methods and "readinto" not in missing_methods
