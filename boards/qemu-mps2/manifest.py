# The frozen image of the emulated Cortex-M board (qemu port, MPS2_AN385):
# the firmware, asyncio, and the virtual board's emulated chips, plant,
# flash and ``machine`` beside it, so none of their bytecode takes heap.
# _boot.py and qemu_rom.py are the board's ROM (real-time mode: `cryo sim
# --board qemu-mps2`). Built by `make qemu` (Makefile); checked by tests/boards/test_boards_manifests.py.
include("$(MPY_DIR)/extmod/asyncio")  # noqa: F821 - manifestfile.py API
package("cryo", base_path="../../firmware", opt=1)  # noqa: F821
# micropython-lib packages the firmware uses (host_tools/mpylib.py lists them)
require("hmac")  # noqa: F821
package("chips", base_path="../sim", opt=1)  # noqa: F821
for _name in (
    "machine",
    "machine_pin",
    "machine_rtc",
    "machine_timer",
    "vboard",
    "isr",
    "thermocouples",
    "valves",
    "pressure",
    "timers",
    "panel",
    "persist",
    "rootfs",
    "plant",
    "plant_params",
    "tissue",
    "cryogen",
    "native",
    "scenario",
    "shipped",
    "flash",
    "fastrun",
    "fastrun_firmware",
    "fastrun_figures",
):
    module(_name + ".py", base_path="../sim", opt=1)  # noqa: F821
# The board's ROM: run after every reset, before boot.py (real time only).
module("_boot.py", opt=1)  # noqa: F821
module("qemu_rom.py", opt=1)  # noqa: F821
