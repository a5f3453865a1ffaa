"""Compiling the app for a board: board facts, mpy-cross, the boot layer, ABI checks.

``build(board)`` compiles ``firmware/`` (and ``boards/<name>/``) with
mpy-cross for the board's architecture, cached by source hash, so an
unchanged rebuild is free; ``check_abi`` refuses a board whose MicroPython
cannot load the result. ``cryo flash`` deploys what ``build`` returns.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from host_tools import (
    BOARDS_DIR,
    FIRMWARE_DIR,
    ROOT,
    fwimport,  # noqa: F401  (firmware/ importable, micropython shim)
    mpylib,
)
from host_tools.errors import CryoError, InvalidInput, Mismatch

# isort: split
from cryo import paths


# How each board's MicroPython runtime is flashed (--runtime). What the app
# is compiled for comes from boards/<name>/board.json ("mpy_cross_arch",
# "port", "micropython": the definitions tests/boards checks against each
# MCU); its "build" object may override any key here: {"march", "platform",
# "min_micropython", "runtime", "chip", "offset"}.
def _sim_march() -> str | None:
    """The virtual board is the unix port under ``micropython_exe()``: its
    native arch, as it reports it (a 32-bit build on an x86-64 host is x86)."""
    from host_tools.interpreter import facts, micropython_exe

    i = facts(micropython_exe())["arch_index"]
    return ARCHS[i] if i < len(ARCHS) else None


PROFILES = {
    "sim": {"march": None, "platform": "linux", "runtime": None},  # march: _sim_march
    "esp32s3": {"runtime": "esptool", "chip": "esp32s3", "offset": "0x0"},
    "rp2040": {"runtime": "uf2"},
    "rp2350": {"runtime": "uf2"},
    "stm32f4": {"runtime": "dfu", "dfu_addr": "0x08000000"},
}
PORT_PLATFORM = {
    "esp32": "esp32",
    "rp2": "rp2",
    "stm32": "pyboard",
    "unix": "linux",
}  # sys.platform
# the first release writing .mpy v6.3 (MicroPython docs, "MicroPython .mpy files")
MIN_MICROPYTHON = (1, 23, 0)
# arch index in sys.implementation._mpy bits 10-13 (py/persistentcode.h)
ARCHS = [
    None,
    "x86",
    "x64",
    "armv6",
    "armv6m",
    "armv7m",
    "armv7em",
    "armv7emsp",
    "armv7emdp",
    "xtensa",
    "xtensawin",
    "rv32imc",
    "rv64imc",
]
ROOT_FILES = ("boot.py", "main.py")  # run by the board itself, from the flash root
# Imported by boot.py before the app is selected: the valve safe state
# (cryo.board, which needs cryo.clock) and the verifier (cryo.app). They live
# in /lib at the flash root; everything else only in the verified slots.
BOOT_LAYER = ("cryo/__init__.py", "cryo/clock.py", "cryo/board/__init__.py")
BOOT_LAYER += ("cryo/board/definition.py",)
BOOT_LAYER += ("cryo/app/__init__.py", "cryo/app/hmac256.py", "cryo/app/manifest.py")
BOOT_LAYER += ("cryo/app/slots.py", "cryo/paths.py")
# the update check runs from the boot layer, never from the slot it checks;
# boot.py of a locked device needs the unlock timer (docs/security.md)
BOOT_LAYER += ("cryo/app/release.py", "cryo/app/ed25519.py")
BOOT_LAYER += ("cryo/link/__init__.py", "cryo/link/unlock.py")
MAIN_STUB = (
    "# Written by `cryo flash`: boot.py selected and verified an app slot;\n"
    "# run that slot's main.py (or stay in the safe state if there is none).\n"
    "from cryo.app import run_main\n"
    "run_main(globals())\n"
)
BOOT_FALLBACK = (
    "# Written by `cryo flash` (the firmware tree has no boot.py yet):\n"
    "# verify the app and choose its slot before anything else imports cryo.\n"
    "from cryo.app import select_app\n"
    "select_app('')\n"
)


def board_profile(name: str) -> dict:
    d = BOARDS_DIR / name
    if not d.is_dir():
        have = sorted(p.name for p in BOARDS_DIR.iterdir() if (p / "board.json").exists())
        raise InvalidInput(f"unknown board {name!r}: boards/ has {', '.join(have) or 'none'}")
    prof = dict(PROFILES.get(name, {"march": None, "platform": None, "runtime": None}))
    bj = d / "board.json"
    if bj.exists():
        try:
            data = json.loads(bj.read_text())
        except json.JSONDecodeError as e:
            raise InvalidInput(f"{bj}: not valid JSON ({e})") from None
        # the keys the real boards' definitions carry (docs/boards.md)
        if data.get("mpy_cross_arch"):
            prof["march"] = data["mpy_cross_arch"]
        if data.get("port"):
            prof["platform"] = PORT_PLATFORM.get(data["port"], data["port"])
        if data.get("micropython"):
            prof["min_micropython"] = data["micropython"]
        if data.get("micropython_board"):  # the runtime's build name (a blank board's plan)
            prof["micropython_board"] = data["micropython_board"]
        prof.update(data.get("build", {}))
    if name == "sim":
        prof["march"] = _sim_march()
    prof["name"] = name
    return prof


@functools.cache
def mpy_cross_version() -> tuple[int, int]:
    """The .mpy version mpy-cross emits, e.g. (6, 3) (cached per installed mpy-cross)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        stamp = _cache_dir() / f"mpy-cross-{version('mpy_cross')}.version"
    except PackageNotFoundError:
        stamp = None
    if stamp is not None and stamp.exists():
        major, minor = stamp.read_text().split(".")
        return int(major), int(minor)
    out = subprocess.run(
        [sys.executable, "-m", "mpy_cross", "--version"], capture_output=True, text=True
    ).stdout
    m = re.search(r"mpy v(\d+)\.(\d+)", out)
    if not m:
        raise CryoError(f"cannot tell the mpy-cross version from {out!r}")
    if stamp is not None:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(f"{m.group(1)}.{m.group(2)}")
    return int(m.group(1)), int(m.group(2))


def _cache_dir() -> Path:
    return Path(os.environ.get("CRYO_BUILD_DIR", ROOT / "build")) / "mpy"


def compile_mpy(src: Path, name: str, march: str | None) -> bytes:
    """Compile one source file to .mpy bytes (cached by content + options)."""
    data = src.read_bytes()
    key = hashlib.sha256(data + f"\0{name}\0{march}".encode()).hexdigest()
    cached = _cache_dir() / (march or "bytecode") / (key + ".mpy")
    if cached.exists():
        return cached.read_bytes()
    cached.parent.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "mpy_cross", "-s", name, "-o", str(cached) + ".tmp"]
    if march:
        args.append("-march=" + march)
    proc = subprocess.run(args + [str(src)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise InvalidInput(f"mpy-cross failed on {name}: {proc.stderr.strip() or proc.stdout}")
    os.replace(str(cached) + ".tmp", cached)
    return cached.read_bytes()


def build(board: str, firmware_dir: Path = FIRMWARE_DIR, keepalive=None) -> dict:
    """Compile the app for ``board``.

    Returns ``{"slot": {path: bytes}, "root": {path: bytes}, "meta": {...}}``:
    ``slot`` goes into an app slot (compiled firmware, board files,
    main.py as source), ``root`` is the boot layer at the flash root.
    """
    prof = board_profile(board)
    march = prof.get("march")
    slot: dict[str, bytes] = {}
    root: dict[str, bytes] = {}
    for src in sorted(firmware_dir.rglob("*.py")):
        rel = src.relative_to(firmware_dir).as_posix()
        if "__pycache__" in rel:
            continue
        if rel in ROOT_FILES:
            if rel == "main.py":
                slot["main.py"] = src.read_bytes()
            continue
        if keepalive:
            keepalive()
        mpy = compile_mpy(src, rel, march)
        slot[rel[:-3] + ".mpy"] = mpy
        if rel in BOOT_LAYER:
            root["lib/" + rel[:-3] + ".mpy"] = mpy
    # micropython-lib modules the firmware requires (frozen on a board built
    # from its manifest): in the slot, and in the boot layer, which checks
    # the slot's manifest HMAC before any slot is on sys.path
    for name, src in mpylib.modules().items():
        if keepalive:
            keepalive()
        mpy = compile_mpy(src, name, march)
        slot[name[:-3] + ".mpy"] = mpy
        root["lib/" + name[:-3] + ".mpy"] = mpy
    bdir = BOARDS_DIR / board
    for src in sorted(bdir.rglob("*")):
        rel = src.relative_to(bdir).as_posix()
        if not src.is_file() or "__pycache__" in rel or rel.startswith("tests/"):
            continue
        if rel == "manifest.py":  # a freeze manifest for the firmware build, not app code
            continue
        if src.suffix == ".py":
            slot[rel[:-3] + ".mpy"] = compile_mpy(src, rel, march)
        elif src.suffix == ".json":
            slot[rel] = src.read_bytes()
    if (bdir / "board.json").exists():
        root[paths.BOARD_PATH] = (bdir / "board.json").read_bytes()  # cryo.board reads it
    boot = firmware_dir / "boot.py"
    root["boot.py"] = boot.read_bytes() if boot.exists() else BOOT_FALLBACK.encode()
    root["main.py"] = MAIN_STUB.encode()
    version = "unknown"
    init = firmware_dir / "cryo" / "__init__.py"
    m = re.search(r'VERSION\s*=\s*"([^"]+)"', init.read_text()) if init.exists() else None
    if m:
        version = m.group(1)
    mpy_major = mpy_cross_version()[0]
    meta = {"version": version, "mpy": mpy_major, "arch": march, "board": board}
    from host_tools import sbom

    # the SBOM ships in the slot: hashed in the manifest, covered by its signature
    slot[sbom.SLOT_NAME] = sbom.firmware_bom(version, board)
    return {"slot": slot, "root": root, "meta": meta, "profile": prof}


def manifest_files(slot: dict[str, bytes]) -> dict[str, tuple[str, int]]:
    return {p: (hashlib.sha256(b).hexdigest(), len(b)) for p, b in slot.items()}


def check_abi(info: dict, meta: dict, prof: dict):
    """Refuse a board whose MicroPython cannot load what we compiled."""
    ver = tuple(info["version"])
    mpy = info.get("mpy") or 0
    dev_major, dev_sub, dev_arch = mpy & 0xFF, (mpy >> 8) & 3, (mpy >> 10) & 15
    comp_major = int(meta["mpy"])
    vtxt = ".".join(str(v) for v in ver)
    if prof.get("platform") and info.get("platform") != prof["platform"]:
        raise Mismatch(
            f"the board reports platform {info.get('platform')!r} but --board {prof['name']} "
            f"expects {prof['platform']!r}: choose the --board that matches the hardware"
        )
    minv = tuple(int(x) for x in str(prof.get("min_micropython", "")).split(".") if x) or (
        MIN_MICROPYTHON
    )
    if ver < minv:
        raise Mismatch(
            f"the board runs MicroPython {vtxt}; this firmware needs ≥ "
            f"{'.'.join(map(str, minv))}: flash a current runtime first "
            f"(cryo flash --board {prof['name']} --runtime FIRMWARE_FILE)"
        )
    if dev_major != comp_major:
        raise Mismatch(
            f"the board loads .mpy v{dev_major} (MicroPython {vtxt}) but mpy-cross emits "
            f"v{comp_major}: update the board's MicroPython (cryo flash --runtime) or install "
            f"the mpy-cross matching it"
        )
    march = meta.get("arch")
    if march and dev_sub != mpy_cross_version()[1]:
        raise Mismatch(
            f"the board loads native .mpy v{dev_major}.{dev_sub} but mpy-cross emits "
            f"v{comp_major}.{mpy_cross_version()[1]}: use the mpy-cross of the board's release"
        )
    if march:
        want = ARCHS.index(march)
        if (
            dev_arch
            and want != dev_arch
            and not (3 <= want <= 8 and 3 <= dev_arch <= 8 and want <= dev_arch)
        ):
            raise Mismatch(
                f"the board's native architecture is {ARCHS[dev_arch]} but --board "
                f"{prof['name']} compiles for {march}: choose the matching --board"
            )
