"""The virtual board's library: plants, scenarios, flash images, fast runs, the front panel.

``run_fast`` runs the firmware's control tick in fast virtual time (what
``cryo sim run`` does); the real-time board on a pseudo-terminal is
``host_tools.virtual.board.VirtualBoard`` (``cryo sim``), its handlers
``host_tools.commands.sim``. ``write_package_json`` regenerates
``firmware/package.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from host_tools import BOARDS_DIR, FIRMWARE_DIR
from host_tools.errors import CryoError, DeviceError, InvalidInput
from host_tools.interpreter import micropython_exe
from host_tools.mpylib import MPYLIB_DIR

SIM_DIR = BOARDS_DIR / "sim"
DEFAULT_FLASH = "cryo-sim-flash.img"
BLOCK_SIZE = 4096
MARK = "@@SIM@@"


def _sim_modules():
    if str(SIM_DIR) not in sys.path:
        sys.path.insert(0, str(SIM_DIR))
    import plant
    import scenario

    return plant, scenario


def shipped_path(sub: str, name: str) -> str:
    """The file a shipped name or a JSON path stands for (boards/sim/shipped.py)."""
    _sim_modules()
    import shipped

    return shipped.path_of(sub, name)


def _check_shipped(sub, load, error, name):
    """Validate a shipped name or JSON file on the host; returns what the board loads."""
    try:
        load(name)
    except error as e:
        shipped = sorted(p.stem for p in (SIM_DIR / sub).glob("*.json"))
        raise InvalidInput(f"{e} (shipped {sub}: {', '.join(shipped)})")
    path = shipped_path(sub, name)
    return name if path != name else str(Path(name).resolve())


def check_plant(name: str) -> str:
    plant, _ = _sim_modules()
    return _check_shipped("plants", plant.load, plant.PlantError, name)


def check_scenario(name: str | None):
    if not name:
        return None
    _, scenario = _sim_modules()
    return _check_shipped("scenarios", scenario.load, scenario.ScenarioError, name)


def _abs(path):
    return str(Path(path).resolve()) if path else None


def _chip():
    """boards/sim/flash.py: where an image file keeps its chip's unique id."""
    _sim_modules()
    import flash

    return flash


def image_uid(flash, blocks: int) -> str | None:
    """The chip id (hex) kept in the flash image ``flash`` of ``blocks``
    blocks, or None (no such file, or an image without an id)."""
    chip = _chip()
    want = blocks * BLOCK_SIZE
    try:
        with open(flash, "rb") as f:
            f.seek(want)
            tail = f.read(chip.ID_TRAILER + 1)
    except OSError:
        return None
    if len(tail) == chip.ID_TRAILER and tail.startswith(chip.ID_MAGIC):
        return tail[len(chip.ID_MAGIC) :].hex()
    return None


def sim_uid(flash, blocks: int) -> str:
    """The virtual board's ``machine.unique_id()`` (hex): the unique id of
    its flash chip, kept in the image file after the flash contents
    (boards/sim/flash.py, ``ID_MAGIC``). A new image gets a random id when
    it is made — here, if the file is missing, or the first time a board
    uses an image another tool wrote without one — so two images never
    share a serial, an image keeps its serial across runs, and an image
    deleted and made again at the same path is a new board (its archive a
    new folder, not a "reset" log). Without an image (RAM flash, blank at
    every start) each call is a new chip. Raises InvalidInput when the
    image does not fit ``blocks``."""
    chip = _chip()
    if not flash:
        return os.urandom(chip.ID_LEN).hex()
    uid = image_uid(flash, blocks)
    if uid is not None:
        return uid
    want = blocks * BLOCK_SIZE
    try:
        with open(flash, "ab") as f:  # made if missing
            have = f.tell()
            if have > want or have % BLOCK_SIZE:
                raise InvalidInput(
                    f"--flash {flash}: {have} bytes, the board's flash is {want} "
                    f"(--flash-size {want // 1024}) and its {chip.ID_TRAILER}-byte chip id"
                )
            uid = os.urandom(chip.ID_LEN)
            f.write(b"\xff" * (want - have) + chip.ID_MAGIC + uid)  # erased, then the id
    except OSError as e:
        raise InvalidInput(f"--flash {flash}: {e.strerror}")
    return uid.hex()


# The largest SPI flash on the modules of the boards built for
# (ESP32-S3-WROOM-1 N16: 16 MB, Espressif's ESP32-S3-WROOM-1 datasheet).
MAX_FLASH_KIB = 16 * 1024


def flash_blocks(size_kib: int) -> int:
    if size_kib * 1024 % BLOCK_SIZE or not 64 <= size_kib <= MAX_FLASH_KIB:
        raise InvalidInput(
            f"--flash-size must be a multiple of 4 KiB from 64 to {MAX_FLASH_KIB} KiB, "
            f"got {size_kib}"
        )
    return size_kib * 1024 // BLOCK_SIZE


# What `cryo sim run` accepts, checked on the host: the runner gets them as
# JSON, where inf and nan are not numbers, and runs on a board's tick
# arithmetic. (option, lowest, highest, unit, why the bounds)
RUN_LIMITS = {
    "duration_s": ("--duration", 0.001, 86400, "virtual s", "up to a day of virtual time"),
    "trace_ms": ("--trace-ms", 1, 60_000, "ms", "one trace line per ms up to one per minute"),
    "start_ms": ("--start-ms", 0, (1 << 30) - 1, "ms", "a tick count: ticks wrap at 2**30"),
}


def check_run_limits(**values):
    """Refuse a value ``run_fast`` cannot run (not finite, or outside ``RUN_LIMITS``)."""
    import math

    def show(v):
        return f"{v:g}" if isinstance(v, float) else str(v)

    for key, value in values.items():
        opt, low, high, unit, why = RUN_LIMITS[key]
        if not (math.isfinite(value) and low <= value <= high):
            raise InvalidInput(
                f"{opt} must be a number from {show(low)} to {show(high)} {unit} ({why}), "
                f"got {show(value)}"
            )


# --------------------------------------------------------------------- fast
def run_fast(
    plant="default",
    scenario=None,
    seed=0,
    flash=None,
    duration_s=60.0,
    trace=None,
    trace_ms=100,
    config=None,
    start_ms=0,
    autostart=True,
    flash_kib=2048,
    board=None,
    timeout=600,
):
    """Run ``cryo sim run`` and return its summary dict (used by tests/bench)."""
    check_run_limits(duration_s=float(duration_s), trace_ms=trace_ms, start_ms=start_ms)
    opts = {
        "plant": check_plant(plant),
        "scenario": check_scenario(scenario),
        "seed": int(seed),
        "flash": _abs(flash),
        "flash_blocks": flash_blocks(flash_kib),
        "duration_s": float(duration_s),
        "trace": _abs(trace),
        "trace_ms": int(trace_ms),
        "config": config,
        "start_ms": int(start_ms),
        "autostart": bool(autostart),
        "board": _abs(board),
        "rom": str(FIRMWARE_DIR),
        "sim": str(SIM_DIR),
    }
    uid = sim_uid(flash, opts["flash_blocks"])
    env = dict(os.environ, MICROPYPATH=f"{MPYLIB_DIR}:{SIM_DIR}:{FIRMWARE_DIR}", SIM_UID=uid)
    cmd = [micropython_exe()]
    if not flash:  # RAM flash lives on the interpreter's heap
        cmd += ["-X", "heapsize=%dK" % (2048 + opts["flash_blocks"] * 4)]
    # Options go in a file: the PyPI unix port aborts ("FATAL: uncaught
    # NLR") on any command-line argument of 256 characters or more.
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="cryo-sim-") as f:
        json.dump(opts, f)
        f.flush()
        cmd += [str(SIM_DIR / "fastrun.py"), f.name]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"cryo sim run did not finish within {timeout} s")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise CryoError(
            "the virtual board failed:\n" + (proc.stdout[-3000:] + proc.stderr[-3000:]).strip()
        )
    out = json.loads(lines[-1][len(MARK) :])
    out["console"] = "\n".join(ln for ln in proc.stdout.splitlines() if not ln.startswith(MARK))
    return out


def _panel_schema():
    """boards/sim/panel.py: what a front-panel file may hold (the board reads it too)."""
    _sim_modules()
    import panel

    return panel


PANEL_INPUTS = _panel_schema().INPUTS


def read_panel(path) -> dict:
    """The inputs in a front-panel file; InvalidInput if it is not one.

    An empty file is an empty panel; anything else must be what
    ``write_panel`` writes (boards/sim/panel.py's schema), so a file that is
    not a panel is never taken for one, or overwritten."""
    schema = _panel_schema()
    what = "the front-panel file `cryo sim` prints (or --panel FILE)"
    try:
        with open(path, "rb") as f:
            data = f.read(schema.SIZE + 1)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such front-panel file; give {what}") from None
    except OSError as e:
        raise InvalidInput(f"{path}: {e.strerror}; give {what}") from None
    state = problem = None
    if len(data) > schema.SIZE:
        problem = f"larger than the {schema.SIZE} bytes of one"
    else:
        try:
            text = data.decode()
            state = json.loads(text) if text.strip() else {}
        except ValueError:
            problem = "not JSON"
        else:
            problem = schema.problem(state)
    if problem:
        raise InvalidInput(f"{path}: not a front-panel file ({problem}); give {what}")
    return state


def write_panel(path, reset=False, **inputs):
    """Set physical inputs of a running real-time virtual board.

    ``path``: the front-panel file (``cryo sim --panel FILE``, printed at
    start). ``inputs``: ``footswitch``/``handpiece`` 1 = pressed/held,
    ``estop`` 1 = loop closed (0 = pressed). Merged into the file's current
    content and written in place (the board keeps the file open, so no
    rename); ``reset``: start from no inputs (a board creating its panel).
    An existing file that is not a panel file is refused, never overwritten
    (``read_panel``); without ``reset`` the file must exist. Returns the
    panel state written.
    """
    schema = _panel_schema()
    bad = schema.problem({k: int(v) if isinstance(v, bool) else v for k, v in inputs.items()})
    if bad:
        raise InvalidInput(f"front panel: {bad}")
    exists = os.path.exists(path)
    state = read_panel(path) if exists or not reset else {}
    if reset:
        state = {}
    state.update({k: int(bool(v)) for k, v in inputs.items()})
    text = json.dumps(state, sort_keys=True)
    with open(path, "r+" if exists else "w") as f:
        f.write(text.ljust(schema.SIZE))  # fixed size: a read never sees a shorter tail
        f.truncate()
    return state


def package_json() -> dict:
    """The mip package of the firmware (firmware/package.json): every .py of
    the cryo package, installed as /lib/cryo/... by ``mpremote mip install``."""
    from host_tools import fwimport

    fwimport.ensure()
    import cryo

    fw = FIRMWARE_DIR
    files = sorted(p.relative_to(fw).as_posix() for p in (fw / "cryo").rglob("*.py"))
    return {"urls": [[f, f] for f in files], "version": cryo.VERSION}


def write_package_json() -> Path:
    from host_tools import FIRMWARE_DIR as fw

    path = fw / "package.json"
    path.write_text(json.dumps(package_json(), indent=1) + "\n")
    return path


if __name__ == "__main__":  # python -m host_tools.sim --write-package
    if sys.argv[1:] == ["--write-package"]:
        print(write_package_json())
