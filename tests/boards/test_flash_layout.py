"""Where the board's flash is mounted comes from its definition
(``flash_root``; the pyboard's _boot.py mounts its internal flash at
/flash), and ``cryo.board.mount_flash`` checks the mount table instead of
trusting ``os.statvfs``, which also answers for a port's virtual root.
A wrong mount point stops storage with a message naming both places, after
boot.py has already closed the valves."""

import json

import boardcheck
import mpyrun

BOOT = str(boardcheck.FIRMWARE / "boot.py")


def test_a_definition_naming_the_wrong_mount_point_leaves_the_valves_closed(mpy):
    proc = mpy.run_raw(
        """
from mpytest import result
import sys
sys.path.append(".frozen")
import vboard
w = vboard.get()
import cryo.board as B
b = B.Board(w.board)
b.valve_pin.value(1)   # energised, as a soft reset in the middle of a freeze leaves them
b.master_pin.value(1)
w.board["flash_root"] = "/flash"   # the pyboard's layout on a board that mounts at /
g = {}
exec(open(%r).read(), g)
result([g["BOOT"]["valves_closed"], g["BOOT"]["flash"], w.levels[w.valve_id],
        w.levels[w.master_id]])
"""
        % BOOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = [ln for ln in proc.stdout.split("\n") if ln.startswith(mpyrun._MARK)]
    assert json.loads(out[-1][len(mpyrun._MARK) :]) == [True, None, 0, 0]
    assert (
        "boot: flash not mounted: no filesystem mounted at /flash (mounted: /): the board "
        "definition's flash_root must name where this port mounts its flash" in proc.stdout
    )


def test_mount_flash_reads_the_mount_table_not_statvfs(mpy):
    """The pyboard's case: the flash at /flash and nothing at /. statvfs("/")
    answers for the virtual root, mount_flash("/") must not be fooled."""
    out = mpy.run(
        """
import os, vfs
import cryo.board as B
from flash import FlashBlockDevice
dev = FlashBlockDevice(None, 4096, 16)
vfs.VfsLfs2.mkfs(dev)
try:
    vfs.umount("/")
    vfs.mount(vfs.VfsLfs2(dev), "/flash")
    try:
        os.statvfs("/")
        statvfs_answers = True
    except OSError:
        statvfs_answers = False
    try:
        B.mount_flash("/")
        wrong = "accepted"
    except B.BoardError as e:
        wrong = str(e)
    right = B.mount_flash("/flash")
finally:
    vfs.umount("/flash")
    vfs.mount(vfs.VfsPosix("/"), "/")
result([statvfs_answers, wrong, right])
"""
    )
    statvfs_answers, wrong, right = out
    assert wrong == (
        "no filesystem mounted at / (mounted: /flash): the board definition's flash_root "
        "must name where this port mounts its flash"
    )
    assert right == "mounted"
    assert statvfs_answers  # the trap the mount table avoids
