"""The byte stream under the command channel: a serial port or a pipe pair.

``open_serial`` opens a device path or any pyserial URL (a serial device,
a pty, ``socket://HOST:PORT``, ``rfc2217://…``) with a short read timeout
and an exclusive lock, and names what went wrong in one line;
:class:`FdSerial` gives a raw file-descriptor pair the same read/write.
"""

from __future__ import annotations

import os
import select

from host_tools.device import portlock
from host_tools.errors import DeviceError

DEFAULT_BAUD = 115200


class FdSerial:
    """Adapts a raw file descriptor pair (tests, pipes) to read/write."""

    def __init__(self, rfd, wfd):
        self.rfd, self.wfd = rfd, wfd

    def read(self, n):
        r, _, _ = select.select([self.rfd], [], [], 0.05)
        return os.read(self.rfd, n) if r else b""

    def write(self, data):
        return os.write(self.wfd, data)

    def close(self):
        pass


def open_serial(port: str, baudrate: int = DEFAULT_BAUD):
    """Open ``port`` (device path or pyserial URL) with a short read timeout."""
    import serial

    kw = {} if "://" in port else {"exclusive": True}
    if "://" not in port and not os.path.exists(port):
        raise DeviceError(
            f"no such port: {port} (is the board connected? `cryo sim` prints its port)"
        )
    try:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=0.05, write_timeout=2, **kw)
    except (serial.SerialException, OSError, ValueError) as e:
        text = str(e)
        if "exclusively lock" in text or "Resource temporarily unavailable" in text:
            raise DeviceError(portlock.busy_message(port, {})) from None
        if "://" in port:
            raise DeviceError(f"cannot connect to {port}: {e}") from None
        raise DeviceError(f"cannot open {port}: {e}") from None
