# Freeze the controller into the MicroPython firmware image for this board:
#   make -C ports/esp32 BOARD=ESP32_GENERIC_S3 FROZEN_MANIFEST=$PWD/boards/esp32s3/manifest.py
# Frozen bytecode runs from flash, so the firmware's bytecode (~100 KB of
# .mpy) leaves the heap (docs/boards.md, "Heap"). opt=1 strips asserts; the
# firmware has none (tests/boards/test_boards_frozen.py). boot.py, main.py and
# /board.json stay on the filesystem. Checked by tests/boards/test_boards_manifests.py.
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821 - manifestfile.py API
package("cryo", base_path="../../firmware", opt=1)  # noqa: F821
# micropython-lib packages the firmware uses (host_tools/mpylib.py lists them)
require("hmac")  # noqa: F821
