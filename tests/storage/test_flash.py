"""The virtual board's NOR flash (boards/sim/flash.py) under real MicroPython + littlefs."""

import pytest

SETUP = """
import vfs, os, micropython
from flash import FlashBlockDevice, PowerCut
def fresh(path=None, blocks=64):
    if path:
        try:
            os.remove(path)
        except OSError:
            pass
    return FlashBlockDevice(path, 4096, blocks)
def mount(dev):
    try:
        vfs.umount('/flash')
    except OSError:
        pass
    vfs.mount(vfs.VfsLfs2(dev), '/flash')
"""


@pytest.mark.parametrize("backing", ["ram", "file"])
def test_format_mount_persist_across_remounts(mpy, tmp_path, backing):
    path = repr(str(tmp_path / "flash.img")) if backing == "file" else "None"
    r = mpy.run(
        SETUP
        + """
d = fresh(%s)
vfs.VfsLfs2.mkfs(d)
mount(d)
with open('/flash/a.bin', 'wb') as f:
    f.write(bytes(range(256)) * 40)
os.mkdir('/flash/logs')
vfs.umount('/flash')
d2 = d.reboot()
mount(d2)
data = open('/flash/a.bin', 'rb').read()
result([sorted(os.listdir('/flash')), data == bytes(range(256)) * 40, d.dead, d2.dead])
"""
        % path
    )
    assert r == [["a.bin", "logs"], True, True, False]


def test_file_image_persists_across_processes(mpy, tmp_path):
    img = str(tmp_path / "flash.img")
    mpy.run(
        SETUP
        + """
d = fresh(%r, 512)
vfs.VfsLfs2.mkfs(d)
mount(d)
with open('/flash/cfg.json', 'w') as f:
    f.write('{"v": 2}')
vfs.umount('/flash')
d.close()
result(1)
"""
        % img
    )
    assert (tmp_path / "flash.img").stat().st_size == 2 * 1024 * 1024  # default 2 MiB
    r = mpy.run(
        SETUP
        + """
d = FlashBlockDevice(%r)
mount(d)
result(open('/flash/cfg.json').read())
"""
        % img
    )
    assert r == '{"v": 2}'


@pytest.mark.parametrize("backing", ["ram", "file"])
def test_callbacks_do_not_allocate(mpy, tmp_path, backing):
    path = repr(str(tmp_path / "flash.img")) if backing == "file" else "None"
    r = mpy.run(
        SETUP
        + """
d = fresh(%s, 16)
buf = bytearray(32)
for i in range(32):
    buf[i] = i
def cycle():
    d.ioctl(6, 3)
    d.writeblocks(3, buf, 64)
    d.readblocks(3, buf, 64)
    d.ioctl(4, 0)
    d.ioctl(5, 0)
    d.ioctl(3, 0)
assert_no_alloc(cycle, 20)
result(list(buf[:4]))
"""
        % path
    )
    assert r == [0, 1, 2, 3]


@pytest.mark.parametrize("backing", ["ram", "file"])
def test_nor_semantics_program_only_clears_bits(mpy, tmp_path, backing):
    path = repr(str(tmp_path / "flash.img")) if backing == "file" else "None"
    r = mpy.run(
        SETUP
        + """
d = fresh(%s, 4)
b = bytearray(2)
d.readblocks(1, b, 10)
erased = list(b)
d.writeblocks(1, bytearray([0xF0, 0x0F]), 10)
d.writeblocks(1, bytearray([0x3C, 0xFF]), 10)   # no implicit erase with offset
d.readblocks(1, b, 10)
programmed = list(b)
d.ioctl(6, 1)
d.readblocks(1, b, 10)
result([erased, programmed, list(b), d.ops])
"""
        % path
    )
    assert r == [[255, 255], [0x30, 0x0F], [255, 255], 3]


@pytest.mark.parametrize("tear", [False, True])
def test_power_cut_raises_and_stays_dead(mpy, tear):
    r = mpy.run(
        SETUP
        + """
d = fresh(None, 4)
d.cut_power_after(1, tear=%s)
d.writeblocks(0, bytearray(b'\\x00' * 8), 0)      # op 1 allowed
out = []
try:
    d.writeblocks(0, bytearray(b'\\x00' * 8), 100)  # op 2: power dies
except PowerCut:
    out.append('cut')
try:
    d.readblocks(0, bytearray(4), 0)
except PowerCut:
    out.append('dead')
d2 = d.reboot()
b = bytearray(8)
d2.readblocks(0, b, 100)
out.append(list(b))
result(out)
"""
        % tear
    )
    expect = [0, 0, 0, 0, 255, 255, 255, 255] if tear else [255] * 8
    assert r == ["cut", "dead", expect]


def test_power_cut_at_every_op_keeps_filesystem_mountable(mpy):
    r = mpy.run(
        SETUP
        + """
d = fresh(None, 32)
vfs.VfsLfs2.mkfs(d)
mount(d)
with open('/flash/old.txt', 'w') as f:
    f.write('old')
def update():
    with open('/flash/new.tmp', 'w') as f:
        f.write('new' * 500)
    os.rename('/flash/new.tmp', '/flash/old.txt')
vfs.umount('/flash')
base = bytearray(d.image())
d = d.reboot()
mount(d)
update()
n = d.ops
outcomes = {}
for tear in (False, True):
    for cut in range(n + 1):
        dev = FlashBlockDevice(None, 4096, 32)
        dev._ram[:] = base
        mount(dev)
        dev.cut_power_after(cut, tear)
        try:
            update()
        except PowerCut:
            pass
        try:
            vfs.umount('/flash')
        except OSError:
            pass
        dev = dev.reboot()
        mount(dev)
        txt = open('/flash/old.txt').read()
        k = 'old' if txt == 'old' else ('new' if txt == 'new' * 500 else 'corrupt')
        outcomes[k] = outcomes.get(k, 0) + 1
result([n, outcomes])
"""
    )
    n, outcomes = r
    assert n > 3
    assert outcomes.get("corrupt", 0) == 0
    assert outcomes["old"] > 0 and outcomes["new"] > 0
