# The virtual board's "ROM": what the silicon and the port's frozen _boot.py
# do before boot.py. Started by `cryo sim` (host_tools/virtual/board.py) as
#     micropython -i boards/sim/sim_boot.py
# on a pty, with MICROPYPATH=boards/sim:firmware and SIM_* environment
# variables; `-i` drops into the REPL when main.py ends (or is interrupted).
#
# 1. build the world (plant, emulated chips, pins) and the control pipe;
# 2. mount the littlefs2 flash image as '/', the firmware tree at /rom and
#    boards/sim at /sim (stand-ins for frozen modules);
# 3. run boot.py, then main.py (skipped after a soft reset from the raw
#    REPL, as on real boards), in one shared global namespace.
import micropython as _mp

# The ROM takes no Ctrl-C (boot.py decides when the console opens). The
# relay delivers none before the ROM says so on the control pipe ("K").
_mp.kbd_intr(-1)

import json as _json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import plant as _plant  # noqa: E402
import scenario as _scenario  # noqa: E402
import vboard as _vboard  # noqa: E402

from cryo.clock import BoardClock as _BoardClock  # noqa: E402


def _env(k, d=None):
    v = os.getenv(k)
    return d if v is None or v == "" else v


def _exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False


def _rom_boot():
    clock = _BoardClock()
    board = _vboard.load_board(_env("SIM_BOARD"))
    params = _plant.load(_env("SIM_PLANT", "default"))
    w = _vboard.install(
        _vboard.World(board, params, int(_env("SIM_SEED", "0")), clock, realtime=True)
    )
    st = _env("SIM_STATE")
    if st is not None:
        # the patient and the dewar survive a reset of the board
        try:
            with open(st) as f:
                text = f.read().strip()
            if text:
                soft = _env("SIM_RESET_MODE") in ("soft", "raw")
                w.restore(_json.loads(text), keep_outputs=soft)
        except (OSError, ValueError, KeyError) as e:
            print("sim: previous plant state not restored:", repr(e))
        w.keep_state(open(st, "r+b" if _exists(st) else "w+b"))
        # Ctrl-D (soft reset) ends the process normally: save the pin levels
        # and the plant for the restarted interpreter
        sys.atexit(w.save_state)
    panel = _env("SIM_PANEL")
    if panel is not None:
        # the technician's hands: physical inputs the host writes (JSON)
        try:
            w.attach_panel(open(panel, "rb"))
            w.panel.poll(w, clock.ticks_ms(), True)
        except OSError as e:
            print("sim: front panel not readable:", repr(e))
    w.ctrl = _ctrl
    if _env("SIM_SCENARIO"):
        # scenario time counts from the first power-up (SIM_T0_MS, the
        # relay's CLOCK_MONOTONIC = the unix port's ticks_ms), not from
        # this (re)start
        now = clock.ticks_ms()
        t0 = int(_env("SIM_T0_MS", str(now)))
        w.scenario = _scenario.Scenario(
            _scenario.load(_env("SIM_SCENARIO")), t0, clock, None if t0 == now else now
        )
    import machine  # noqa: F401 - the sim machine module, imported before the switch

    dev = _vboard.make_flash(_env("SIM_FLASH"), 4096, int(_env("SIM_FLASH_BLOCKS", "512")))
    w.flash = dev
    _vboard.mount_root(dev, _env("SIM_ROM"), _env("SIM_DIR"))
    cut = _env("SIM_POWER_CUT_AFTER")
    if cut is not None:
        dev.cut_power_after(int(cut), _env("SIM_TEAR", "0") == "1")
    return w


def _find(name):
    for d in ("/", "/rom/"):
        try:
            os.stat(d + name)
            return d + name
        except OSError:
            pass
    return None


def _run(path):
    """As a port's pyexec_file: Ctrl-C on while the file runs, off after it;
    an exception (a Ctrl-C included) is printed and the boot goes on; only
    SystemExit ends it."""
    try:
        with open(path) as f:
            code = compile(f.read(), path, "exec")
        _mp.kbd_intr(3)
        exec(code, globals())
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - reported, as the ports do
        sys.print_exception(e)
    finally:
        _mp.kbd_intr(-1)


_ctrl = None
if _env("SIM_CTRL_FD") is not None:
    _ctrl = open("/dev/fd/" + _env("SIM_CTRL_FD"), "wb")
    _ctrl.write(b"K\n")  # console ready: Ctrl-C now as the firmware sets it
_world = _rom_boot()
_mode = _env("SIM_RESET_MODE", "power")
_p = _find("boot.py")
if _p:
    _run(_p)
if _mode != "raw":
    _p = _find("main.py")
    if _p:
        _run(_p)
del _p, _mode
