"""`cryo flash` end to end on a virtual board, through real mpremote.

The board is the MicroPython unix port on a pty (host_tools.virtual.port) whose
flash is a littlefs image (boards/sim/flash.py), so a test can cut the power mid-deploy and boot
the same image again.
"""

import shutil

import pytest

from host_tools import FIRMWARE_DIR, build
from host_tools.commands import flash
from host_tools.device.connect import Session
from host_tools.errors import AccessDenied, DeviceError, Mismatch
from host_tools.virtual.port import VirtualPort, boot_check


@pytest.fixture
def fw(tmp_path):
    """A private copy of firmware/ the test may change."""
    d = tmp_path / "firmware"
    shutil.copytree(FIRMWARE_DIR, d, ignore=shutil.ignore_patterns("__pycache__"))
    return d


def bump(fw, rel="cryo/pid.py", text="\nDEPLOY_MARK = 1\n"):
    p = fw / rel
    p.write_text(p.read_text() + text)


def set_version(fw, v):
    p = fw / "cryo" / "__init__.py"
    src = p.read_text()
    import re

    p.write_text(re.sub(r'VERSION = "[^"]*"', f'VERSION = "{v}"', src))


def test_deploy_from_scratch_then_unchanged_then_one_file(mpy, tmp_path, fw):
    img = tmp_path / "board" / "flash.img"
    with VirtualPort(image=img) as vp, Session(vp.port, stop_firmware=False) as s:
        r1 = flash.deploy(s, "sim", firmware_dir=fw)
        assert r1["provision_key"] and r1["slot"] == "a" and r1["switched"]
        assert len(r1["transfer"]) > 20 and r1["local_copy"] == []
        assert "lib/cryo/app/slots.mpy" in r1["boot_layer"] and "boot.py" in r1["boot_layer"]

        n_before = len(s.files_written)
        r2 = flash.deploy(s, "sim", firmware_dir=fw)
        assert r2["up_to_date"] and r2["transfer"] == [] and r2["boot_layer"] == []
        assert len(s.files_written) == n_before  # nothing written at all

        bump(fw)
        r3 = flash.deploy(s, "sim", firmware_dir=fw)
        assert r3["transfer"] == ["cryo/pid.mpy"]  # only the changed file crossed
        assert r3["slot"] == "b" and len(r3["local_copy"]) == len(r1["transfer"]) - 1
        written = s.files_written[n_before:]
        assert written == ["app/b/cryo/pid.mpy", "app/b/manifest.tmp"]
    boot = boot_check(image=img)
    assert (boot["slot"], boot["fault"]) == ("b", 0)


@pytest.mark.parametrize("cut_at", [3, 40])  # early (boot layer), mid-slot
def test_power_cut_during_deploy_keeps_previous_firmware(mpy, tmp_path, fw, cut_at):
    img = tmp_path / "board" / "flash.img"
    set_version(fw, "1.0.0")
    with VirtualPort(image=img) as vp, Session(vp.port, stop_firmware=False) as s:
        flash.deploy(s, "sim", firmware_dir=fw)
    set_version(fw, "2.0.0")
    bump(fw)
    with VirtualPort(image=img) as vp, Session(vp.port, stop_firmware=False) as s:
        # the flash block device: the power fails after `cut_at` program/erase ops
        s.exec(f"_cry_bd.cut_power_after({cut_at}, tear=True)")
        with pytest.raises(DeviceError):
            flash.deploy(s, "sim", firmware_dir=fw)
    boot = boot_check(image=img)
    assert boot["cryo_version"] == "1.0.0" and boot["slot"] == "a" and boot["fault"] == 0
    # and the next deploy completes from there
    with VirtualPort(image=img) as vp, Session(vp.port, stop_firmware=False) as s:
        r = flash.deploy(s, "sim", firmware_dir=fw)
        assert r["switched"] and r["slot"] == "b"
    assert boot_check(image=img)["cryo_version"] == "2.0.0"


def test_tampered_slot_on_device_falls_back_with_fault(mpy, tmp_path, fw):
    d = tmp_path / "flash"
    set_version(fw, "1.0.0")
    with VirtualPort(flash_dir=d) as vp, Session(vp.port, stop_firmware=False) as s:
        flash.deploy(s, "sim", firmware_dir=fw)
        set_version(fw, "2.0.0")
        flash.deploy(s, "sim", firmware_dir=fw)
    # both deploys are in the device's audit trail (the hash-chained AuditTrail)
    from cryo.storage.audit import AuditTrail

    trail = AuditTrail(str(d / "audit.log"))
    assert trail.verify() == []
    deploys = [(e[2], e[3], e[4]) for e in trail.entries()]
    assert deploys == [("deploy", "service", "1.0.0"), ("deploy", "service", "2.0.0")]
    (d / "app" / "b" / "cryo" / "pid.mpy").write_bytes(b"tampered")
    boot = boot_check(flash_dir=d)
    assert (boot["slot"], boot["cryo_version"], boot["fault"]) == ("a", "1.0.0", 1)
    assert "pid.mpy does not match" in (d / "app" / "fault").read_text()


def test_deploy_refuses_without_the_device_key(mpy, tmp_path, fw, monkeypatch):
    d = tmp_path / "flash"
    with VirtualPort(flash_dir=d) as vp, Session(vp.port, stop_firmware=False) as s:
        flash.deploy(s, "sim", firmware_dir=fw)
        monkeypatch.setenv("CRYO_KEYSTORE", str(tmp_path / "other-host-keys"))
        with pytest.raises(AccessDenied, match="provisioned with a key this host does not hold"):
            flash.deploy(s, "sim", firmware_dir=fw)


def test_abi_and_version_checks():
    prof = build.board_profile("sim")
    meta = {"mpy": 6, "arch": None}
    ok = {"version": [1, 29, 0], "mpy": 2822, "platform": "linux"}
    build.check_abi(ok, meta, prof)
    with pytest.raises(Mismatch, match="MicroPython 1.19.1; this firmware needs"):
        build.check_abi(dict(ok, version=[1, 19, 1], mpy=5), meta, prof)
    with pytest.raises(Mismatch, match="loads .mpy v5"):
        build.check_abi(dict(ok, mpy=5 | (2 << 10)), meta, dict(prof, min_micropython="1.0"))
    with pytest.raises(Mismatch, match="platform 'esp32'"):
        build.check_abi(dict(ok, platform="esp32"), meta, prof)
    esp = build.board_profile("esp32s3")
    esp_dev = {"version": [1, 29, 0], "mpy": 6 | (3 << 8) | (10 << 10), "platform": "esp32"}
    build.check_abi(esp_dev, {"mpy": 6, "arch": "xtensawin"}, esp)
    with pytest.raises(Mismatch, match="native architecture is xtensawin"):
        build.check_abi(esp_dev, {"mpy": 6, "arch": "armv6m"}, dict(esp, platform="esp32"))


def test_dry_run_changes_nothing(mpy, tmp_path, fw):
    d = tmp_path / "flash"
    with VirtualPort(flash_dir=d) as vp, Session(vp.port, stop_firmware=False) as s:
        r = flash.deploy(s, "sim", firmware_dir=fw, dry_run=True)
        assert r["dry_run"] and r["provision_key"] and r["slot"] == "a"
        assert len(r["transfer"]) > 20
        assert s.files_written == []
    assert not (d / "app" / "active").exists() and not (d / "app" / "key").exists()


def test_deploy_to_b_virtual_board_boots_the_verified_slot(mpy, tmp_path, fw):
    """`--board sim` onto the real-time virtual board (boot.py, reset, main.py)."""
    import threading
    import time

    from host_tools.virtual.board import VirtualBoard

    vb = VirtualBoard(flash=str(tmp_path / "sim.img"), log=lambda m: None)
    port = vb.open()
    t = threading.Thread(target=vb.serve, daemon=True)
    t.start()
    try:
        time.sleep(1.0)  # power-up: boot.py + main.py from the ROM tree
        with Session(port) as s:
            r = flash.deploy(s, "sim", firmware_dir=fw)
            assert r["switched"] and r["audit"] == "recorded" and r["reset"] == "reset"
        deadline = time.monotonic() + 10
        while not vb.resets and time.monotonic() < deadline:
            time.sleep(0.05)
        assert vb.resets  # machine.reset() restarted the board
        time.sleep(1.0)
        with Session(port) as s:
            app = s.eval("APP")  # what boot.py's select_app returned at this boot
            assert (app["slot"], app["fault"]) == ("a", 0)
            assert s.eval("BOOT['valves_closed']") is True
            assert s.eval("__import__('sys').path[0]") == "app/a"
            r2 = flash.deploy(s, "sim", firmware_dir=fw)
            assert r2["up_to_date"]
    finally:
        vb._stop = True
        t.join(3)
        vb.close()
