"""`cryo flash`: deploy the firmware app to a board, or flash a blank board's runtime.

App deploy (the usual job), in order:

1. probe the board: MicroPython version, ``.mpy`` ABI, device serial, key,
   active slot; refuse a version/ABI mismatch before touching anything;
2. compile ``firmware/`` (and ``boards/<name>/``) with mpy-cross for the
   board's architecture (cached by source hash, so an unchanged rebuild is
   free) and write a manifest: SHA-256 and size of every file, HMAC-SHA256
   under the per-device key (provisioned on first flash, kept in the host
   keystore ``$CRYO_KEYSTORE`` or ``~/.config/cryo/keys/<serial>.key``);
3. if the active slot already holds exactly this manifest and verifies:
   "up to date", nothing written (the ≤ 1 s redeploy);
4. otherwise fill the *inactive* slot: files already right there are kept,
   files the active slot has right are copied on the device, only the rest
   crosses the link; stale files are removed; the manifest is written last;
5. the device verifies the new slot with the same code boot uses
   (``cryo.app.slots.verify_slot``: HMAC + every SHA-256);
6. ``app/active`` is replaced by rename (the atomic switch: before it the
   previous firmware boots, after it the new one), the deploy is appended
   to the audit trail, and the board is reset.

Runtime flashing for blank boards (``--runtime FILE``): ESP32 family with
esptool used as a library, RP2 by copying the UF2 to the BOOTSEL drive,
STM32 through DFU (dfu-util). ``--dry-run`` prints exactly those steps.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

from host_tools import (
    BOARDS_DIR,
    FIRMWARE_DIR,
    ROOT,
    fwimport,  # noqa: F401  (firmware/ importable, micropython shim)
)
from host_tools.connect import add_port_argument, resolve_port
from host_tools.device import device_serial, probe, record_audit, reset_board, rtc_now
from host_tools.errors import AccessDenied, CryoError, DeviceError, InvalidInput, Mismatch

# isort: split
from cryo import paths


# How each board's MicroPython runtime is flashed (--runtime). What the app
# is compiled for comes from boards/<name>/board.json ("mpy_cross_arch",
# "port", "micropython": the definitions tests/boards checks against each
# MCU); its "build" object may override any key here: {"march", "platform",
# "min_micropython", "runtime", "chip", "offset"}.
def _host_march():
    """The virtual board is the unix port on this host: its native arch."""
    import platform

    return {"x86_64": "x64", "amd64": "x64", "i386": "x86", "i686": "x86"}.get(
        platform.machine().lower()
    )


PROFILES = {
    "sim": {"march": _host_march(), "platform": "linux", "runtime": None},
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
BOOT_LAYER += ("cryo/app/__init__.py", "cryo/app/hmac256.py", "cryo/app/manifest.py")
BOOT_LAYER += ("cryo/app/slots.py", "cryo/paths.py")
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


# -- build ---------------------------------------------------------------
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
        prof.update(data.get("build", {}))
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
    return {"slot": slot, "root": root, "meta": meta, "profile": prof}


def manifest_files(slot: dict[str, bytes]) -> dict[str, tuple[str, int]]:
    return {p: (hashlib.sha256(b).hexdigest(), len(b)) for p, b in slot.items()}


# -- keys ----------------------------------------------------------------
def keystore() -> Path:
    env = os.environ.get("CRYO_KEYSTORE")
    return Path(env) if env else Path.home() / ".config" / "cryo" / "keys"


def load_key(serial: str) -> bytes | None:
    p = keystore() / f"{serial}.key"
    return p.read_bytes() if p.exists() else None


def save_key(serial: str, key: bytes):
    d = keystore()
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{serial}.key"
    tmp = p.with_suffix(".tmp")
    tmp.write_bytes(key)
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


# -- checks --------------------------------------------------------------
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


# -- deploy --------------------------------------------------------------
class Plan:
    """What a deploy will do (also what ``--dry-run`` prints)."""

    def __init__(self):
        self.slot = None
        self.transfer: list[str] = []
        self.local: list[str] = []
        self.keep: list[str] = []
        self.remove: list[str] = []
        self.root: list[str] = []
        self.up_to_date = False
        self.provision = False

    def as_dict(self):
        return {
            "slot": self.slot,
            "transfer": self.transfer,
            "local_copy": self.local,
            "unchanged": len(self.keep),
            "remove": self.remove,
            "boot_layer": self.root,
            "up_to_date": self.up_to_date,
            "provision_key": self.provision,
        }


def _slot_path(slot, rel):
    return f"{paths.slot_dir(slot)}/{rel}"


def deploy(
    session,
    board: str = "sim",
    *,
    firmware_dir: Path = FIRMWARE_DIR,
    dry_run: bool = False,
    progress=None,
    reset: bool = True,
    audit: bool = True,
    build_result: dict | None = None,
    log=print,
) -> dict:
    """Deploy the app over an open :class:`host_tools.connect.Session`."""
    from cryo.app import manifest

    last = [time.monotonic()]

    def keepalive():
        # compiling takes seconds on a cold cache: keep the board's watchdog fed
        if time.monotonic() - last[0] > 0.5:
            session.exec("pass")
            last[0] = time.monotonic()

    b = build_result or build(board, firmware_dir, keepalive)
    info = probe(session)
    check_abi(info, b["meta"], b["profile"])
    plan = Plan()

    serial = device_serial(info)
    if serial is None:
        serial = "SIM-" + secrets.token_hex(4).upper()
        if not dry_run:
            session.exec(
                f"_cry_mk({paths.APP_DIR!r})\nf=open({paths.APP_SERIAL!r},'w')\n"
                f"f.write({serial!r})\nf.close()"
            )
    host_key = load_key(serial)
    if info.get("key_fp") is None:
        plan.provision = True
        key = host_key or secrets.token_bytes(32)
    else:
        if host_key is None:
            raise AccessDenied(
                f"device {serial} was provisioned with a key this host does not hold: copy "
                f"its key file into {keystore()} (as {serial}.key) to deploy to it"
            )
        if key_fingerprint(host_key) != info["key_fp"]:
            raise AccessDenied(
                f"the key for device {serial} in {keystore()} does not match the device's key"
            )
        key = host_key

    files = manifest_files(b["slot"])
    text = manifest.sign(key, b["meta"], files)
    active = (info.get("active") or "").strip() or None
    if active not in ("a", "b"):
        active = None

    # Unchanged redeploy: the active slot already holds this exact manifest.
    old_text = None
    if active:
        try:
            current = session.read_file(_slot_path(active, "manifest"))  # streamed: bounded RAM
            old_text = current.decode(errors="replace")
        except DeviceError:
            current = None
    if active and not plan.provision:
        if current == text.encode():
            shas = session.eval(f"_cry_shas({[_slot_path(active, p) for p in sorted(files)]!r})")
            if all(shas[_slot_path(active, p)] == files[p][0] for p in files):
                plan.up_to_date = True
                plan.slot = active
                plan.keep = sorted(files)
    if not plan.up_to_date:
        target = "b" if active == "a" else "a"
        plan.slot = target
        want_t = [_slot_path(target, p) for p in sorted(files)]
        have_t = session.eval(f"_cry_shas({want_t!r})")
        have_a = (
            session.eval(f"_cry_shas({[_slot_path(active, p) for p in sorted(files)]!r})")
            if active
            else {}
        )
        for p in sorted(files):
            sha = files[p][0]
            if have_t.get(_slot_path(target, p)) == sha:
                plan.keep.append(p)
            elif active and have_a.get(_slot_path(active, p)) == sha:
                plan.local.append(p)
            else:
                plan.transfer.append(p)
        existing = session.eval(f"_cry_walk({paths.slot_dir(target)!r})")
        plan.remove = sorted(
            p for p in existing if p not in files and p != "manifest" and not p.endswith(".tmp")
        )
    root_shas = session.eval(f"_cry_shas({sorted(b['root'])!r})")
    plan.root = sorted(
        p for p, data in b["root"].items() if root_shas.get(p) != hashlib.sha256(data).hexdigest()
    )
    result = plan.as_dict()
    result.update(
        serial=serial,
        version=b["meta"]["version"],
        previous_slot=active,
        bytes=sum(len(b["slot"][p]) for p in plan.transfer)
        + sum(len(b["root"][p]) for p in plan.root),
    )
    if dry_run:
        result["dry_run"] = True
        return result
    if plan.up_to_date and not plan.root:
        return result

    if progress is not None and hasattr(progress, "start"):
        progress.start(result["bytes"])  # the bar's total, now that the plan is known
    if plan.provision:
        import base64

        tmp = paths.APP_KEY + ".tmp"
        session.exec(f"_cry_mk({paths.APP_DIR!r})")
        session.exec(
            f"import binascii\nf=open({tmp!r},'wb')\n"
            f"f.write(binascii.a2b_base64({base64.b64encode(key).decode()!r}))\nf.close()\n"
            f"os.rename({tmp!r},{paths.APP_KEY!r})"
        )
        save_key(serial, key)
    # Boot layer first (each file replaced by rename); it must verify the slot.
    for p in plan.root:
        session.write_file(p + ".tmp", b["root"][p], progress=progress)
        session.exec(f"os.rename({p + '.tmp'!r}, {p!r})")
    if not plan.up_to_date:
        t = plan.slot
        mf = _slot_path(t, "manifest")
        session.makedirs(paths.slot_dir(t))
        session.exec(f"_cry_rm({mf!r})")  # slot is unauthentic until done
        for p in plan.remove:
            session.exec(f"_cry_rm({_slot_path(t, p)!r})")
        for p in plan.local:
            d = _slot_path(t, p).rsplit("/", 1)[0]
            session.exec(
                f"_cry_mk({d!r})\n_cry_cp({_slot_path(active, p)!r}, {_slot_path(t, p)!r})"
            )
            if progress:
                progress(0)
        for p in plan.transfer:
            session.write_file(_slot_path(t, p), b["slot"][p], progress=progress)
        session.write_file(mf + ".tmp", text.encode())
        session.exec(f"os.rename({mf + '.tmp'!r}, {mf!r})")
        problems = session.eval(
            f"__import__('cryo.app.slots').app.slots.verify_slot('', {t!r}, "
            "__import__('cryo.app.slots').app.slots.device_key(''))"
        )
        if problems:
            raise DeviceError(
                "the new app did not verify on the device (previous firmware kept): "
                + "; ".join(problems[:3])
            )
        tmp = paths.APP_ACTIVE + ".tmp"
        session.exec(
            f"f=open({tmp!r},'w')\nf.write({t!r})\nf.close()\n"
            f"os.rename({tmp!r},{paths.APP_ACTIVE!r})"
        )
        result["switched"] = True
    if audit:
        result["audit"] = record_deploy(session, plan.slot, b["meta"], text, old_text)
    if reset:
        result["reset"] = reset_board(session)
    return result


def record_deploy(session, slot: str, meta: dict, text: str, old_text: str | None = None) -> str:
    """Append the deploy to the device's audit trail (cryo.storage.audit.AuditTrail).

    Entry: kind "deploy", role service, subject = firmware version, old/new
    = SHA-256 of the previous and the new manifest.
    """
    new_hash = hashlib.sha256(text.encode()).hexdigest()
    old_hash = hashlib.sha256(old_text.encode()).hexdigest() if old_text else None
    call = (
        f"_t.firmware_deploy({rtc_now()}, 'service', {meta['version']!r}, "
        f"{old_hash!r}, {new_hash!r})"
    )
    try:
        recorded = record_audit(session, [call], slot)
    except DeviceError as e:
        return f"failed: {e}"
    return "recorded" if recorded else "audit trail not available in this firmware"


# -- runtime flashing ----------------------------------------------------
def runtime_steps(prof: dict, image: Path, port: str | None, *, bootsel: Path | None = None):
    """The exact steps to flash MicroPython itself onto a blank board."""
    kind = prof.get("runtime")
    if kind == "esptool":
        args = ["--chip", prof.get("chip", "auto"), "--port", port or "<auto>"]
        args += ["--baud", str(prof.get("baud", 460800)), "write-flash", "--erase-all"]
        args += [prof.get("offset", "0x0"), str(image)]
        return [("esptool", args, f"esptool {' '.join(args)}")]
    if kind == "uf2":
        drive = bootsel or find_bootsel()
        where = str(drive) if drive else "<BOOTSEL drive: hold BOOTSEL while plugging in>"
        return [("uf2", [str(image), where], f"copy {image} to {where}/{image.name}")]
    if kind == "dfu":
        args = ["-a", "0", "-s", f"{prof.get('dfu_addr', '0x08000000')}:leave", "-D", str(image)]
        return [("dfu", args, f"dfu-util {' '.join(args)}")]
    raise InvalidInput(f"board {prof['name']} has no runtime to flash (runtime: {kind})")


def find_bootsel() -> Path | None:
    """Mounted RP2 BOOTSEL drive (it holds INFO_UF2.TXT)."""
    roots = [Path("/media"), Path("/run/media"), Path("/Volumes"), Path("/mnt")]
    for r in roots:
        if not r.is_dir():
            continue
        for info in list(r.glob("*/INFO_UF2.TXT")) + list(r.glob("*/*/INFO_UF2.TXT")):
            return info.parent
    return None


def run_runtime_step(step):
    kind, args, _ = step
    if kind == "esptool":
        try:
            import esptool
        except ImportError:
            raise CryoError("esptool is not installed: pip install esptool") from None
        try:
            esptool.main(args)
        except SystemExit as e:  # its click front end exits on bad usage
            if e.code not in (0, None):
                raise DeviceError(f"esptool stopped with exit code {e.code}") from None
        except Exception as e:  # esptool raises FatalError and friends
            raise DeviceError(f"esptool: {e}") from None
    elif kind == "uf2":
        import shutil

        src, drive = args
        if not Path(drive).is_dir():
            raise DeviceError("no RP2 BOOTSEL drive mounted: hold BOOTSEL while plugging in")
        shutil.copyfile(src, Path(drive) / Path(src).name)
    elif kind == "dfu":
        import shutil

        exe = shutil.which("dfu-util")
        if exe is None:
            raise CryoError("dfu-util is not installed (apt-get install dfu-util)")
        if subprocess.run([exe, *args]).returncode != 0:
            raise DeviceError("dfu-util failed: is the board in DFU mode (BOOT0 high)?")


# -- CLI -----------------------------------------------------------------
def register(subparsers):
    p = subparsers.add_parser(
        "flash",
        help="deploy the firmware app (or flash a blank board's MicroPython runtime)",
        description=__doc__.split("\n\n")[0],
    )
    add_port_argument(p)
    p.add_argument("--board", default="sim", help="board definition under boards/ (default sim)")
    p.add_argument(
        "--firmware",
        type=Path,
        default=FIRMWARE_DIR,
        help="firmware tree to deploy (default firmware/)",
    )
    p.add_argument("--runtime", metavar="FILE", help="flash this MicroPython image (blank board)")
    p.add_argument("--bootsel", metavar="DIR", help="RP2 BOOTSEL drive (default: auto-detect)")
    p.add_argument("--dry-run", action="store_true", help="print what would be done, do nothing")
    p.add_argument("--no-reset", action="store_true", help="do not reset the board afterwards")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_flash)


def _print_plan(res: dict, dry: bool):
    from rich.console import Console
    from rich.table import Table

    c = Console()
    verb = "would" if dry else "did"
    if res.get("up_to_date") and not res.get("boot_layer"):
        c.print(
            f"device {res['serial']}: firmware {res['version']} is up to date (slot {res['slot']})"
        )
        return
    t = Table(title=f"deploy {res['version']} to device {res['serial']} slot {res['slot']}")
    t.add_column("action")
    t.add_column("files", justify="right")
    t.add_column("detail")
    t.add_row("transfer", str(len(res["transfer"])), ", ".join(res["transfer"][:6]))
    t.add_row("copy on device", str(len(res["local_copy"])), "")
    t.add_row("unchanged", str(res["unchanged"]), "")
    t.add_row("remove", str(len(res["remove"])), ", ".join(res["remove"][:6]))
    t.add_row("boot layer", str(len(res["boot_layer"])), ", ".join(res["boot_layer"]))
    c.print(t)
    if res.get("provision_key"):
        c.print(f"{verb} provision a new device key (kept in {keystore()})")
    if dry:
        prev = res.get("previous_slot") or "none"
        c.print(
            f"would verify slot {res['slot']} on the device, switch app/active {prev} → "
            f"{res['slot']}, record the deploy in the audit trail and reset the board"
        )
    else:
        c.print(
            f"switched to slot {res['slot']}; audit: {res.get('audit')}; reset: {res.get('reset') or 'not requested'}"
        )


def cmd_flash(args) -> int:
    prof = board_profile(args.board)
    if args.runtime:
        image = Path(args.runtime)
        if not image.exists() and not args.dry_run:
            raise InvalidInput(f"runtime image {image} does not exist")
        port = args.port or os.environ.get("CRYO_PORT")
        steps = runtime_steps(
            prof, image, port, bootsel=Path(args.bootsel) if args.bootsel else None
        )
        for s in steps:
            print(("would run: " if args.dry_run else "running: ") + s[2])
            if not args.dry_run:
                run_runtime_step(s)
        if args.dry_run:
            print("then: cryo flash --board", args.board, "(deploy the app)")
        return 0

    from host_tools.connect import Session

    port = resolve_port(args.port)
    t0 = time.perf_counter()
    if not (args.firmware / "cryo").is_dir():
        raise InvalidInput(f"{args.firmware} is not a firmware tree (no cryo/ package in it)")
    b = build(args.board, args.firmware)
    with Session(port) as s:
        progress_ctx = None
        cb = None
        if not args.json and sys.stdout.isatty() and not args.dry_run:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            progress_ctx = Progress(TextColumn("deploy"), BarColumn(), DownloadColumn())
            task = progress_ctx.add_task("deploy", total=None)
            progress_ctx.start()

            class cb:  # noqa: N801 - a callable with a total, for deploy()
                @staticmethod
                def start(total):
                    progress_ctx.update(task, total=total)

                def __call__(self, n):
                    progress_ctx.update(task, advance=n)

            cb = cb()

        try:
            res = deploy(
                s,
                args.board,
                firmware_dir=args.firmware,
                dry_run=args.dry_run,
                progress=cb,
                reset=not args.no_reset,
                build_result=b,
            )
        finally:
            if progress_ctx:
                progress_ctx.stop()
    res["seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        _print_plan(res, args.dry_run)
    return 0
