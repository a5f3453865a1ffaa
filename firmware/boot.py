# boot.py: runs first after every reset (power-up, machine.reset, watchdog,
# soft reset). Order matters:
#   0. Ctrl-C off, so nothing typed on the console can stop step 1 or skip
#      the lock of step 2b (on again in 2b on a development device);
#   1. valves closed before anything else (soft reset keeps pin levels);
#   2. flash mounted where the board definition says (flash_root: "/", the
#      pyboard "/flash"), checked in the mount table; from then on every
#      firmware file is named from there (cryo.paths.set_root) and the
#      working directory is the flash root, as the host's tools expect;
#   3. app selection (A/B slot verification, cryo.app.select_app).
# boot.py and main.py share one global namespace on MicroPython boards, so
# main.py finds BOOT (dict) and APP (the select_app result or None) here.

# 0. Two straight-line statements: the VM raises a pending KeyboardInterrupt
# only at a jump, so a Ctrl-C that arrived before them (during the port's
# start-up or the compile of this file) surfaces at the loop below, where it
# is caught; after them no new one is taken.
import micropython as _mp

_mp.kbd_intr(-1)
try:
    for _i in range(2):
        pass
except KeyboardInterrupt:
    pass

# 1. Safe state first: minimal code, nothing else imported before it.
_closed = False
try:
    import cryo.board as _board

    _board.safe_valves()
    _closed = True
except Exception as _e:  # noqa: BLE001 - never let boot die with valves open
    import sys

    print("boot: could not drive valves closed:", repr(_e))
    sys.print_exception(_e)

BOOT = {"valves_closed": _closed, "flash": None, "app": None}

# 2. The board's flash (the virtual board's ROM and real ports' _boot.py
# usually mounted it already; this only mounts if nothing is there). The
# definition was found at "/" or "/flash" (cryo.board.load_definition);
# its flash_root decides. Not found there, the root stays "/": main.py's
# files cannot be opened and STORAGE blocks treatment.
try:
    BOOT["flash"] = _board.use_flash()  # app slots (select_app below) and the raw REPL start here
except Exception as _e:  # noqa: BLE001 - main.py then runs without storage: STORAGE blocks treatment
    print("boot: flash not mounted:", _e)

# 2b. A provisioned device (docs/security.md) is locked: Ctrl-C stays off,
# and a reset timer that main.py cancels when it starts (cryo.link.unlock:
# the board never idles at an open REPL unless a service unlock runs).
_locked = False
try:
    import os as _os

    from cryo import paths as _paths

    _os.stat(_paths.on_flash(_paths.AUTH_PATH))
    _locked = True
except OSError:
    pass  # a development device: not locked
if not _locked:
    _mp.kbd_intr(3)  # a development device: the console is open again
else:
    BOOT["locked"] = True
    try:
        from cryo.clock import BoardClock as _Clock
        from cryo.link import unlock as _unlock

        BOOT["timer"], _open = _unlock.at_boot(_paths.on_flash(_paths.AUTH_UNLOCK_PATH), _Clock())
        if _open:
            _mp.kbd_intr(3)  # the service unlock continues after a soft reset
    except Exception as _e:  # noqa: BLE001 - still locked: Ctrl-C stays off
        print("boot: unlock timer:", repr(_e))

# 3. ---- APP SELECTION HOOK (cryo.app: firmware/cryo/app/) ----
APP = None
try:
    import cryo.app as _app

    APP = _app.select_app("")
    BOOT["app"] = APP
    if APP.get("fault"):
        print("boot: app fault:", APP.get("reason"))
except Exception as _e:  # noqa: BLE001 - no app selection: no authentic app (FIRMWARE)
    print("boot: app selection failed:", repr(_e))
    APP = {"slot": None, "path": None, "fault": 2, "reason": repr(_e)}
    BOOT["app"] = APP
# ---- END APP SELECTION HOOK ----
