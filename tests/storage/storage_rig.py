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
