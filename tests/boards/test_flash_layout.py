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


# The pyboard's layout on the virtual board: its flash (RAM, littlefs)
# mounted at /flash with nothing at "/" and the working directory there, as
# the stm32 port leaves it; the firmware tree at /rom. The world's built-in
# definition (machine.board_definition()) says flash_root "/", the one on
# the flash "/flash": boot.py can only mount and name the files right if
# it found /flash/board.json.
PYBOARD_BOOT = """
import sys, os, json
sys.path.append(".frozen")
import vboard
from flash import FlashBlockDevice
w = vboard.get()
d = dict(w.board)
d["flash_root"] = "/flash"
vboard.mount_root(FlashBlockDevice(None, 4096, 128), %(rom)r, %(sim)r, "/flash")
with open("/flash/board.json", "w") as f:
    json.dump(d, f)
os.chdir("/sim")   # boot.py must put the working directory back on the flash
g = {"__name__": "boot"}
exec(open("/rom/boot.py").read(), g)
from cryo import paths
booted = [g["BOOT"]["valves_closed"], g["BOOT"]["flash"], paths.root(), os.getcwd()]
g["__name__"] = "main"
exec(open("/rom/main.py").read(), g)
board, ctl = g["build"]()
saved = ctl.save_config("engineer")["path"]
ctl.safe()
def tree(d):
    out = []
    for e in os.ilistdir(d):
        p = d.rstrip("/") + "/" + e[0]
        out.append(p + ("/" if e[1] == 0x4000 else ""))
        if e[1] == 0x4000 and not p.startswith(("/rom", "/sim")):
            out.extend(tree(p))
    return sorted(out)
result([booted, saved, tree("/"), ctl.log.root, ctl.status()["log_budget"],
        board.name == d["name"], w.levels[w.valve_id], w.levels[w.master_id]])
"""


def test_boot_and_main_name_every_file_under_the_pyboards_flash(mpy):
    booted, saved, tree, log_root, budget, same_board, valve, master = mpy.run(
        PYBOARD_BOOT % {"rom": str(boardcheck.FIRMWARE), "sim": str(mpyrun.SIM)}
    )
    assert booted == [True, "mounted", "/flash", "/flash"]
    assert saved == "/flash/config.json" and log_root == "/flash/logs" and same_board
    assert valve == 0 and master == 0
    # nothing at "/" but the mount points; the firmware's files on the flash
    assert [p for p in tree if p.rstrip("/").count("/") == 1] == [
        "/flash/",
        "/mpylib/",  # micropython-lib's modules, frozen on a real board
        "/rom/",
        "/sim/",
    ]
    for name in ("board.json", "config.json", "logs/", "audit.log", "events.bin", "safety.bin"):
        assert "/flash/" + name in tree, (name, tree)
    # 512 KiB of flash: the 1 MiB default budget is cut, and says so
    assert budget.startswith("log budget 1024 KiB (log.max_kib) cut to ") and budget.endswith(
        "the flash holds 512 KiB, 64 KiB kept for the other files"
    )


def _pyboard_definition(tmp_path):
    d = json.loads((mpyrun.SIM / "board.json").read_text())
    d["flash_root"] = "/flash"
    p = tmp_path / "pyboard-layout.json"
    p.write_text(json.dumps(d))
    return p


def test_a_treatment_on_the_pyboard_layout_is_logged_under_flash_and_pulled(tmp_path, mpy):
    """The fast runner boots as boot.py does (mount checked, root set): a
    treatment's log lands under /flash/logs of the image, and the host's
    pull, whose raw REPL starts in /flash, reads it with names from there."""
    from host_tools import sim
    from host_tools.archive.pull import pull
    from host_tools.device.connect import Session
    from host_tools.virtual.port import VirtualPort

    img = tmp_path / "flash.img"
    s = sim.run_fast(
        scenario="treatment",
        duration_s=30,
        flash=img,
        flash_kib=1024,
        board=_pyboard_definition(tmp_path),
    )
    assert s["errors"] == [] and s["status"]["phase"] == "FREEZE", s["notes"]
    with (
        VirtualPort(image=img, block_count=256) as vp,
        Session(vp.port, stop_firmware=False) as ses,
    ):
        assert ses.eval("__import__('os').getcwd()") == "/flash"
        got = pull(ses, tmp_path / "archive", fallback_serial="pyboard-layout")
    assert got["verify"]["ok"], got["verify"]
    assert any(n.startswith("seg") for n in got["files"]), got["files"]
    assert set(got["device_files"]) == {"events.bin", "safety.bin"}
