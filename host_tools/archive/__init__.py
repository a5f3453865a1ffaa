"""The pulled archive: its one writer (``pull``), the index of what was verified, and the readers ``logs`` and the report share (none of them imports the device layer)."""
