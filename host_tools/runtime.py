"""Flashing MicroPython itself onto a blank board (``cryo flash --runtime``).

ESP32 family: esptool used as a library; RP2: the UF2 copied to the BOOTSEL
drive; STM32: DFU (dfu-util). ``runtime_steps`` says exactly what would run
(``--dry-run`` prints it).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from host_tools.errors import CryoError, DeviceError, InvalidInput

# What each flasher takes: (file suffix, its first bytes, the format's name).
# ESP32: an esptool image starts with the magic byte 0xE9 (esptool
# documentation, "Firmware Image Format"); RP2: every 512-byte UF2 block
# starts with magicStart0 0x0A324655, "UF2\n" (Microsoft's UF2 specification);
# STM32: dfu-util reads DfuSe files, whose prefix starts "DfuSe" (ST UM0391),
# the form MicroPython publishes for pyboards (dfu-util cannot read .hex).
IMAGE_FORMATS = {
    "esptool": (".bin", b"\xe9", "an esptool firmware image"),
    "uf2": (".uf2", b"UF2\n", "a UF2 file"),
    "dfu": (".dfu", b"DfuSe", "a DfuSe file"),
}


def check_image(prof: dict, image: Path) -> Path:
    """``image`` if it exists and is the format the board's flasher takes; else InvalidInput."""
    kind = prof.get("runtime")
    if kind not in IMAGE_FORMATS:
        raise InvalidInput(
            f"board {prof['name']} has no MicroPython runtime to flash: --runtime is for "
            "boards flashed with esptool, UF2 or DFU"
        )
    suffix, magic, name = IMAGE_FORMATS[kind]
    allowed = f"--board {prof['name']} takes {name} ({suffix})"
    if not image.is_file():
        raise InvalidInput(f"runtime image {image} does not exist; {allowed}")
    if image.suffix.lower() != suffix:
        raise InvalidInput(f"runtime image {image} is not a {suffix} file; {allowed}")
    try:
        with open(image, "rb") as f:
            head = f.read(len(magic))
    except OSError as e:
        raise InvalidInput(f"runtime image {image}: {e.strerror}") from None
    if head != magic:
        raise InvalidInput(
            f"runtime image {image} does not start as {name} does ({magic!r}); {allowed}"
        )
    return image


def required_runtime(prof: dict) -> str:
    """What a blank board needs before the app, when no ``--runtime`` was given."""
    kind = prof.get("runtime")
    if kind not in IMAGE_FORMATS:
        return f"no runtime to flash for board {prof['name']}"
    suffix, _, name = IMAGE_FORMATS[kind]
    release = " ".join(
        str(prof[k]) for k in ("min_micropython", "micropython_board") if prof.get(k)
    )
    release = f"MicroPython {release}" if release else "MicroPython"
    return f"{release} as {name} ({suffix}): pass --runtime FILE to flash it first"


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
        import esptool  # a pinned dependency (pyproject.toml); imported only when used

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
