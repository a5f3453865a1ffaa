"""MicroPython-side rig for the storage power-cut tests (runs inside the unix port).

A RAM ``FlashBlockDevice`` with littlefs mounted at ``/flash``. ``cut_sweep``
replays an action once per flash operation it performs, cutting power at
that operation (clean or torn), "reboots" (fresh device on the surviving
bytes, fresh littlefs mount) and hands the result to a checker.
"""

import os

import vfs
from flash import FlashBlockDevice, PowerCut

MOUNT = "/flash"
BLOCK = 4096


def unmount():
    try:
        vfs.umount(MOUNT)
    except OSError:
        pass


_current = [None]


def mount(dev):
    unmount()
    vfs.mount(vfs.VfsLfs2(dev), MOUNT)
    _current[0] = dev


def remount():
    """Unmount and mount the current device again (re-reads from flash)."""
    mount(_current[0])


def fresh(blocks=24):
    dev = FlashBlockDevice(None, BLOCK, blocks)
    vfs.VfsLfs2.mkfs(dev)
    mount(dev)
    return dev


def snapshot(dev):
    """Unmount and copy the image (the 'factory' state a sweep restores)."""
    unmount()
    return bytearray(dev.image())


def restore(image, blocks=24):
    dev = FlashBlockDevice(None, BLOCK, blocks)
    dev._ram[:] = image
    mount(dev)
    return dev


def count_ops(image, action, blocks=24):
    dev = restore(image, blocks)
    state = {}
    action(state)
    n = dev.ops
    unmount()
    return n, state


def cut_sweep(image, action, check, n_ops, blocks=24, tears=(False, True)):
    """Cut power at every op 0..n_ops of ``action``; ``check`` each outcome.

    ``action(state)`` does the work and keeps in ``state`` what it had
    committed when the power died; ``check(state, cut, tear)`` runs after
    the reboot (fresh mount) and returns a failure string or None.
    Returns ``[cuts tried, failures list]``.
    """
    failures = []
    tried = 0
    for tear in tears:
        cut = 0
        while cut <= n_ops:
            dev = restore(image, blocks)
            dev.cut_power_after(cut, tear)
            state = {}
            died = False
            try:
                action(state)
            except PowerCut:
                died = True
            unmount()
            mount(dev.reboot())
            msg = check(state, cut, tear, died)
            if msg:
                failures.append("cut %d tear %s: %s" % (cut, tear, msg))
            tried += 1
            unmount()
            cut += 1
    return [tried, failures[:5]]


def listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


class CountedFile:
    """A real open file that records each call in ``calls``.

    Entries: ``['open', mode]``, ``['seek', pos]``, ``['readinto', n read]``,
    ``['write', n]``, ``['flush']``, ``['close']``. Storage classes open their
    files through one ``_open(path, mode)`` method; a test subclass returns
    ``CountedFile.open(path, mode, calls)`` there to count real file I/O.
    """

    def __init__(self, f, calls):
        self.f = f
        self.calls = calls

    @staticmethod
    def open(path, mode, calls):
        calls.append(["open", mode])
        return CountedFile(open(path, mode), calls)

    def seek(self, pos, whence=0):
        self.calls.append(["seek", pos])
        return self.f.seek(pos, whence)

    def readinto(self, buf):
        n = self.f.readinto(buf)
        self.calls.append(["readinto", n or 0])
        return n

    def write(self, buf):
        self.calls.append(["write", len(buf)])
        return self.f.write(buf)

    def flush(self):
        self.calls.append(["flush"])
        return self.f.flush()

    def close(self):
        self.calls.append(["close"])
        return self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def io_counts(calls):
    """Totals of a ``CountedFile`` call list (reads, bytes read, writes, ...)."""
    out = {"reads": 0, "bytes": 0, "writes": 0, "wbytes": 0, "flushes": 0}
    for c in calls:
        if c[0] == "readinto":
            out["reads"] += 1
            out["bytes"] += c[1]
        elif c[0] == "write":
            out["writes"] += 1
            out["wbytes"] += c[1]
        elif c[0] == "flush":
            out["flushes"] += 1
    return out


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)
