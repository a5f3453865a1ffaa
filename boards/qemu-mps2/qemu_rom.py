"""The emulated board in real time: what its silicon and ROM do before boot.py.

``_boot.py`` calls :func:`boot` when the ROMFS holds ``realtime.json``
(``host_tools.virtual.qemu`` writes it with the plant, scenario, seed and
flash size of ``cryo sim --board qemu-mps2``):

1. the world (plant, emulated thermocouple chips, pins) on the board's own
   clock: ``BoardClock`` reads ``ticks_ms``, which QEMU drives from the host
   clock when it runs without ``-icount`` (docs/boards.md, "Time base");
2. the flash chip in the PSRAM above the ROMFS (``FLASH_AT``), erased at
   power-up only: a soft reset keeps its files, as a real chip does;
3. the front panel on UART1 (below);
4. littlefs mounted at ``/``, and boot.py / main.py installed on it from the
   ROMFS at power-up, as ``cryo flash`` puts them on a real board's flash;
   ``sys.path`` puts the frozen modules before the flash.

Front panel: the technician's hands arrive on the second UART of the
MPS2 (CMSDK APB UART1 at 0x40005000, Arm DDI 0479 / AN385), one byte per
panel state: ``0x40 | present << 3 | levels``, bit 0 footswitch, bit 1
handpiece, bit 2 e-stop loop closed. The host relay sends a byte whenever
``cryo sim panel`` changes the panel file. The world reads one byte per
poll (100 ms), so every state is held at least one poll, as a press is.
A power cycle is a new QEMU with the flash chip's contents loaded back
(``host_tools/virtual/qemu.py``): memory that is not 0 at ``FLASH_AT`` is kept.
"""

import json
import sys
import time

import uctypes

FLASH_AT = 0x21400000  # after the 4 MB ROMFS partition, in the 16 MB PSRAM
# Where the host's loader puts a flash image (--flash FILE, a power cycle):
# QEMU writes loader data again at every machine reset, so it cannot go to
# FLASH_AT itself (a reset would undo every write since power-up); copied
# there at power-up only.
STAGE_AT = 0x21800000
_MARK_AT = FLASH_AT - 16  # last bytes of the ROMFS partition: what survives a soft reset
_MAGIC = 0x43525931  # "CRY1"
_UART1 = 0x40005000
_STATE_RXFULL = 2
_CTRL_TX_RX = 3
_PANEL_KEYS = ("footswitch", "handpiece", "estop")

_MARK = {
    "magic": uctypes.UINT32 | 0,
    "t0": uctypes.UINT32 | 4,  # ticks_ms at power-up (scenario time, RTC)
    "cause": uctypes.UINT32 | 8,  # a hard reset the host was asked for (_CAUSES)
    "up_ms": uctypes.UINT32 | 12,  # ms since power-up when it was asked
}
_CAUSES = {b"R": 1, b"P": 2}  # control lines that end in a hard reset by the host
_CAUSE_NAMES = (None, "reset", "power")

_UART = {
    "data": uctypes.UINT32 | 0,
    "state": uctypes.UINT32 | 4,
    "ctrl": uctypes.UINT32 | 8,
    "bauddiv": uctypes.UINT32 | 16,
}


class UartPanel:
    """The front panel as the file-like object ``World.poll_panel`` reads:
    ``read()`` returns the inputs set by the latest byte as JSON text.

    It is also the world's control line (``World.ctrl``): ``W<ms>``/``F``
    (watchdog armed/fed), ``R`` (machine.reset) and ``P`` (flash power cut)
    go out on UART1's transmitter; for R and P the host resets the machine
    (QMP ``system_reset``: memory, so the flash, is kept) and the cause is
    left in the mark for the next boot."""

    def __init__(self, mark=None):
        self._mark = mark
        u = uctypes.struct(_UART1, _UART, uctypes.LITTLE_ENDIAN)
        u.bauddiv = 16  # the CMSDK UART transmits only with a divider >= 16
        u.ctrl = _CTRL_TX_RX
        self._u = u
        self._text = "{}"

    def seek(self, _pos):
        pass

    def read(self):
        u = self._u
        if u.state & _STATE_RXFULL:
            b = u.data & 0xFF
            if b & 0xC0 == 0x40:
                d = {}
                i = 0
                while i < 3:
                    if b & (8 << i):
                        d[_PANEL_KEYS[i]] = (b >> i) & 1
                    i += 1
                self._text = json.dumps(d)
        return self._text

    def write(self, data):
        cause = _CAUSES.get(bytes(data[:1]))
        m = self._mark
        if cause is not None and m is not None:
            # the machine reset restarts ticks_ms from 0: keep the time since power-up
            m.up_ms = time.ticks_diff(time.ticks_ms(), m.t0)
            m.cause = cause
        u = self._u
        for b in data:
            while u.state & 1:  # TXFULL
                pass
            u.data = b
        return len(data)


def boot(opts_path):
    """Build the world, mount the flash, install the scripts; returns the world."""
    import plant
    import scenario
    import vboard

    from cryo.clock import BoardClock

    with open(opts_path) as f:
        opts = json.load(f)
    clock = BoardClock()
    mark = uctypes.struct(_MARK_AT, _MARK, uctypes.LITTLE_ENDIAN)
    power_up = mark.magic != _MAGIC
    now = clock.ticks_ms()
    if power_up:
        mark.t0 = now
    elif mark.cause:
        mark.t0 = time.ticks_add(now, -mark.up_ms)
    board = vboard.load_board(opts.get("board"))
    w = vboard.install(
        vboard.World(
            board, plant.load(opts.get("plant") or "default"), int(opts.get("seed", 0)), clock
        )
    )
    cause = _CAUSE_NAMES[mark.cause] if mark.cause < 3 else None
    mark.cause = 0
    w.reset_cause = "power" if power_up else (cause or "soft")
    w.uid = opts.get("uid")  # the flash chip's id, from the host (machine.unique_id)
    # the RTC: the host's clock when it started the board, kept from power-up
    up_s = time.ticks_diff(now, mark.t0) // 1000
    w.rtc_base_s = int(opts.get("rtc_epoch_s", 946684800)) + up_s - now // 1000
    uart = UartPanel(mark)
    w.attach_panel(uart)
    w.ctrl = uart
    if opts.get("scenario"):
        # scenario time counts from the power-up, not from this (re)start
        w.scenario = scenario.Scenario(
            scenario.load(opts["scenario"]), mark.t0, clock, None if power_up else now
        )
    import machine  # noqa: F401 - the virtual board's machine, before the firmware's

    # A new QEMU's memory reads 0: at power-up the chip is the image the host
    # staged (power cycle, --flash FILE), else erased
    size = 4096 * int(opts.get("flash_blocks", 512))
    staged = power_up and uctypes.bytearray_at(STAGE_AT, 4) != b"\0\0\0\0"
    if staged:
        uctypes.bytearray_at(FLASH_AT, size)[:] = uctypes.bytearray_at(STAGE_AT, size)
    blank = power_up and not staged
    dev = vboard.make_flash(None, 4096, size // 4096, FLASH_AT, blank)
    w.flash = dev
    vboard.mount_root(dev)
    # Frozen modules first: every import would otherwise look on the flash
    # first, and this flash chip is emulated in Python (seconds of boot).
    sys.path[:] = [".frozen", "", "/lib"]
    if power_up:
        for name in ("boot.py", "main.py"):
            with open("/rom/" + name, "rb") as src, open("/" + name, "wb") as dst:
                dst.write(src.read())
        mark.magic = _MAGIC
    return w
