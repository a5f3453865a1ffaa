"""Emulated NOR flash for the virtual board: a littlefs2 block device.

``FlashBlockDevice`` implements MicroPython's *extended* block-device
protocol (``docs/library/vfs.rst``, AbstractBlockDev), which ``vfs.VfsLfs2``
requires: ``readblocks(n, buf, offset)`` / ``writeblocks(n, buf, offset)``
at any offset and length, and ``ioctl(op, arg)`` with op 6 = erase block.

NOR semantics, like the SPI/QSPI flash on the real boards:

* erase (ioctl 6) sets a whole block to 0xFF;
* programming (``writeblocks`` with an offset) can only clear bits: the
  stored byte becomes ``old & new``. It never erases implicitly (the
  protocol forbids it when an offset is given);
* ``writeblocks(n, buf)`` without offset is the *simple* protocol: erase
  then program whole blocks.

Backing store: a file (``path``; created erased if missing, so an image
persists across re-mounts and processes) or RAM (``path=None``).

The chip's unique id: a flash chip carries a factory-programmed unique id
outside its memory array (Winbond W25Q16JV datasheet, "Read Unique ID
Number (4Bh)"; the RP2040's ``machine.unique_id()`` is that id). An image
file keeps it after the array: ``ID_MAGIC`` then ``ID_LEN`` bytes, written by
the host when the image is made (``host_tools.sim.sim_uid``). No block
reaches it, so littlefs, erase and a power cut never change it; the image
and its id are one file, created and deleted together.

Power-loss simulation: ``cut_power_after(n_ops, tear=False)`` lets
``n_ops`` more program/erase operations complete; the next one raises
:class:`PowerCut` and the device stays dead (every later call raises too).
With ``tear=True`` that last operation is applied partially first (the
first half of a program lands, or the first half of an erased block is
0xFF): a torn write, as when the supply collapses mid-page. The backing
store then holds exactly what a real chip would hold. ``reboot()`` returns
a fresh device on the same store (the "after power-up" device); the dead
object keeps refusing, so finalisers of files opened on the old mount can
never write stale state into the new one.

Allocation-free callbacks (micropython.md fact 10): littlefs may call the
block device with the heap locked (GC finalisers closing abandoned files),
so ``readblocks``/``writeblocks``/``ioctl`` use index loops, preallocated
buffers and a preallocated exception - no slices, no ``range``.
"""

from array import array

_OP_INIT = 1
_OP_SHUTDOWN = 2
_OP_SYNC = 3
_OP_BLOCK_COUNT = 4
_OP_BLOCK_SIZE = 5
_OP_ERASE = 6
_ERASED = 0xFF

ID_MAGIC = b"FLASH-ID"  # after the array in an image file: the chip's unique id follows
ID_LEN = 6  # bytes of the id (machine.unique_id() of the virtual board)
ID_TRAILER = len(ID_MAGIC) + ID_LEN  # an image file: block_size * block_count + this


class PowerCut(OSError):
    """The simulated supply failed during (or before) a flash operation."""


class FlashBlockDevice:
    """NOR-like flash with ``block_count`` blocks of ``block_size`` bytes.

    ``path``: image file (persisted); ``None``: RAM only. ``ops`` counts
    program and erase operations (reads are free), ``reads`` the reads: a
    test counts the operations of an action once, then cuts at each one.
    ``erases[b]`` counts erases of block ``b`` (wear; not persisted).
    """

    def __init__(self, path=None, block_size=4096, block_count=512, _shared=None):
        if block_size <= 0 or block_size & (block_size - 1):
            raise ValueError("block_size must be a power of two, got %r" % (block_size,))
        if block_count < 2:
            raise ValueError("block_count must be >= 2, got %r" % (block_count,))
        self.path = path
        self.block_size = block_size
        self.block_count = block_count
        self.size = block_size * block_count
        self.ops = 0
        self.reads = 0
        self.erases = array("I", bytes(4 * block_count))  # per-block erase count (wear)
        self._budget = -1  # -1: unlimited
        self._tear = False
        self._dead = False
        self._cut = PowerCut(5, "simulated power cut")  # preallocated: raised with heap locked
        self._one = bytearray(1)
        self._ff = bytearray(block_size)
        i = 0
        while i < block_size:
            self._ff[i] = _ERASED
            i += 1
        if _shared is not None:
            self._ram, self._file = _shared
        elif path is None:
            self._ram = bytearray(self.size)
            self._file = None
            self._fill_ram(0, self.size)
        else:
            self._ram = None
            self._file = self._open_image(path)

    # -- construction helpers (may allocate; never called from littlefs) --

    def _fill_ram(self, start, end):
        ram = self._ram
        while start < end:
            ram[start] = _ERASED
            start += 1

    def _open_image(self, path):
        try:
            f = open(path, "r+b")
        except OSError:
            f = open(path, "w+b")
        f.seek(0, 2)
        have = f.tell()
        if have % self.block_size == ID_TRAILER and have > ID_TRAILER:
            f.seek(have - ID_TRAILER)
            if f.read(len(ID_MAGIC)) == ID_MAGIC:  # the chip's id, after the array
                have -= ID_TRAILER
                if have != self.size:  # extending would write over the id
                    f.close()
                    raise ValueError(
                        "flash image %s holds %d blocks, block_count is %d"
                        % (path, have // self.block_size, self.block_count)
                    )
            f.seek(have)
        if have > self.size:
            f.close()
            raise ValueError(
                "flash image %s holds %d bytes, larger than block_size*block_count = %d"
                % (path, have, self.size)
            )
        while have < self.size:  # extend with erased blocks
            f.write(self._ff)
            have += self.block_size
        f.flush()
        return f

    def reboot(self):
        """The device after power returns: same contents, fresh counters.

        This object stays dead; use the returned one for the next mount.
        """
        self._dead = True
        dev = FlashBlockDevice(
            self.path, self.block_size, self.block_count, _shared=(self._ram, self._file)
        )
        return dev

    def close(self):
        """Release the image file (file-backed devices)."""
        self._dead = True
        if self._file is not None:
            self._file.close()
            self._file = None

    def image(self):
        """A copy of the whole flash contents (bytes; allocates - tests only)."""
        if self._ram is not None:
            return bytes(self._ram)
        self._file.seek(0)
        return self._file.read(self.size)

    # -- power-cut control --

    def cut_power_after(self, n_ops, tear=False):
        """Let ``n_ops`` more program/erase ops succeed; the next raises PowerCut."""
        if n_ops < 0:
            raise ValueError("n_ops must be >= 0, got %r" % (n_ops,))
        self._budget = n_ops
        self._tear = bool(tear)

    @property
    def dead(self):
        """True once power has been cut (every access raises PowerCut)."""
        return self._dead

    def _spend(self):
        # True when this op is the one the power dies in.
        if self._dead:
            raise self._cut
        if self._budget < 0:
            return False
        if self._budget == 0:
            self._dead = True
            return True
        self._budget -= 1
        return False

    # -- block-device protocol (allocation-free) --

    def readblocks(self, block_num, buf, offset=0):
        if self._dead:
            raise self._cut
        self.reads += 1
        pos = block_num * self.block_size + offset
        n = len(buf)
        if pos < 0 or pos + n > self.size:
            return -5  # EIO: outside the device
        ram = self._ram
        if ram is not None:
            i = 0
            while i < n:
                buf[i] = ram[pos + i]
                i += 1
        else:
            self._file.seek(pos)
            self._file.readinto(buf)
        return 0

    def writeblocks(self, block_num, buf, offset=None):
        if offset is None:
            # Simple protocol: whole blocks, erase first.
            n = len(buf)
            blk = 0
            while blk * self.block_size < n:
                r = self.ioctl(_OP_ERASE, block_num + blk)
                if r:
                    return r
                blk += 1
            offset = 0
        pos = block_num * self.block_size + offset
        n = len(buf)
        if pos < 0 or pos + n > self.size:
            return -5
        if self._spend():
            if self._tear:
                self._program(pos, buf, n >> 1)
            raise self._cut
        self.ops += 1
        self._program(pos, buf, n)
        return 0

    def _program(self, pos, buf, n):
        # NOR program: bits only go 1 -> 0 (stored = old & new).
        ram = self._ram
        i = 0
        if ram is not None:
            while i < n:
                ram[pos + i] &= buf[i]
                i += 1
            return
        f = self._file
        one = self._one
        erased = True
        f.seek(pos)
        while i < n:
            f.readinto(one)
            if one[0] != _ERASED:
                erased = False
                break
            i += 1
        if erased and n == len(buf):
            f.seek(pos)
            f.write(buf)  # fast path: programming erased flash stores buf as is
            return
        i = 0
        while i < n:  # byte-wise AND (rare: reprogramming, or a torn prefix)
            f.seek(pos + i)
            f.readinto(one)
            one[0] &= buf[i]
            f.seek(pos + i)
            f.write(one)
            i += 1

    def _erase(self, block, length):
        pos = block * self.block_size
        ram = self._ram
        if ram is not None:
            i = 0
            while i < length:
                ram[pos + i] = _ERASED
                i += 1
            return
        f = self._file
        f.seek(pos)
        if length == self.block_size:
            f.write(self._ff)
            return
        one = self._one
        one[0] = _ERASED
        i = 0
        while i < length:
            f.write(one)
            i += 1

    def ioctl(self, op, arg):
        if op == _OP_BLOCK_COUNT:
            return self.block_count
        if op == _OP_BLOCK_SIZE:
            return self.block_size
        if op == _OP_ERASE:
            if arg < 0 or arg >= self.block_count:
                return -5
            if self._spend():
                if self._tear:
                    self._erase(arg, self.block_size >> 1)
                raise self._cut
            self.ops += 1
            self.erases[arg] += 1
            self._erase(arg, self.block_size)
            return 0
        if op == _OP_SYNC:
            if self._dead:
                raise self._cut
            if self._file is not None:
                self._file.flush()
            return 0
        if op == _OP_INIT or op == _OP_SHUTDOWN:
            return 0
        return None
