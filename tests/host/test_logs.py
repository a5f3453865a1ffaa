"""`cryo logs` end to end: pull after a treatment, incremental, resumed, verified, reported.

The treatment log is written by the firmware's own TreatmentLog (cryo.storage.log) under
MicroPython into the virtual board's flash; the pull goes through real
mpremote over a pty.
"""

import csv
import json
import shutil
from pathlib import Path

import pytest

from host_tools.archive import events as archive_events
from host_tools.archive import pull as archive_pull
from host_tools.archive import reader as archive_reader
from host_tools.commands import logs
from host_tools.device.connect import Session
from host_tools.errors import DeviceError
from host_tools.virtual.port import VirtualPort, write_demo_treatment


@pytest.fixture
def board_img(tmp_path):
    img = tmp_path / "board" / "flash.img"
    write_demo_treatment(image=img, seconds=90, sessions=2)
    return img


def _seg_bytes(dest):
    return {p.name: p.read_bytes() for p in sorted((dest / "logs").glob("seg*.bin"))}


def test_pull_after_treatment_then_only_new_records(mpy, tmp_path, board_img):
    arch = tmp_path / "archive"
    with VirtualPort(image=board_img) as vp, Session(vp.port, stop_firmware=False) as s:
        r1 = archive_pull.pull(s, arch)
        assert r1["verify"]["ok"] and r1["verify"]["complete_sessions"] == [1, 2]
        assert r1["bytes"] > 20000 and r1["marked_pulled_upto"] == 2
        r2 = archive_pull.pull(s, arch)
        assert r2["bytes"] == 0 and r2["files"] == {}  # nothing new: nothing copied
    # the device knows the host holds sessions 1..2 (the `pulled` marker, read by cryo.storage.log)
    write_demo_treatment(image=board_img, seconds=30, sessions=1)
    with VirtualPort(image=board_img) as vp, Session(vp.port, stop_firmware=False) as s:
        assert (
            s.eval("open('logs/pulled','rb').read()")
            == (arch / r1["serial"] / "logs" / "pulled").read_bytes()
        )
        r3 = archive_pull.pull(s, arch)
    assert r3["verify"]["complete_sessions"] == [1, 2, 3]
    assert 4000 < r3["bytes"] < 8000  # one 30 s session, not the whole log again
    rows = archive_reader.session_rows(arch / r3["serial"])
    assert [r["session"] for r in rows] == [1, 2, 3]
    assert [r["faults"] for r in rows] == [0, 1, 1]  # the last session of each write has one
    assert rows[0]["cycles"] == 2 and rows[0]["min_temp_c"] == -25.0
    assert rows[0]["duration_s"] == pytest.approx(89.9)


def test_pull_resumes_after_disconnect(mpy, tmp_path):
    img = tmp_path / "board" / "flash.img"
    write_demo_treatment(image=img, seconds=150, sessions=3)
    arch = tmp_path / "archive"
    got = {"n": 0}
    with VirtualPort(image=img) as vp, Session(vp.port, stop_firmware=False) as s:
        s.stream_timeout = 1.5

        def progress(n, total):
            got["n"] += n
            if got["n"] > 20000:
                vp.power_off()  # cable pulled / board lost power mid-transfer

        with pytest.raises(DeviceError, match="lost"):
            archive_pull.pull(s, arch, progress=progress)
    serial = next(arch.iterdir()).name
    partial = sum(len(b) for b in _seg_bytes(arch / serial).values())
    assert 20000 < partial < 60000  # a prefix landed in the archive (total ≈ 72 KB)
    with VirtualPort(image=img) as vp, Session(vp.port, stop_firmware=False) as s:
        r = archive_pull.pull(s, arch)
    assert r["verify"]["ok"] and r["verify"]["complete_sessions"] == [1, 2, 3]
    # a fresh full pull into another archive yields the same bytes
    with VirtualPort(image=img) as vp, Session(vp.port, stop_firmware=False) as s:
        full = archive_pull.pull(s, tmp_path / "fresh", mark=False)
    total = sum(len(b) for b in _seg_bytes(tmp_path / "fresh" / serial).values())
    assert r["bytes"] == total - partial  # the resumed pull fetched only the rest
    assert sum(v for k, v in full["files"].items() if k.startswith("seg")) == total
    assert _seg_bytes(arch / serial) == _seg_bytes(tmp_path / "fresh" / serial)


def test_corrupted_record_is_reported_and_not_marked_pulled(mpy, tmp_path):
    d = tmp_path / "flash"
    write_demo_treatment(flash_dir=d, seconds=60, sessions=1)
    seg = sorted((d / "logs").glob("seg*.bin"))[0]
    data = bytearray(seg.read_bytes())
    data[2000] ^= 0x40  # one flipped bit inside a sample record
    seg.write_bytes(bytes(data))
    with VirtualPort(flash_dir=d) as vp, Session(vp.port, stop_firmware=False) as s:
        r = archive_pull.pull(s, tmp_path / "archive")
    v = r["verify"]
    assert not v["ok"] and len(v["crc_errors"]) == 1 and v["crc_errors"][0]["file"] == seg.name
    assert "marked_pulled_upto" not in r and not (d / "logs" / "pulled").exists()


def test_export_and_report(mpy, tmp_path, board_img):
    out = tmp_path / "out"
    r = logs.pull_and_report(board_img, out)
    assert r["session"] == 2
    png, pdf = out / "report-session00002.png", out / "report-session00002.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000
    rows = list(csv.DictReader(open(r["csv"])))
    assert len(rows) == 900 and rows[0]["phase"] in ("PRECOOL", "FREEZE")
    assert {row["phase"] for row in rows} >= {"FREEZE", "THAW"}
    doc = json.load(open(r["json"]))
    assert doc["summary"]["cycles_done"] == 2 and len(doc["samples"]) == 900
    assert [e["name"] for e in doc["events"]].count("fault") == 1
    # offline export through the CLI, same data
    from host_tools.cli import main

    arch = out
    assert (
        main(
            [
                "logs",
                "--archive",
                str(arch),
                "export",
                "2",
                "--format",
                "json",
                "-o",
                str(tmp_path / "x.json"),
            ]
        )
        == 0
    )
    assert json.load(open(tmp_path / "x.json"))["samples"] == doc["samples"]
    shutil.rmtree(out / r["serial"] / "logs")


def test_audit_trail_pulled_and_chain_verified(mpy, tmp_path):
    from cryo.storage.audit import AuditTrail

    d = tmp_path / "flash"
    write_demo_treatment(flash_dir=d, seconds=20, sessions=1)
    trail = AuditTrail(str(d / "audit.log"))  # the device's trail (its flash is this folder)
    trail.config_change(100, "engineer", "pid.kp", 0.05, 0.07)
    trail.firmware_deploy(200, "service", "0.1.0", None, "ab" * 32)
    arch = tmp_path / "archive"
    with VirtualPort(flash_dir=d) as vp, Session(vp.port, stop_firmware=False) as s:
        r = archive_pull.pull(s, arch)
        a = r["verify"]["audit"]
        assert a["ok"] and a["entries"] == 2 and r["audit_files"]["audit.log"] > 100
        trail.note(300, "service", "pulled")  # grows: only the new entry crosses
        r = archive_pull.pull(s, arch)
        assert r["verify"]["audit"]["entries"] == 3 and set(r["audit_files"]) >= {"audit.log"}
        assert r["audit_files"]["audit.log"] < 200
        kept = (arch / r["serial"] / "audit" / "audit.log").read_bytes()
        # history edited on the device after it was pulled: the archive is the record
        # (verified bytes are never fetched again, so a pull costs what is new)
        text = (d / "audit.log").read_bytes().replace(b'"pid.kp",0.05', b'"pid.kp",0.06')
        (d / "audit.log").write_bytes(text)
        trail.note(400, "service", "after the edit")
        r = archive_pull.pull(s, arch)
        assert r["verify"]["audit"]["ok"] and r["verify"]["audit"]["entries"] == 4
        got = (arch / r["serial"] / "audit" / "audit.log").read_bytes()
        assert got.startswith(kept) and b'"pid.kp",0.05' in got
        # the last bytes before the archived end changed on the device: reported
        edited = bytearray((d / "audit.log").read_bytes())
        edited[-5] ^= 0x01  # one bit of the last entry's link, within the compared tail
        (d / "audit.log").write_bytes(bytes(edited))
        trail.note(500, "service", "one more")
        r = archive_pull.pull(s, arch)
        assert any("differ from the verified archive copy" in w for w in r["warnings"])
        assert r["verify"]["audit"]["entries"] == 5
        # a fresh archive sees the broken hash chain (AuditTrail.verify): not marked pulled
        r = archive_pull.pull(s, tmp_path / "fresh")
        assert not r["verify"]["ok"] and "marked_pulled_upto" not in r
        assert any("does not chain" in p for p in r["verify"]["audit"]["problems"])


def test_pull_after_cryo_sim_run_treatment(mpy, tmp_path):
    """The fast-mode `cryo sim run` treats on the virtual board and leaves a flash image."""
    from host_tools.sim import run_fast

    img = tmp_path / "sim-flash.img"
    run_fast(flash=str(img), duration_s=60, scenario="treatment")
    out = tmp_path / "out"
    r = logs.pull_and_report(img, out)
    assert r["verify"]["ok"] and r["bytes"] > 5000
    dest = out / r["serial"]
    rows = archive_reader.session_rows(dest)
    assert [x["session"] for x in rows] == [1]
    samples = [x for x in archive_reader.session_records(dest, 1) if x["type"] == "sample"]
    assert len(samples) > 300  # ~ 58 s of treatment at 10 Hz
    phases = {x["phase"] for x in samples}
    from cryo.protocol import states

    assert states.FREEZE in phases  # the log shows the treatment the sim ran
    assert min(x["tissue_c"] for x in samples if x["tissue_c"] is not None) < 10.0
    assert Path(r["png"]).stat().st_size > 20000 and Path(r["pdf"]).stat().st_size > 5000


def test_cli_pull_from_b_running_virtual_board(mpy, tmp_path):
    """The flash image of a `cryo sim run` treatment, booted on the real-time virtual board:
    the controller runs, `cryo logs list` asks it for service mode (command channel),
    pulls over the raw REPL and lists the session the treatment log closed at boot."""
    import subprocess
    import sys
    import threading
    import time

    from host_tools import ROOT
    from host_tools.sim import run_fast
    from host_tools.virtual.board import VirtualBoard

    img = tmp_path / "sim.img"
    run_fast(flash=str(img), duration_s=40, scenario="treatment")
    vb = VirtualBoard(flash=str(img), log=lambda m: None)
    port = vb.open()
    t = threading.Thread(target=vb.serve, daemon=True)
    t.start()
    try:
        time.sleep(1.0)
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "host_tools.cli",
                "logs",
                "--port",
                port,
                "--archive",
                str(tmp_path / "archive"),
                "--json",
                "list",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    finally:
        vb._stop = True
        t.join(3)
        vb.close()
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert len(rows) == 1 and rows[0]["session"] == 1
    assert rows[0]["outcome"] == "INTERRUPTED"  # the fast run ended mid-treatment
    assert rows[0]["samples"] > 300 and rows[0]["min_temp_c"] < 20


# -- device event log and safety state ---------------------------------------

DEVICE_EVENTS = """
import os
os.chdir(%r)
from cryo.storage.events import DeviceEventLog
from cryo.storage.safety_state import SafetyState
from cryo.storage import records as R
from cryo.storage import device_records as D
from cryo.interlock import conditions as C
log = DeviceEventLog('events.bin', capacity=8, rtc=lambda: 815000000 + log.last_seq)
for k, code, arg in %r:
    log.append(k, code, arg, 100 * log.last_seq)
SafetyState('safety.bin').save(1 << C.OVERCOOL, 4321, 2, log.last_seq, D.RESET_WDT)
result(log.last_seq)
"""


def _device_events(mpy, flash_dir, events):
    return mpy.run(DEVICE_EVENTS % (str(flash_dir), events))


def test_device_events_pulled_into_a_history_beyond_the_ring(mpy, tmp_path):
    from cryo.interlock import conditions as C
    from cryo.protocol import states
    from cryo.storage import device_records as D

    d = tmp_path / "flash"
    write_demo_treatment(flash_dir=d, seconds=20, sessions=1)
    first = [
        (D.DEV_BOOT, D.RESET_POWER, 1),
        (D.DEV_FAULT, C.OVERCOOL, states.FREEZE),
        (D.DEV_ACK, C.OVERCOOL, 2),
        (D.DEV_RESTORED, 0, (1 << C.OVERCOOL) | (1 << C.SENSOR)),
        (D.DEV_REFUSED, D.REFUSED_NOT_THAWED, -1250),
    ]
    assert _device_events(mpy, d, first) == 5
    arch = tmp_path / "archive"
    with VirtualPort(flash_dir=d) as vp, Session(vp.port, stop_firmware=False) as s:
        r1 = archive_pull.pull(s, arch)
        dest = Path(r1["archive"])
        assert r1["device_files"] == {
            "events.bin": 8 * D.DEV_EVENT_SIZE,
            "safety.bin": D.SAFETY_STATE_SLOTS * D.SAFETY_STATE_SIZE,
        }
        assert (dest / "device" / "events.bin").read_bytes() == (d / "events.bin").read_bytes()
        assert (dest / "device" / "safety.bin").read_bytes() == (d / "safety.bin").read_bytes()
        assert r1["events"] == {
            "ok": True,
            "records": 5,
            "new": 5,
            "last_seq": 5,
            "damaged_slots": [],
            "missing": [],
            "problems": [],
        }
        assert r1["safety_state"] == {
            "latched": 1 << C.OVERCOOL,
            "site_dose": 4321,
            "flags": 2,
            "boots": 5,
            "last_reset": D.RESET_WDT,
            "valve_cycles": 0,
            "seq": 1,
            "latched_names": ["overcool"],
            "flag_names": ["site_frozen"],
            "last_reset_name": "wdt",
        }
        r2 = archive_pull.pull(s, arch)  # nothing changed on the device: nothing fetched
        assert r2["device_files"] == {} and r2["events"]["new"] == 0
    # 8 more events wrap the 8-slot ring: the history still holds all 13
    more = [(D.DEV_FAULT, C.SENSOR, states.THAW)] * 7 + [(D.DEV_SITE, 0, D.SITE_NEW)]
    assert _device_events(mpy, d, more) == 13
    with VirtualPort(flash_dir=d) as vp, Session(vp.port, stop_firmware=False) as s:
        r3 = archive_pull.pull(s, arch)
    assert r3["events"]["ok"] and r3["events"]["new"] == 8 and r3["events"]["records"] == 13
    rows = archive_events.event_rows(dest)
    assert [x["seq"] for x in rows] == list(range(1, 14))
    assert rows[1]["condition"] == "overcool" and rows[1]["detail"] == "phase FREEZE"
    assert rows[2]["detail"] == "role engineer"
    assert rows[3]["detail"] == "latched at boot: overcool, sensor (mask 0x9)"
    assert rows[4]["detail"] == "start refused: tissue not thawed, tissue -12.50 °C"
    assert rows[0]["date"] == "2025-10-28 20:53:20" and rows[0]["detail"].startswith(
        "reset cause power"
    )
    # 9 events while nobody pulls: the ring keeps 8, one is reported missing, never hidden
    assert _device_events(mpy, d, [(D.DEV_INTERNAL, 0, 0x1234ABCD)] * 9) == 22
    with VirtualPort(flash_dir=d) as vp, Session(vp.port, stop_firmware=False) as s:
        r4 = archive_pull.pull(s, arch)
    ev = r4["events"]
    assert not ev["ok"] and ev["missing"] == [{"from_seq": 14, "to_seq": 14}]
    assert "device events 14..14 are not in the archive" in ev["problems"][0]
    assert ev["records"] == 21 and r4["verify"]["ok"]  # the treatment log is unaffected


def test_cli_events_json_shape_and_bad_files(mpy, tmp_path, capsys, monkeypatch):
    import subprocess
    import sys

    from cryo.interlock import conditions as C
    from cryo.storage import device_records as D
    from host_tools import ROOT
    from host_tools.cli import main

    d = tmp_path / "flash"
    write_demo_treatment(flash_dir=d, seconds=20, sessions=1)
    _device_events(mpy, d, [(D.DEV_FAULT, C.DOSE, 4), (D.DEV_INTERNAL, 0, 0xDEADBEEF)])
    arch = tmp_path / "archive"
    with VirtualPort(flash_dir=d) as vp, Session(vp.port, stop_firmware=False) as s:
        archive_pull.pull(s, arch)
    capsys.readouterr()
    assert main(["logs", "--archive", str(arch), "--json", "events", "--offline"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [
        {
            "seq": 1,
            "rtc_s": 815000000,
            "date": "2025-10-28 20:53:20",
            "t_ms": 0,
            "kind": D.DEV_FAULT,
            "kind_name": "fault",
            "code": C.DOSE,
            "condition": "dose",
            "arg": 4,
            "detail": "phase FREEZE",
        },
        {
            "seq": 2,
            "rtc_s": 815000001,
            "date": "2025-10-28 20:53:21",
            "t_ms": 100,
            "kind": D.DEV_INTERNAL,
            "kind_name": "internal",
            "code": 0,
            "condition": None,
            "arg": 0xDEADBEEF - 2**32,
            "detail": "internal error, exception id 0xdeadbeef",
        },
    ]
    assert (
        main(["logs", "--archive", str(arch), "--json", "events", "--offline", "--since", "1"]) == 0
    )
    assert [x["seq"] for x in json.loads(capsys.readouterr().out)] == [2]
    # the rich table, as an operator sees it (a wide terminal: no wrapped cells)
    monkeypatch.setenv("COLUMNS", "160")
    assert main(["logs", "--archive", str(arch), "events", "--offline"]) == 0
    table = capsys.readouterr().out
    assert "dose" in table and "internal error, exception id 0xdeadbeef" in table
    assert (
        "safety state (as last pulled): latched overcool; site dose 4321; flags site_frozen"
        in table
    )
    # a damaged history: one line naming the file and what is allowed, no traceback
    hist = next(arch.iterdir()) / "device" / "events-history.bin"
    hist.write_bytes(hist.read_bytes()[:30])
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "host_tools.cli",
            "logs",
            "--archive",
            str(arch),
            "events",
            "--offline",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert (
        "events-history.bin: device event file: 30 bytes is not a whole, non-zero number of 24-byte records"
        in p.stderr
    )
    # a short file on the device: the pull reports it and merges nothing
    (d / "events.bin").write_bytes(b"\x00" * 10)
    (d / "safety.bin").write_bytes(b"\x00" * 10)
    with VirtualPort(flash_dir=d) as vp, Session(vp.port, stop_firmware=False) as s:
        r = archive_pull.pull(s, tmp_path / "fresh")
    assert not r["events"]["ok"] and r["events"]["new"] == 0
    st = r["safety_state"]
    assert st["lost"] is True and st["latched"] == 0
    assert st["problem"].endswith("safety.bin (10 bytes): no valid slot (A: short, B: short)")
    assert (
        "10 bytes is not a whole, non-zero number of 24-byte records" in r["events"]["problems"][0]
    )
