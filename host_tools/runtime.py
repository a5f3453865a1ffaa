"""Flashing MicroPython itself onto a blank board (``cryo flash --runtime``).

ESP32 family: esptool used as a library; RP2: the UF2 copied to the BOOTSEL
drive; STM32: DFU (dfu-util). ``runtime_steps`` says exactly what would run
(``--dry-run`` prints it).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from host_tools.errors import CryoError, DeviceError, InvalidInput


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
