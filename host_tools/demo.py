"""`make demo`: the main job on the virtual board (grows with the project)."""

import sys

from host_tools import FIRMWARE_DIR


def main():
    sys.path.insert(0, str(FIRMWARE_DIR))
    print("cryo demo: firmware tree at", FIRMWARE_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
