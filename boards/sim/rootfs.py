"""The virtual board's flash chip and its root filesystem.

``make_flash`` gives the board's flash: a FlashBlockDevice (flash.py) whose
power cut takes the whole board down with it; ``mount_root`` mounts it as
'/' (littlefs2) beside the host's firmware tree and boards/sim, the way a
board boots from its flash with its frozen modules beside it - or at
'/flash' with nothing at '/', the pyboard's layout (the board definition's
``flash_root``).
"""


def make_flash(path=None, block_size=4096, block_count=512, ram_at=None, erase=True):
    """The board's flash chip: a FlashBlockDevice (flash.py) whose power cut takes the
    whole board down (real time: the relay restarts the process; fast time:
    BoardReset('power') unwinds to the runner, past any ``except OSError``).

    ``ram_at``: address of memory outside the MicroPython heap that holds the
    chip's contents (an emulated Cortex-M board, boards/qemu-mps2), erased
    here (``erase``: only at power-up; after a soft reset the chip keeps
    its contents); the firmware's heap then carries only what a real board's does."""
    from flash import FlashBlockDevice, PowerCut

    class BoardFlash(FlashBlockDevice):
        def writeblocks(self, block_num, buf, offset=None):
            try:
                return FlashBlockDevice.writeblocks(self, block_num, buf, offset)
            except PowerCut:
                _power_lost()

        def ioctl(self, op, arg):
            try:
                return FlashBlockDevice.ioctl(self, op, arg)
            except PowerCut:
                _power_lost()

        def readblocks(self, block_num, buf, offset=0):
            try:
                return FlashBlockDevice.readblocks(self, block_num, buf, offset)
            except PowerCut:
                _power_lost()

        def reboot(self):
            self._dead = True
            return BoardFlash(
                self.path, self.block_size, self.block_count, _shared=(self._ram, self._file)
            )

    if ram_at is None:
        return BoardFlash(path, block_size, block_count)
    import uctypes

    ram = uctypes.bytearray_at(ram_at, block_size * block_count)
    if not erase:
        return BoardFlash(None, block_size, block_count, _shared=(ram, None))
    blank = b"\xff" * block_size
    mv = memoryview(ram)
    i = 0
    while i < block_count:
        mv[i * block_size : (i + 1) * block_size] = blank
        i += 1
    return BoardFlash(None, block_size, block_count, _shared=(ram, None))


def _power_lost():
    import vboard

    w = vboard.world
    if w is None:
        raise OSError(5)
    w.power_cut()


def mount_root(dev, rom=None, sim=None, at="/"):
    """Mount ``dev`` (littlefs2, formatted if blank) at ``at`` ('/', or
    '/flash' as the pyboard, the host's root then unmounted and nothing at
    '/'), the working directory there; the host's firmware tree at /rom and
    boards/sim at /sim (read-only by convention, like frozen modules).
    Returns the mounted VfsLfs2."""
    import os
    import sys

    import vfs

    # The micropython-lib modules a board image freezes (require() in its
    # manifest) are in build/mpylib beside boards/sim (host_tools/mpylib.py);
    # looked up while the host's filesystem is still the root.
    mpylib = None
    if sim:
        mpylib = sim.rstrip("/") + "/../../build/mpylib"
        try:
            os.stat(mpylib)
        except OSError:
            mpylib = None  # not set up: the import that needs it names the module
    fs = remount_root(dev, at)
    lib = "/lib" if at == "/" else at + "/lib"
    paths = ["", ".frozen", lib]
    if mpylib is not None:
        vfs.mount(vfs.VfsPosix(mpylib), "/mpylib")
        paths.insert(2, "/mpylib")
    if rom:
        vfs.mount(vfs.VfsPosix(rom), "/rom")
        paths.append("/rom")
    if sim:
        vfs.mount(vfs.VfsPosix(sim), "/sim")
        paths.append("/sim")
    sys.path[:] = paths
    os.chdir(at)
    # Firmware modules imported from host paths before the switch would
    # resolve their submodules there: import them again from /rom.
    for name in list(sys.modules):
        if name == "cryo" or name.startswith("cryo."):
            del sys.modules[name]
    return fs


def remount_root(dev, at="/"):
    """Mount the flash device at ``at`` (again, after a power cut), with
    nothing else at '/' (formatted if blank)."""
    import vfs

    for p in ("/", at):
        try:
            vfs.umount(p)
        except OSError:
            pass
    try:
        fs = vfs.VfsLfs2(dev)
    except OSError:
        vfs.VfsLfs2.mkfs(dev)
        fs = vfs.VfsLfs2(dev)
    vfs.mount(fs, at)
    return fs
