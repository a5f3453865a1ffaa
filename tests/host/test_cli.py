"""The `cryo` command as a user meets it: exit codes, one-line errors, dry runs.

Runs the real CLI in a subprocess (so a traceback would show on stderr)
against a virtual board where one is needed.
"""

import json
import shutil
import sys

import pytest
from clirun import cryo
from mpremote.transport_serial import SerialTransport

from cryo.storage import schema as S
from host_tools import FIRMWARE_DIR
from host_tools.device.connect import TREATMENT_RUNNING, _stop_safely, resolve_port
from host_tools.errors import DeviceError
from host_tools.virtual.port import VirtualPort


def one_line_error(proc, code, *needles):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cryo: error: "), proc.stderr
    for n in needles:
        assert n in err[0], err[0]


def test_no_device(monkeypatch):
    monkeypatch.delenv("CRYO_PORT", raising=False)
    one_line_error(cryo("logs", "pull"), 3, "no board found", "--port", "CRYO_PORT")
    with pytest.raises(DeviceError, match="2 boards attached"):

        class P:
            def __init__(self, d):
                self.device, self.vid = d, 0x2E8A

        resolve_port(None, environ={}, ports=[P("/dev/ttyACM0"), P("/dev/ttyACM1")])
    assert resolve_port(None, environ={"CRYO_PORT": "socket://h:1"}) == "socket://h:1"
    assert resolve_port("rfc2217://h:2", environ={"CRYO_PORT": "x"}) == "rfc2217://h:2"


def test_device_busy_and_missing_port(tmp_path):
    one_line_error(cryo("config", "--port", str(tmp_path / "nope"), "show"), 3, "no such port")
    with VirtualPort(flash_dir=tmp_path / "flash") as vp:
        holder = SerialTransport(vp.port, timeout=1)  # another tool has the port
        try:
            one_line_error(cryo("config", "--port", vp.port, "show"), 3, vp.port)
        finally:
            holder.close()


def test_treatment_running_refuses_repl_work():
    """host_tools.device.link's real LinkError classes, answers as the controller gives them."""
    from host_tools.device import link

    def answering(exc=None, reply=None):
        def request_service_mode(port, timeout):
            if exc is not None:
                raise exc
            return reply

        return type(
            "FakeLinkModule", (), {"request_service_mode": staticmethod(request_service_mode)}
        )

    treating = link.LinkError(
        "device: service mode is not allowed in FREEZE; stop the treatment first (E_STATE)",
        link.msg.E_STATE,
    )
    with pytest.raises(DeviceError) as e:
        _stop_safely("/dev/null", answering(treating))
    assert str(e.value) == TREATMENT_RUNNING
    armed = link.LinkError(
        "device: service mode needs a watchdog that is not armed yet", link.msg.E_STATE
    )
    with pytest.raises(DeviceError, match="the device refuses service mode: .*watchdog"):
        _stop_safely("/dev/null", answering(armed))
    assert _stop_safely("/dev/null", answering(reply={"service": True})) == "service mode"
    silent = link.LinkError("no reply to 'service' within 0.25 s")
    assert _stop_safely("/dev/null", answering(silent)) == "no command channel"


def test_wrong_role_invalid_value_abi_mismatch_on_a_board(mpy, tmp_path):
    fw = tmp_path / "firmware"  # a snapshot: firmware/ may change while the test runs
    shutil.copytree(FIRMWARE_DIR, fw, ignore=shutil.ignore_patterns("__pycache__"))
    with VirtualPort(flash_dir=tmp_path / "flash") as vp:
        p = vp.port

        def config(role, pin, *rest):
            return cryo("config", "--port", p, "--role", role, "--pin", pin, "--yes", *rest)

        r = cryo("flash", "--port", p, "--json", "--no-reset", "--firmware", str(fw))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["switched"] is True
        assert config("service", "9876", "pin", "service", "9876").returncode == 0
        assert config("service", "9876", "pin", "operator", "1357").returncode == 0
        one_line_error(config("service", "0000", "set", "pid.kp=0.06"), 4, "wrong PIN")
        one_line_error(
            config("operator", "1357", "set", "limits.floor_c=-70"),
            4,
            S.check_role("limits.floor_c", "operator"),  # the schema's message
        )
        one_line_error(
            config("service", "9876", "set", "protocol.cycles=9"),
            5,
            S.check_value("protocol.cycles", 9),  # the schema's message, whatever the range is
        )
        one_line_error(cryo("config", "--port", p, "get", "nonsense"), 5, "unknown field nonsense")
        # the unix board is not an ESP32-S3: refused before anything is written
        one_line_error(
            cryo("flash", "--port", p, "--board", "esp32s3"), 6, "platform 'linux'", "--board"
        )
        r = cryo("flash", "--port", p, "--json", "--firmware", str(fw))
        assert r.returncode == 0 and json.loads(r.stdout)["up_to_date"] is True


# the first bytes of each flasher's format (host_tools/runtime.py, IMAGE_FORMATS)
UF2 = b"UF2\n" + bytes(508)
ESP = b"\xe9" + bytes(255)
DFUSE = b"DfuSe\x01" + bytes(250)


@pytest.mark.parametrize(
    "board,image,content,expect",
    [
        (
            "esp32s3",
            "fw.bin",
            ESP,
            "would run: esptool --chip esp32s3 --port /dev/ttyUSB0 --baud 460800 "
            "write-flash --erase-all 0x0 {img}",
        ),
        ("rp2040", "fw.uf2", UF2, "would run: copy {img} to {bootsel}/fw.uf2"),
        ("rp2350", "fw.uf2", UF2, "would run: copy {img} to {bootsel}/fw.uf2"),
        ("stm32f4", "fw.dfu", DFUSE, "would run: dfu-util -a 0 -s 0x08000000:leave -D {img}"),
    ],
)
def test_runtime_flash_dry_run_prints_exact_steps(tmp_path, board, image, content, expect):
    bootsel = tmp_path / "RPI-RP2"
    img = tmp_path / image
    img.write_bytes(content)
    r = cryo(
        "flash",
        "--board",
        board,
        "--runtime",
        str(img),
        "--dry-run",
        "--port",
        "/dev/ttyUSB0",
        "--bootsel",
        str(bootsel),
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines, (r.stdout, r.stderr)
    assert lines[0] == expect.format(bootsel=bootsel, img=img)
    assert lines[1] == f"then: cryo flash --board {board} (deploy the app)"
    assert lines[2].startswith("boot layer: ") and "  boot.py  " in r.stdout


def test_blank_board_dry_run_needs_no_port_and_lists_every_file(tmp_path):
    """README: `cryo flash --board rp2040 --dry-run` on a blank board: no port,
    what runtime it needs, and every file the app deploy would write."""
    from cryo import paths
    from host_tools.build import build

    argv = ("flash", "--board", "rp2040", "--dry-run")
    r = cryo(*argv, env={"CRYO_PORT": None}, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == (
        "runtime: MicroPython 1.29.0 RPI_PICO as a UF2 file (.uf2): "
        "pass --runtime FILE to flash it first"
    )
    assert lines[1] == "then: cryo flash --board rp2040 (deploy the app)"
    plan = json.loads(cryo(*argv, "--json", env={"CRYO_PORT": None}, timeout=300).stdout)
    b = build("rp2040")
    slot = paths.slot_dir("a")
    assert plan["app"]["slot"] == {f"{slot}/{p}": len(d) for p, d in b["slot"].items()}
    assert plan["app"]["boot_layer"] == {p: len(d) for p, d in b["root"].items()}
    assert plan["app"]["arch"] == "armv6m" and plan["steps"] == []
    for path, size in list(plan["app"]["slot"].items()) + list(plan["app"]["boot_layer"].items()):
        assert f"  {path}  {size} B" in lines  # exactly what would be written


@pytest.mark.parametrize(
    "board,name,content,problem",
    [
        ("esp32s3", "fw.uf2", UF2, "is not a .bin file; --board esp32s3 takes an esptool "),
        ("esp32s3", "missing.bin", None, "does not exist; --board esp32s3 takes"),
        ("rp2040", "fw.bin", ESP, "is not a .uf2 file; --board rp2040 takes a UF2 file (.uf2)"),
        ("rp2040", "fw.uf2", b"hello", "does not start as a UF2 file does"),
        ("stm32f4", "fw.hex", b":10000000", "is not a .dfu file; --board stm32f4 takes a DfuSe"),
        ("stm32f4", "fw.dfu", UF2, "does not start as a DfuSe file does"),
        ("sim", "fw.uf2", UF2, "board sim has no MicroPython runtime to flash"),
    ],
)
def test_a_runtime_image_the_board_cannot_take_is_refused(tmp_path, board, name, content, problem):
    img = tmp_path / name
    if content is not None:
        img.write_bytes(content)
    for dry in (["--dry-run"], []):
        r = cryo("flash", "--board", board, "--runtime", str(img), *dry)
        one_line_error(r, 5, problem)


def test_runtime_flash_uf2_copies_to_bootsel(tmp_path):
    bootsel = tmp_path / "RPI-RP2"
    bootsel.mkdir()
    (bootsel / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\n")
    img = tmp_path / "firmware.uf2"
    img.write_bytes(b"UF2\n" * 128)
    r = cryo("flash", "--board", "rp2040", "--runtime", str(img), "--bootsel", str(bootsel))
    assert r.returncode == 0, r.stderr
    assert (bootsel / "firmware.uf2").read_bytes() == img.read_bytes()
    one_line_error(
        cryo("flash", "--board", "rp2040", "--runtime", str(tmp_path / "missing.uf2")),
        5,
        "does not exist",
    )


def test_app_dry_run_lists_the_plan(mpy, tmp_path):
    with VirtualPort(flash_dir=tmp_path / "flash") as vp:
        r = cryo("flash", "--port", vp.port, "--dry-run")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "transfer" in out and "boot layer" in out and "would provision a new device key" in out
    assert "would verify slot a on the device, switch app/active none → a" in out
    assert not (tmp_path / "flash" / "app").exists()


def test_esp32_runtime_flash_calls_esptool_as_a_library(tmp_path, monkeypatch):
    """The exact argv the dry run prints is what esptool.main receives."""
    import types

    from host_tools import runtime
    from host_tools.build import board_profile

    calls = []
    fake = types.ModuleType("esptool")
    fake.main = lambda argv: calls.append(list(argv))
    monkeypatch.setitem(sys.modules, "esptool", fake)
    prof = board_profile("esp32s3")
    steps = runtime.runtime_steps(prof, tmp_path / "fw.bin", "/dev/ttyUSB0")
    runtime.run_runtime_step(steps[0])
    assert calls == [steps[0][1]]
    assert steps[0][2] == "esptool " + " ".join(calls[0])

    def failing(argv):
        raise RuntimeError("Failed to connect to ESP32-S3: No serial data received.")

    fake.main = failing
    with pytest.raises(DeviceError, match="esptool: Failed to connect"):
        runtime.run_runtime_step(steps[0])
