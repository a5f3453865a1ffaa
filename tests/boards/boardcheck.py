"""Fidelity checks of the firmware against the real boards' ports.

Shared by tests/boards/ and bench/bench_boards.py. Everything here runs real
tools: ``mpy-cross`` for each target architecture, ``mypy`` against the
official MicroPython stub packages of each port, and the ``micropython`` unix
port (under a constrained heap) for the simulated treatment.

Stub packages install loose ``machine.pyi`` etc. at the top of
site-packages, so two ports cannot share one environment. Each pinned stub set is therefore installed with pip into its own
folder under ``build/mpy-stubs/`` the first time a check needs it (pip's
cache makes later installs offline-fast); the pins live in ``STUB_SETS``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
BOARDS = ROOT / "boards"
BUILD = ROOT / "build"
STUB_ROOT = BUILD / "mpy-stubs"
TESTS = ROOT / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import mpyrun  # noqa: E402

from host_tools.build import ARCHS  # noqa: E402

# The MicroPython stdlib stubs that replace CPython's typeshed for every port.
STDLIB_STUBS = "micropython-stdlib-stubs==1.29.0.post2"

# Official per-port stub packages, pinned (PyPI, stubs for MicroPython 1.29.0).
STUB_SETS = {
    "esp32s3": "micropython-esp32-esp32-generic-s3-stubs==1.29.0.post1",
    "rp2040": "micropython-rp2-rpi-pico-stubs==1.29.0.post1",
    "rp2350": "micropython-rp2-rpi-pico2-stubs==1.29.0.post1",
    "stm32f4": "micropython-stm32-pybv11-stubs==1.29.0.post1",
}

# mypy error codes that are artefacts of checking *unannotated* MicroPython
# code (inference from a first ``None`` assignment, missing annotations on
# empty containers), not wrong calls into the port. Everything else counts:
# attr-defined (a method the port lacks), call-arg / arg-type (a wrong
# signature), import-not-found (a module the port lacks), name-defined, ...
MYPY_IGNORED_CODES = ("var-annotated", "annotation-unchecked", "assignment", "has-type")

# .mpy architecture index in the header's third byte (bits 2..5): the same
# table the deploy tool checks a board's ABI with (py/persistentcode.h).
MPY_ARCHS = tuple(ARCHS)
REQUIRED_ARCHS = ("xtensawin", "armv6m", "armv7emsp")


def firmware_files() -> list[Path]:
    """Every firmware module (``firmware/**/*.py``), sorted."""
    return sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)


def rel(path: Path) -> str:
    """Path relative to the repository (absolute when outside it)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def board_dirs() -> list[Path]:
    """Every ``boards/<name>/`` folder holding a ``board.json``."""
    return sorted(p.parent for p in BOARDS.glob("*/board.json"))


def load_board(name: str) -> dict:
    with open(BOARDS / name / "board.json") as f:
        return json.load(f)


# --- mpy-cross ---------------------------------------------------------------


def mpy_cross_exe() -> str:
    exe = Path(sys.executable).parent / "mpy-cross"
    return str(exe) if exe.exists() else "mpy-cross"


def mpy_cross(src: Path, out: Path, march: str, extra=()) -> subprocess.CompletedProcess:
    """Compile ``src`` for ``march`` into ``out`` (embedded name relative to firmware/)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        embedded = str(Path(src).resolve().relative_to(FIRMWARE))
    except ValueError:
        embedded = Path(src).name
    cmd = [mpy_cross_exe(), "-march=" + march, "-s", embedded, "-o", str(out), *extra, str(src)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def mpy_header(path: Path) -> dict:
    """Decode the 4-byte .mpy header: version, sub-version, arch, small-int bits."""
    head = Path(path).read_bytes()[:4]
    if len(head) < 4 or head[0] != ord("M"):
        raise ValueError("%s: not an .mpy file (header %r)" % (path, head))
    return {
        "version": head[1],
        "sub_version": head[2] & 3,
        "arch": MPY_ARCHS[head[2] >> 2] if (head[2] >> 2) < len(MPY_ARCHS) else head[2] >> 2,
        "small_int_bits": head[3],
    }


# --- stubs and mypy ----------------------------------------------------------


def _pkg_dir_name(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", spec)


def ensure_stubs(board: str) -> Path:
    """Install the pinned stub set for ``board`` (once) and return its folder.

    Layout (what mypy needs): ``<dir>/site`` is the pip
    target holding ``stdlib/`` (used as ``--custom-typeshed-dir``) and
    ``<dir>/port`` holds only the port's top-level ``*.pyi`` (on MYPYPATH).
    """
    spec = STUB_SETS[board]
    target = STUB_ROOT / _pkg_dir_name(spec + "+" + STDLIB_STUBS)
    if (target / ".complete").exists():
        return target
    # Build next to the target and rename: a concurrent run never sees half.
    STUB_ROOT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=STUB_ROOT))
    site = tmp / "site"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--target",
        str(site),
        spec,
        STDLIB_STUBS,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(
            "could not install the pinned stubs %s (needs PyPI or pip's cache):\n%s"
            % (spec, proc.stderr[-2000:])
        )
    port = tmp / "port"
    port.mkdir()
    for pyi in site.glob("*.pyi"):
        (port / pyi.name).write_bytes(pyi.read_bytes())
    # Port packages (folders with __init__.pyi, e.g. asyncio, requests).
    for pkg in site.iterdir():
        if pkg.is_dir() and (pkg / "__init__.pyi").exists():
            (port / pkg.name).symlink_to(Path("..") / "site" / pkg.name, target_is_directory=True)
    (tmp / ".complete").write_text(spec + "\n" + STDLIB_STUBS + "\n")
    try:
        tmp.rename(target)
    except OSError:  # another run finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


_CONTAINER_CALL = re.compile(
    r'to "(append|extend|insert|add|update|setdefault)" of "(list|dict|set)"'
)
_UNION_FORMAT = re.compile(r'expression has type "([^"]*\|[^"]*|object)"')


_NONE_ARTEFACT = re.compile(
    r'^Item "None" of "[^"]*" has no attribute'  # union-attr on a None-initialised attribute
    r'|"None" object is not iterable'
    r'|Value of type "[^"]*\| None" is not indexable'
    r'|Unsupported operand types for \S+ \("[^"]*" and "None"\)'
    r'|Unsupported operand types for \S+ \("None" and "[^"]*"\)'
    r'|Unsupported left operand type for \S+ \("None"\)'
    r'|expression has type "None"'
)


def is_inference_artefact(path: Path, line: int, msg: str) -> bool:
    """True for mypy errors that come from checking unannotated code, not from the port.

    - ``def const(x)`` and similar CPython fallbacks defined in an
      ``except ImportError`` branch ("conditional function variants");
    - imports inside an ``except ImportError`` handler (host-side
      fallbacks; the primary import in the ``try`` body is still checked),
      and *project* modules imported in such a ``try`` (optional firmware
      parts the code already handles being absent);
    - list/dict/set element types mypy guessed from the first use of an
      unannotated container (``args = []`` then mixed ``append``; mixed
      value types in a literal; ``[None] * 3`` filled in later), and
      %-formatting of a value typed as a union because it came out of one;
    - values mypy types as ``None`` because the attribute or list slot was
      initialised to None and set later (``self._f = None`` in __init__):
      in unannotated code mypy cannot see the later type;
    - the stubs declaring ``vfs.VfsLfs2``/``VfsFat`` abstract (a stub
      defect mypy also reports inside the stub itself).
    A wrong ``machine`` call never matches these (see the planted-error test).
    """
    if "All conditional function variants must have identical signatures" in msg:
        return True
    if _CONTAINER_CALL.search(msg) and "[arg-type]" in msg:
        return True
    if msg.endswith(("[dict-item]", "[list-item]")):
        return True  # a dict/list literal whose value types differ from the first one's
    if re.match(r'No overload variant of "__setitem__" of "(list|dict)"', msg):
        return True  # [None] * 3 filled in later
    if "[str-format]" in msg and _UNION_FORMAT.search(msg):
        return True
    if _NONE_ARTEFACT.search(msg):
        return True
    if msg.startswith('Cannot instantiate abstract class "Vfs') and "[abstract]" in msg:
        return True
    if msg.endswith(("[import-not-found]", "[no-redef]", "[import-untyped]")) or msg.startswith(
        "Cannot assign to a type"
    ):
        if _in_import_error_handler(path, line):
            return True  # the fallback branch (`Calibration = None`, `from zlib import ...`)
    if re.match(
        r'(Module "cryo[.\w]*" has no attribute|Cannot find implementation or library '
        r'stub for module named "cryo[.\w]*")',
        msg,
    ):
        return _in_import_error_handler(path, line, try_body=True)
    return False


def _in_import_error_handler(path: Path, line: int, try_body: bool = False) -> bool:
    """Is ``line`` inside an ``except ImportError`` handler (or, with
    ``try_body``, inside the ``try`` block such a handler guards)?"""
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        for handler in node.handlers:
            if handler.type is None:
                continue
            names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            if not any(isinstance(n, ast.Name) and n.id == "ImportError" for n in names):
                continue
            if try_body:
                first, last = node.body[0].lineno, node.body[-1].end_lineno or node.lineno
            else:
                first, last = handler.lineno, handler.end_lineno or handler.lineno
            if first <= line <= last:
                return True
    return False


_MYPY_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<kind>error|note): (?P<msg>.*)$")


def run_mypy(board: str, files=None) -> tuple[list[str], str]:
    """Type-check firmware against ``board``'s stubs.

    Returns (errors in project files, full mypy output). Errors inside the
    stub packages themselves are not the project's and are dropped.
    """
    stubs = ensure_stubs(board)
    paths = [str(f) for f in (files or firmware_files())]
    # The incremental cache is keyed by module name: only the firmware run
    # (stable paths) uses it; ad-hoc files (tests' planted modules) do not.
    cache = str(BUILD / "mypy-cache" / board) if files is None else os.devnull
    cmd = [
        sys.executable,
        "-m",
        "mypy",
        "--custom-typeshed-dir",
        str(stubs / "site"),
        "--explicit-package-bases",
        "--check-untyped-defs",
        "--no-error-summary",
        "--show-error-codes",
        "--no-color-output",
        "--hide-error-context",
        "--follow-imports",
        "silent",
        "--python-version",
        "3.11",
        "--cache-dir",
        cache,
    ]
    for code in MYPY_IGNORED_CODES:
        cmd += ["--disable-error-code", code]
    # build/mpylib: the micropython-lib modules the manifests freeze (require()),
    # checked as the source they are, since the stdlib stubs have none of them
    mpylib = str(FIRMWARE.parent / "build" / "mpylib")
    env = dict(os.environ, MYPYPATH=os.pathsep.join([str(stubs / "port"), str(FIRMWARE), mpylib]))
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        cmd + paths, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT
    )
    errors = []
    for line in proc.stdout.splitlines():
        m = _MYPY_LINE.match(line)
        if not m or m.group("kind") != "error":
            continue
        path = Path(m.group("file"))
        if not path.is_absolute():
            path = ROOT / path
        path = path.resolve()
        if str(path).startswith(str(STUB_ROOT.resolve())):
            continue  # inside the stub packages: not the project's errors
        if is_inference_artefact(path, int(m.group("line")), m.group("msg")):
            continue
        errors.append("%s:%s: %s" % (rel(path), m.group("line"), m.group("msg")))
    if proc.returncode not in (0, 1):
        raise RuntimeError("mypy crashed (%d):\n%s%s" % (proc.returncode, proc.stdout, proc.stderr))
    return errors, proc.stdout + proc.stderr


# --- static scans ------------------------------------------------------------

# Modules the unix port lacks but CPython code reaches for (checked against
# the unix port by tests/boards/test_boards_micropython_features.py).
CPYTHON_ONLY_MODULES = (
    "dataclasses",
    "enum",
    "typing",
    "typing_extensions",
    "abc",
    "functools",
    "__future__",
)

# (callable name, keyword) pairs MicroPython rejects with "function doesn't
# take keyword arguments" (each verified on the unix port by the tests).
CPYTHON_ONLY_KEYWORDS = (
    ("zip", "strict"),
    ("sum", "start"),
    ("from_bytes", "signed"),
)


def _call_name(func) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def scan_cpython_only(path: Path, missing_methods=frozenset()) -> list[str]:
    """CPython-only constructs in one firmware file, as 'file:line: what' strings.

    Syntax MicroPython cannot compile (match, positional-only ``/``,
    ``{**d}``) is caught by the mpy-cross check; this scan finds what
    compiles but fails or misbehaves at run time, plus the project rules
    (conventions.md: no typing/dataclasses/enum, no f-string ``=``).
    """
    src = Path(path).read_text()
    tree = ast.parse(src, filename=str(path))
    where = rel(path)
    found = []

    def add(node, what):
        found.append("%s:%d: %s" % (where, node.lineno, what))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in CPYTHON_ONLY_MODULES:
                    add(node, "imports %r (not in MicroPython)" % alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            if top in CPYTHON_ONLY_MODULES:
                add(node, "imports from %r (not in MicroPython)" % node.module)
        elif isinstance(node, ast.Call):
            name = _call_name(node.func)
            for kw in node.keywords:
                if (name, kw.arg) in CPYTHON_ONLY_KEYWORDS:
                    add(
                        node,
                        "%s(%s=...) (MicroPython takes no keyword arguments here)" % (name, kw.arg),
                    )
            if isinstance(node.func, ast.Attribute) and node.func.attr in missing_methods:
                add(node, ".%s() does not exist on MicroPython's builtin types" % node.func.attr)
        elif isinstance(node, ast.Raise) and node.cause is not None:
            if not (isinstance(node.cause, ast.Constant) and node.cause.value is None):
                add(node, "raise ... from ... (MicroPython drops the chain, warns at compile)")
        elif isinstance(node, ast.ClassDef):
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                if _call_name(target) == "dataclass":
                    add(node, "@dataclass (no dataclasses in MicroPython)")
    # f-string self-documenting '=' ({x=}) leaves its text in a Constant
    # ending in '=' right before the FormattedValue.
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            i = 0
            while i + 1 < len(parts):
                a, b = parts[i], parts[i + 1]
                if (
                    isinstance(a, ast.Constant)
                    and isinstance(a.value, str)
                    and isinstance(b, ast.FormattedValue)
                    and a.value.rstrip().endswith("=")
                    and _fstring_has_self_doc(src, node)
                ):
                    add(node, "f-string '=' specifier (project rule: not on every port)")
                    break
                i += 1
    return found


def _fstring_has_self_doc(src: str, node) -> bool:
    seg = ast.get_source_segment(src, node) or ""
    return re.search(r"\{[^{}:!]*?[^=!<>]=\s*(![rsa])?(:[^{}]*)?\}", seg) is not None


def defined_names(paths) -> set[str]:
    """Function, method and attribute names the project defines itself."""
    names = set()
    for path in paths:
        tree = ast.parse(Path(path).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


_DIR_PROBE = """
import json
types = (str, bytes, bytearray, int, float, list, dict, tuple, set, memoryview, object)
names = set()
for t in types:
    for n in dir(t):
        names.add(n)
for mod in ("asyncio", "io", "collections", "struct", "array", "json", "os", "sys", "time",
            "gc", "micropython", "math", "select", "errno", "binascii", "hashlib", "random",
            "re", "machine", "vfs", "deflate", "heapq", "platform"):
    try:
        m = __import__(mod)
    except ImportError:
        continue
    for n in dir(m):
        names.add(n)
        obj = getattr(m, n)
        if isinstance(obj, type):
            for a in dir(obj):
                names.add(a)
print(json.dumps(sorted(names)))
"""


def micropython_missing_methods() -> frozenset[str]:
    """Methods CPython's builtin types have and MicroPython's unix port has nowhere.

    Measured, not listed: ``dir()`` of the builtin types and common modules
    on both interpreters.
    """
    proc = mpyrun.run_raw(_DIR_PROBE)
    if proc.returncode != 0:
        raise RuntimeError("dir probe failed under MicroPython:\n" + proc.stderr)
    mp = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    cp = set()
    for t in (str, bytes, bytearray, int, float, list, dict, tuple, set, memoryview):
        cp.update(n for n in dir(t) if not n.startswith("_"))
    return frozenset(cp - mp)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) for every import in a file, including nested ones."""
    tree = ast.parse(Path(path).read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name.split(".")[0]) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
        elif (
            isinstance(node, ast.Call)
            and _call_name(node.func) == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            out.append((node.lineno, str(node.args[0].value).split(".")[0]))
    return out


# --- heap budget -------------------------------------------------------------

TREATMENT = Path(__file__).resolve().parent / "mpy_treatment.py"
# The calibrated keloid with a ~7x spray: a whole default treatment (2
# cycles) takes ~12-14 virtual minutes (the calibrated 41 W/m2K needs over 10
# minutes per freeze). Which spray reaches DONE depends on today's tuning
# (10x ended in `disagree`, 5x in `no_cool`), so the heap check accepts any
# end the firmware itself reaches; bench_boards.py prints which it was.
TREATMENT_PLANT = ("default", {"h_spray_w_m2k": 300.0})
END_PHASES = ("DONE", "FAULT", "ABORTED")
# Smallest -X heapsize from which the fast-mode runner completes the default
# two-cycle treatment at every size up to the budget (bench_boards.py scans
# it again on every `make bench`), and the budget the test holds the
# firmware to: that minimum plus ~20 % margin. Completion is not monotonic
# in the heap size below it: booting compiles the .py sources, and whether
# the compiler's ~2 kB chunks fit depends on fragmentation (2026-11-25:
# 372 KB completed, 376 and 380 KB did not, all from 384 KB up did; after
# a few lines changed in two modules the floor was 392 KB; 2026-12-04,
# with the persistent safety state, the device event log and the
# interlock's detectors: 432 KB completed, 440 KB did not, all from 448 KB
# up did; 2026-12-05, with the events waiting in RAM for the idle point, the
# link's read sessions and the firmware split into a few more modules: 500
# KB did not, all from 504 KB up did; the same growth frozen on the
# emulated Cortex-M3 is 3 KB of live heap; later that day, with the
# files named from the flash root, the reset request and micropython-lib's
# hmac imported beside the firmware: 516 KB did not, 520 KB did). The unix port is 64-bit (8-byte
# pointers), so these are upper bounds for a 32-bit board running the same
# .py sources; the frozen figure on the emulated Cortex-M3 is the real one.
HEAP_MIN_MEASURED = 520 * 1024
HEAP_BUDGET = 600 * 1024


def compile_firmware(dest: Path, march: str | None = None, opt: int | None = None) -> Path:
    """Bytecode .mpy tree of firmware/ in ``dest`` (what gets copied to a board).

    ``opt`` as for freezing (``-O1`` strips asserts and ``__debug__``,
    ``-O3`` also line numbers). boot.py/main.py stay .py (a board runs them
    as scripts).
    """
    for src in firmware_files():
        if src.parent == FIRMWARE:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest / src.name)
            continue
        out = dest / src.relative_to(FIRMWARE).with_suffix(".mpy")
        extra = ["-O%d" % opt] if opt else []
        proc = mpy_cross(src, out, march or "x64", extra)
        if proc.returncode != 0:
            raise RuntimeError("mpy-cross failed on %s:\n%s" % (rel(src), proc.stderr))
    return dest


def run_treatment(
    heapsize: int | None,
    board: str | None = None,
    cycles: int = 2,
    mpy_dir=None,
    max_s: int = 1800,
    timeout: float = 300,
):
    """One full simulated treatment; returns (ok, result dict or error text).

    ``ok`` is True when the process exited cleanly and the treatment reached
    DONE. ``heapsize`` in bytes (None: the unix port's default 2 MB).
    """

    plant, overrides = TREATMENT_PLANT
    board_json = "-" if board in (None, "sim") else str(BOARDS / board / "board.json")
    with tempfile.TemporaryDirectory(prefix="cryo_heap_") as logdir:
        cmd = [mpyrun.micropython_exe()]
        if heapsize:
            cmd += ["-X", "heapsize=%d" % heapsize]
        cmd += [
            str(TREATMENT),
            board_json,
            plant,
            str(cycles),
            str(max_s),
            logdir,
            json.dumps(overrides),
        ]
        extra = [str(mpy_dir)] if mpy_dir else []
        env = dict(os.environ, MICROPYPATH=mpyrun.micropypath(extra))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        return False, (proc.stderr or proc.stdout)[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return res["state"] in END_PHASES, res


def steady_heap(hi: int, step: int = 4096, runner=None, **kw) -> tuple[int, dict, int]:
    """Scan down from ``hi`` (which must pass) in ``step`` bytes until the
    first size that fails: the treatment completes at every size from the
    returned one up to ``hi``. A bisection would assume completion is
    monotonic in the heap size, which it is not (see HEAP_MIN_MEASURED).
    ``runner`` is :func:`run_fastrun` (default) or :func:`run_treatment`.
    Returns (smallest passing size, its result, first failing size)."""
    runner = runner or run_fastrun
    ok, res = runner(hi, **kw)
    if not ok:
        raise RuntimeError("the treatment fails even with a %d byte heap:\n%s" % (hi, res))
    best = res
    size = hi
    while size - step > 0:
        ok, r = runner(size - step, **kw)
        if not ok:
            return size, best, size - step
        size -= step
        best = r
    return size, best, 0


# --- the virtual board's machine API vs the ports' ---------------------------

# Module-level names the virtual board adds for itself; the firmware reaches
# them only through getattr(machine, name, None) (checked by the test).
SIM_ONLY = ("board_definition", "flash_device")


def _api(tree) -> dict:
    """{class name: set of public attribute names, '': module-level names}."""
    api = {"": set()}
    classes = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(item.name)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for t in item.targets if isinstance(t, ast.Name))
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
            bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
            classes[node.name] = (names, bases)
            api[""].add(node.name)
        elif isinstance(node, ast.FunctionDef):
            api[""].add(node.name)
        elif isinstance(node, ast.Assign):
            api[""].update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            api[""].add(node.target.id)
    for name, (names, bases) in classes.items():
        full = set(names)
        todo = list(bases)
        while todo:
            b = todo.pop()
            if b in classes:
                full |= classes[b][0]
                todo.extend(classes[b][1])
        api[name] = {n for n in full if not n.startswith("_") or n == "__call__"}
    api[""] = {n for n in api[""] if not n.startswith("_")}
    return api


def _sim_machine_tree() -> ast.Module:
    """boards/sim/machine.py with the classes and functions it imports from
    its sibling modules (machine_pin.py, ...): the ``machine`` the firmware sees."""
    sim = BOARDS / "sim"
    tree = ast.parse((sim / "machine.py").read_text())
    body = list(tree.body)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (sim / ("%s.py" % node.module)).exists():
            wanted = {a.name for a in node.names}
            other = ast.parse((sim / ("%s.py" % node.module)).read_text()).body
            body += [n for n in other if getattr(n, "name", None) in wanted]
    tree.body = body
    return tree


def sim_machine_extras(board: str) -> list[str]:
    """Public names of the virtual board's ``machine`` missing from ``board``'s machine stubs."""
    sim = _api(_sim_machine_tree())
    port = _api(ast.parse((ensure_stubs(board) / "port" / "machine.pyi").read_text()))
    extra = []
    for cls, names in sorted(sim.items()):
        if cls == "":
            extra += ["machine.%s" % n for n in sorted(names - port[""]) if n not in SIM_ONLY]
        elif cls in port:
            extra += ["machine.%s.%s" % (cls, n) for n in sorted(names - port[cls])]
    return extra


def calls_to(paths, names) -> list[str]:
    """'file:line: .name()' for every attribute call of one of ``names``."""
    hits = []
    for path in paths:
        tree = ast.parse(Path(path).read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in names
            ):
                hits.append("%s:%d: .%s()" % (rel(path), node.lineno, node.func.attr))
    return hits


FASTRUN = BOARDS / "sim" / "fastrun.py"


def run_fastrun(
    heapsize: int | None,
    board: str | None = None,
    duration_s: int = 900,
    timeout: float = 300,
    rom=None,
    phases=END_PHASES,
):
    """The default treatment through the fast-mode runner (``cryo sim run``):
    scenario ``treatment``, the 10x-spray plant, littlefs flash in a file
    image, start one minute before the 2**30 tick wrap.

    ``rom``: the firmware tree to boot from (default firmware/; e.g. an
    .mpy tree from :func:`compile_firmware`).
    Returns (ok, summary dict or error text); ``ok`` = no escaped exception
    (a MemoryError included), no reset, the valve was driven, and the
    protocol ends in one of ``phases`` (None: any).
    """

    plant, overrides = TREATMENT_PLANT
    with tempfile.TemporaryDirectory(prefix="cryo_fastrun_") as d:
        params = json.loads((BOARDS / "sim" / "plants" / (plant + ".json")).read_text())
        params.update(overrides)
        (Path(d) / "plant.json").write_text(json.dumps(params))
        opts = {
            "plant": str(Path(d) / "plant.json"),
            "scenario": "treatment",
            "seed": 1,
            "flash": str(Path(d) / "flash.img"),
            "duration_s": duration_s,
            "rom": str(rom or FIRMWARE),
            "sim": str(BOARDS / "sim"),
            "start_ms": (1 << 30) - 60000,
        }
        if board not in (None, "sim"):
            opts["board"] = str(BOARDS / board / "board.json")
        (Path(d) / "opts.json").write_text(json.dumps(opts))
        cmd = [mpyrun.micropython_exe()]
        if heapsize:
            cmd += ["-X", "heapsize=%d" % heapsize]
        cmd += [str(FASTRUN), str(Path(d) / "opts.json")]
        env = dict(os.environ, MICROPYPATH=mpyrun.micropypath())
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@SIM@@")]
    if proc.returncode != 0 or not lines:
        return False, (proc.stderr or proc.stdout)[-3000:]
    summary = json.loads(lines[-1][len("@@SIM@@") :])
    status = summary.get("status") or {}
    ok = (
        not summary["errors"]
        and not summary["resets"]
        and summary["valve_cycles"] > 0
        and (phases is None or status.get("phase") in phases)
    )
    return ok, summary


MACHINE_CLASSES = ("Pin", "Signal", "SPI", "SoftSPI", "PWM", "ADC", "RTC", "WDT", "I2C", "UART")


def positional_only(board: str) -> dict[str, set[str]]:
    """{method: parameters that no machine class of ``board``'s port accepts
    by keyword, though some class takes them by position} (the stubs' ``/``).

    Per method *name*, because the firmware's pins and buses are injected
    and their class is unknown where they are called.
    """
    tree = ast.parse((ensure_stubs(board) / "port" / "machine.pyi").read_text())
    posonly: dict[str, set[str]] = {}
    by_kw: dict[str, set[str]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.ClassDef) and node.name in MACHINE_CLASSES):
            continue
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                a = item.args
                posonly.setdefault(item.name, set()).update(x.arg for x in a.posonlyargs)
                by_kw.setdefault(item.name, set()).update(x.arg for x in a.args + a.kwonlyargs)
    return {m: posonly[m] - by_kw.get(m, set()) - {"self"} for m in posonly}


def keyword_calls(paths, methods: dict[str, set[str]]) -> list[str]:
    """Calls ``x.m(..., k=...)`` where port method ``m`` takes ``k`` only by position."""
    hits = []
    for path in paths:
        tree = ast.parse(Path(path).read_text())
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            bad = methods.get(node.func.attr, set())
            for kw in node.keywords:
                if kw.arg in bad:
                    hits.append(
                        "%s:%d: .%s(%s=...)" % (rel(path), node.lineno, node.func.attr, kw.arg)
                    )
    return hits
