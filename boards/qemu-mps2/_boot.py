# The emulated board's ROM (frozen): the qemu port runs it after every reset,
# before boot.py and main.py (qemu-port.patch), as real ports run their
# frozen _boot.py. Real time only: a ROMFS that holds realtime.json (written
# by `cryo sim --board qemu-mps2`) makes it build the world, mount the flash
# and put boot.py/main.py on it; otherwise the board starts at the REPL
# (the fast-mode runner and the tests drive it from there).
import micropython

# The ROM takes no Ctrl-C (boot.py decides when the console opens); one that
# came during the port's start-up is raised at the first jump and caught.
micropython.kbd_intr(-1)
try:
    for _i in range(2):
        pass
except KeyboardInterrupt:
    pass
try:
    open("/rom/realtime.json").close()
    _rt = True
except OSError:
    _rt = False
if _rt:
    import qemu_rom

    qemu_rom.boot("/rom/realtime.json")
del _rt, _i
