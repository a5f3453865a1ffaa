"""Signed releases on a virtual board (the MicroPython unix port on a pty
with a littlefs flash, host_tools.virtual.port), through the real `cryo flash`
deploy and real mpremote: a device that holds a release key installs only
releases signed by it and not older than the last one; an unsigned,
modified, foreign-signed or older release is refused before the switch and
the previous firmware keeps booting."""

import shutil

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from host_tools import FIRMWARE_DIR, keys
from host_tools.commands import flash
from host_tools.device.connect import Session
from host_tools.errors import AccessDenied
from host_tools.virtual.port import VirtualPort, boot_check

# isort: split
from cryo import paths


@pytest.fixture
def fw(tmp_path):
    d = tmp_path / "firmware"
    shutil.copytree(FIRMWARE_DIR, d, ignore=shutil.ignore_patterns("__pycache__"))
    return d


def _bump(fw, n):
    p = fw / "cryo" / "pid.py"
    p.write_text(p.read_text() + f"\nRELEASE_MARK = {n}\n")


def _set_version(fw, v):
    import re

    p = fw / "cryo" / "__init__.py"
    p.write_text(re.sub(r'VERSION = "[^"]*"', f'VERSION = "{v}"', p.read_text()))


class Recording:
    """The release key, keeping a copy of every message it signed."""

    def __init__(self, key):
        self.key = key
        self.signed = []

    def sign(self, msg):
        self.signed.append(msg)
        return self.key.sign(msg)


class Replaying:
    """A genuine signature of an earlier release put on a modified one."""

    def __init__(self, key, msg):
        self.sig = key.sign(msg)

    def sign(self, _msg):
        return self.sig


def _active(s):
    return s.eval(f"open({paths.APP_ACTIVE!r}).read()")


def test_only_signed_current_releases_are_installed(mpy, tmp_path, fw):
    key = Ed25519PrivateKey.generate()
    img = tmp_path / "board" / "flash.img"
    with VirtualPort(image=img) as vp, Session(vp.port, stop_firmware=False) as s:
        flash.deploy(s, "sim", firmware_dir=fw, reset=False)  # development device
        s.write_file(paths.APP_RELEASE_PUB, keys.public_hex(key).encode())  # provisioned

        rec = Recording(key)
        _bump(fw, 1)
        r = flash.deploy(s, "sim", firmware_dir=fw, reset=False, signer=rec)
        assert r["switched"] and r["slot"] == "b"
        good = _active(s)
        assert s.eval(f"open({paths.APP_COUNTER!r}).read()").strip() == "1000"  # 0.1.0

        refusals = []
        _bump(fw, 2)
        for signer in (False, Ed25519PrivateKey.generate(), Replaying(key, rec.signed[0])):
            with pytest.raises(AccessDenied) as e:
                flash.deploy(s, "sim", firmware_dir=fw, reset=False, signer=signer)
            refusals.append(str(e.value))
            assert _active(s) == good
        _set_version(fw, "0.0.9")  # older, correctly signed
        with pytest.raises(AccessDenied) as e:
            flash.deploy(s, "sim", firmware_dir=fw, reset=False, signer=key)
        refusals.append(str(e.value))
        assert _active(s) == good
        _set_version(fw, "0.2.0")  # newer, signed: installed, counter moves on
        r = flash.deploy(s, "sim", firmware_dir=fw, reset=False, signer=key)
        assert r["switched"]
        assert s.eval(f"open({paths.APP_COUNTER!r}).read()").strip() == "2000"
        newest = _active(s)
    assert "unsigned (no manifest.sig)" in refusals[0]
    assert "release signature does not verify" in refusals[1]
    assert "release signature does not verify" in refusals[2]
    assert "0.0.9 (9) is older than the installed 1000: downgrade refused" in refusals[3]
    assert all("previous firmware kept" in r for r in refusals)
    boot = boot_check(image=img)
    assert (boot["slot"], boot["fault"]) == (newest, 0)


def test_refused_release_leaves_the_previous_firmware_booting(mpy, tmp_path, fw):
    key = Ed25519PrivateKey.generate()
    img = tmp_path / "board" / "flash.img"
    with VirtualPort(image=img) as vp, Session(vp.port, stop_firmware=False) as s:
        flash.deploy(s, "sim", firmware_dir=fw, reset=False)
        s.write_file(paths.APP_RELEASE_PUB, keys.public_hex(key).encode())
        _bump(fw, 3)
        with pytest.raises(AccessDenied, match="unsigned"):
            flash.deploy(s, "sim", firmware_dir=fw, reset=False, signer=False)
    boot = boot_check(image=img)
    assert (boot["slot"], boot["fault"]) == ("a", 0)
