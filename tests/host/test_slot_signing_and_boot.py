"""On-device app integrity: HMAC-SHA256, the manifest, A/B slot selection.

Runs the firmware's cryo.app under the real MicroPython unix port with a
local directory (or a littlefs flash image, boards/sim/flash.py) as the flash root.
"""

import hashlib
import hmac
import json

import pytest

from cryo.app import manifest
from cryo.app.hmac256 import hmac_sha256

KEY = bytes(range(32))


def test_micropython_libs_hmac_matches_cpython_on_micropython(mpy):
    import random

    rng = random.Random(8)
    cases = [(b"", b""), (b"k", b"msg"), (b"x" * 64, b"y" * 1000), (b"z" * 100, b"\x00\xff" * 77)]
    # key lengths across the 64-byte block (hashed above it), message lengths
    # across SHA-256's padding boundaries (55/56, 63/64/65)
    for klen in (0, 1, 31, 32, 63, 64, 65, 127, 128, 129):
        for mlen in (0, 55, 56, 63, 64, 65, 119, 120, 300):
            if rng.random() < 0.5:
                cases.append((rng.randbytes(klen), rng.randbytes(mlen)))
    got = mpy.run(
        """
import binascii
import hmac
from cryo.app.hmac256 import hmac_sha256, new
out = []
for k, m in %r:
    h = new(k)
    h.update(m[: len(m) // 2])
    h.update(m[len(m) // 2 :])
    out.append([binascii.hexlify(hmac_sha256(k, m)).decode(), h.hexdigest(), hmac.__file__])
result(out)
"""
        % (cases,)
    )
    for (k, m), (one, inc, where) in zip(cases, got):
        want = hmac.new(k, m, hashlib.sha256).hexdigest()
        assert one == want and inc == want
        # micropython-lib's module (build/mpylib, frozen on the boards), not a copy of ours
        assert where.endswith("mpylib/hmac.py"), where
        assert hmac_sha256(k, m).hex() == want  # the same module under CPython


def _files(d):
    return {
        "cryo/__init__.mpy": (hashlib.sha256(d["cryo/__init__.mpy"]).hexdigest(), 3),
    }


def test_manifest_round_trip_and_tamper():
    files = {"b.mpy": ("00" * 32, 4), "a.mpy": ("11" * 32, 5)}
    meta = {"version": "1.0", "mpy": 6, "arch": None, "board": "sim"}
    text = manifest.sign(KEY, meta, files)
    assert text.splitlines()[5].startswith("file a.mpy")  # sorted
    assert manifest.authentic(KEY, text)
    m, f, _, _ = manifest.parse(text)
    assert f == files and m["version"] == "1.0" and m["arch"] is None
    assert not manifest.authentic(b"other key 123456", text)
    assert not manifest.authentic(KEY, text.replace("1.0", "1.1"))
    assert not manifest.authentic(KEY, "garbage")
    with pytest.raises(ValueError, match="space"):
        manifest.body(meta, {"a b.mpy": ("0", 1)})


def make_slot(root, slot, files, key=KEY, version="1"):
    d = root / "app" / slot
    for p, data in files.items():
        (d / p).parent.mkdir(parents=True, exist_ok=True)
        (d / p).write_bytes(data)
    mf = {p: (hashlib.sha256(b).hexdigest(), len(b)) for p, b in files.items()}
    meta = {"version": version, "mpy": 6, "arch": None, "board": "sim"}
    (d / "manifest").write_text(manifest.sign(key, meta, mf))


def boot(mpy, root):
    return mpy.run(
        """
from cryo.app import select_app
r = select_app(%r, add_path=False)
try:
    r['fault_file'] = open(%r).read()
except OSError:
    r['fault_file'] = None
result(r)
"""
        % (str(root), str(root / "app" / "fault"))
    )


@pytest.fixture
def flash_root(tmp_path):
    root = tmp_path / "flash"
    (root / "app").mkdir(parents=True)
    (root / "app" / "key").write_bytes(KEY)
    make_slot(root, "a", {"m.py": b"V = 'a'\n", "pkg/x.py": b"X = 1\n"}, version="1")
    make_slot(root, "b", {"m.py": b"V = 'b'\n", "pkg/x.py": b"X = 2\n"}, version="2")
    (root / "app" / "active").write_text("b")
    return root


def test_boot_selects_the_authentic_active_slot(mpy, flash_root):
    r = boot(mpy, flash_root)
    assert (r["slot"], r["version"], r["fault"], r["fault_file"]) == ("b", "2", 0, None)
    want = hashlib.sha256((flash_root / "app" / "b" / "manifest").read_bytes()).hexdigest()
    assert r["manifest_sha256"] == want


def test_boot_refuses_tampered_file_and_falls_back_with_fault(mpy, flash_root):
    (flash_root / "app" / "b" / "pkg" / "x.py").write_bytes(b"X = 666\n")
    r = boot(mpy, flash_root)
    assert r["slot"] == "a" and r["fault"] == 1
    assert "pkg/x.py does not match" in r["reason"]
    assert r["fault_file"].startswith("1 ")


def test_boot_refuses_manifest_signed_with_another_key(mpy, flash_root):
    make_slot(flash_root, "b", {"m.py": b"evil\n"}, key=b"attacker key 0123456789abcdef")
    r = boot(mpy, flash_root)
    assert r["slot"] == "a" and r["fault"] == 1 and "not authentic" in r["reason"]


def test_boot_with_no_authentic_slot_stays_safe(mpy, flash_root):
    (flash_root / "app" / "a" / "m.py").unlink()
    (flash_root / "app" / "b" / "manifest").write_text("cryo-manifest 1\nhmac 00\n")
    r = boot(mpy, flash_root)
    assert r["slot"] is None and r["fault"] == 2
    assert "m.py is missing" in r["reason"]


def test_boot_without_an_app_is_not_a_fault(mpy, tmp_path):
    r = boot(mpy, tmp_path)
    assert r["slot"] is None and r["fault"] == 0


def test_selected_slot_is_what_imports(mpy, flash_root):
    got = mpy.run(
        """
import sys
from cryo.app import select_app
r = select_app(%r)
import m, pkg.x
result([r['slot'], m.V, pkg.x.X, sys.path[0]])
"""
        % str(flash_root)
    )
    assert got[:3] == ["b", "b", 2] and got[3].endswith("app/b")


SWITCH = """
import sys, os, vfs, hashlib, binascii
from flash import FlashBlockDevice, PowerCut
from cryo.app import slots, manifest
KEY = bytes(range(32))
def slot_files(ver):
    return {'main.py': ('V = %%r\\n' %% ver).encode() * 40, 'cryo/x.py': ('X = %%r\\n' %% ver).encode() * 90}
def write_slot(slot, ver):
    files = slot_files(ver)
    slots_dir = 'app/' + slot
    for d in ('app', slots_dir, slots_dir + '/cryo'):
        try:
            os.mkdir(d)
        except OSError:
            pass
    try:
        os.remove(slots_dir + '/manifest')
    except OSError:
        pass
    mf = {}
    for p in files:
        with open(slots_dir + '/' + p, 'wb') as f:
            f.write(files[p])
        mf[p] = (binascii.hexlify(hashlib.sha256(files[p]).digest()).decode(), len(files[p]))
    meta = {'version': ver, 'mpy': 6, 'arch': None, 'board': 'sim'}
    slots.write_atomic(slots_dir + '/manifest', manifest.sign(KEY, meta, mf))
def deploy(ver):
    cur = slots.active_slot('')
    t = slots.other(cur) if cur else 'a'
    write_slot(t, ver)
    slots.set_active('', t)
def mount(bd):
    vfs.mount(vfs.VfsLfs2(bd), '/flash')
    os.chdir('/flash')
def umount():
    os.chdir('/')
    vfs.umount('/flash')
bd = FlashBlockDevice(None, block_size=4096, block_count=64)
vfs.VfsLfs2.mkfs(bd)
mount(bd)
os.mkdir('app')
with open('app/key', 'wb') as f:
    f.write(KEY)
deploy('1')
deploy('2')
umount()
base = bd.ops
mount(bd)
deploy('3')
umount()
n_ops = bd.ops - base
out = []
cut = 0
while cut <= n_ops:
    # fresh copy of the two-deploy image, then cut the power during deploy 3
    bd2 = FlashBlockDevice(None, block_size=4096, block_count=64)
    vfs.VfsLfs2.mkfs(bd2)
    mount(bd2)
    os.mkdir('app')
    with open('app/key', 'wb') as f:
        f.write(KEY)
    deploy('1')
    deploy('2')
    umount()
    mount(bd2)
    bd2.cut_power_after(cut, tear=(cut %% 2 == 1))
    try:
        deploy('3')
        done = True
    except OSError:
        done = False
    try:
        os.chdir('/')
        vfs.umount('/flash')
    except OSError:
        pass
    up = bd2.reboot()
    mount(up)
    r = slots.select_app('', add_path=False)
    out.append([cut, done, r['slot'], r['version'], r['fault']])
    umount()
    cut += %d
result([n_ops, out])
"""


def test_power_cut_at_every_switch_step_leaves_a_bootable_app(mpy):
    n_ops, rows = mpy.run(SWITCH % 1, timeout=300)
    assert n_ops > 5
    assert len(rows) == n_ops + 1
    for cut, _done, slot, version, fault in rows:
        # the previous firmware (2) or, once the pointer rename landed, the new one (3)
        assert version in ("2", "3"), (cut, slot, version, fault)
        assert fault == 0, (cut, slot, version)
    assert rows[0][3] == "2" and rows[-1][3] == "3" and rows[-1][1] is True
    print(json.dumps(rows))


def test_run_main_runs_the_selected_slot_with_boot_globals(mpy, flash_root):
    make_slot(
        flash_root,
        "b",
        {"main.py": b"RAN = (__name__, APP['slot'], V)\n", "m.py": b"V = 'b'\n"},
        version="2",
    )
    got = mpy.run(
        """
from cryo.app import select_app
APP = select_app(%r)
import m
V = m.V
from cryo.app import run_main
g = globals()
ok = run_main(g)
result([ok, list(g['RAN'])])
"""
        % str(flash_root)
    )
    assert got == [True, ["__main__", "b", "b"]]


def test_run_main_without_a_slot_runs_nothing(mpy, tmp_path):
    got = mpy.run(
        """
from cryo.app import select_app, run_main
r = select_app(%r)
result([r['slot'], run_main({})])
"""
        % str(tmp_path)
    )
    assert got == [None, False]
