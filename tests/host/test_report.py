"""The clinician's report: its data (JSON) for a completed, an aborted, a faulted and a
target-not-reached session, written by the firmware's TreatmentLog under MicroPython,
and the report of `make demo`.

With ``CRYO_REPORTS=FOLDER`` the reports' PNGs are also saved there under
the names docs/ uses (docs/report-*.png are made this way).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from host_tools import cli
from host_tools.archive import clinical
from host_tools.interpreter import micropython_exe
from host_tools.virtual.port import write_demo_treatment

SESSIONS = """
import sys
sys.path.insert(0, %(fw)r)
from cryo.storage.log import TreatmentLog
from cryo.storage import records as R
log = TreatmentLog('logs', sample_hz=10)
HDR = dict(rtc_s=849000000, rtc_ms=0, fw_version='0.1.0', fw_hash=bytes(range(32)),
           config_hash=bytes(32), board_id='sim', target_cc=-2000, thaw_cc=0,
           freeze_ds=300, cycles=2, floor_cc=-6000, max_freeze_ds=600, min_thaw_ds=300)
def run(low_cc, end_phase, fault=None, outcome=R.OUTCOME_COMPLETED):
    log.begin_session(HDR, 0)
    log.event(R.EV_PHASE, 3, 2, now_ms=0)
    t = 0
    temp = 3000
    for cycle in range(2):
        log.event(R.EV_PHASE, 4, 3 if cycle == 0 else 5, now_ms=t)
        for i in range(400):          # 40 s freeze
            temp += (low_cc - temp) // 15
            log.sample(t, temp, 200, -200, 80, 1, 4)
            t += 100
        if fault is not None and cycle == 1:
            log.event(R.EV_FAULT, fault, 0, now_ms=t)
            break
        log.event(R.EV_PHASE, 5, 4, now_ms=t)
        for i in range(300):          # 30 s thaw
            temp += (2000 - temp) // 15
            log.sample(t, temp, 200, -200, 0, 0, 5)
            t += 100
    log.event(R.EV_PHASE, end_phase, 5, now_ms=t)
    log.end_session({'outcome': outcome}, now_ms=t)
run(-2600, 6)                                              # 1 completed, DONE
run(-2600, 7, outcome=R.OUTCOME_STOPPED)                   # 2 aborted
run(-2600, 8, fault=10, outcome=R.OUTCOME_FAULT)           # 3 footswitch released
run(-1890, 6)                                              # 4 never reached -20 C
print('@@OK@@')
"""


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from host_tools import FIRMWARE_DIR

    d = tmp_path_factory.mktemp("report")
    board = d / "board"
    board.mkdir()
    p = subprocess.run(
        [micropython_exe(), "-X", "heapsize=8M", "-c", SESSIONS % {"fw": str(FIRMWARE_DIR)}],
        cwd=board,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "@@OK@@" in p.stdout, p.stdout + p.stderr
    dest = d / "archive" / "SIM-TEST-1"
    shutil.copytree(board / "logs", dest / "logs")
    return dest


def test_completed_session(archive):
    d = clinical.report_data(archive, 1)
    assert d["outcome"] == "DONE" and d["target_reached"] and d["target_note"] is None
    assert d["device_serial"] == "SIM-TEST-1" and d["firmware_hash"] == bytes(range(32)).hex()
    assert d["start"] == "2026-11-26 09:20:00 UTC (device clock)"
    assert d["target_c"] == -20.0 and d["thaw_threshold_c"] == 0.0
    assert d["duration"] == "2:20" and d["planned_freeze"] == "0:30"
    assert [c["cycle"] for c in d["cycles"]] == [1, 2]
    c1 = d["cycles"][0]
    assert c1["freeze"] == "0:40" and c1["thaw"] == "0:30" and c1["target_reached"]
    assert 20 < c1["at_or_below_target_s"] < 40 and c1["min_temp_c"] < -25
    assert d["faults"] == []


def rendered(archive, session, name, tmp_path):
    """The report ``write_report`` writes for ``session``: its JSON (the PNG
    also saved as docs/report-``name``.png with ``CRYO_REPORTS``)."""
    from host_tools.report import write_report

    png, pdf = write_report(archive, session, tmp_path)
    assert pdf.stat().st_size > 10000
    keep = os.environ.get("CRYO_REPORTS")
    if keep:
        shutil.copy(png, Path(keep) / f"report-{name}.png")
    return json.loads(png.with_suffix(".json").read_text())


def test_aborted_session_says_aborted(archive, tmp_path):
    d = rendered(archive, 2, "aborted", tmp_path)
    assert d["outcome"] == "ABORTED" and d["cycles_done"] == 2 and d["faults"] == []


def test_faulted_session_names_the_fault(archive, tmp_path):
    d = rendered(archive, 3, "faulted", tmp_path)
    assert d["outcome"] == "FAULT"
    (f,) = d["faults"]
    assert f["code"] == 10 and f["name"] == "released"
    assert "footswitch or handpiece was released" in f["meaning"] and f["time"] == "1:50"
    assert d["cycles"][1]["thaw"] == "—"  # the second cycle never thawed


def test_target_not_reached_is_explicit(archive, tmp_path):
    d = rendered(archive, 4, "target-not-reached", tmp_path)
    assert d["outcome"] == "DONE" and not d["target_reached"]
    assert d["target_note"] == "TARGET NOT REACHED: minimum -18.9 °C, target -20.0 °C"
    assert all(c["at_or_below_target_s"] == 0 and not c["target_reached"] for c in d["cycles"])


def test_every_condition_has_a_meaning():
    from cryo.interlock.conditions import NAMES

    assert set(NAMES) == set(clinical.FAULT_MEANINGS)


def test_report_cli_stores_clinic_fields_with_the_archive(archive, tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli.main(
        ["logs", "--archive", str(archive.parent), "--json", "report", "3", "-o", str(out)]
        + ["--patient", "P-0042", "--lesion", "L2 sternum", "--operator", "A. Nurse"]
    )
    assert rc == 0
    paths = json.loads(capsys.readouterr().out)
    data = json.loads(open(paths["json"]).read())
    assert data["clinical"] == {
        "patient_ref": "P-0042",
        "lesion_ref": "L2 sternum",
        "operator": "A. Nurse",
        "reviewer": None,
    }
    rc = cli.main(
        ["logs", "--archive", str(archive.parent), "report", "3", "-o", str(out)]
        + ["--reviewer", "Dr B"]
    )
    assert rc == 0
    stored = json.loads((archive / "clinical" / "session00003.json").read_text())
    assert stored["reviewer"] == "Dr B" and stored["patient_ref"] == "P-0042"
    from PIL import Image

    with Image.open(paths["png"]) as im:
        assert round(im.info["dpi"][0]) == 300
    assert cli.main(["logs", "--archive", str(archive.parent), "report", "9"]) == 5
    assert not (archive / "clinical" / "session00009.json").exists()


def test_demo_treatment_report(mpy, tmp_path):

    board = tmp_path / "board"
    write_demo_treatment(flash_dir=board, seconds=90, sessions=1)
    dest = tmp_path / "archive" / "demo"
    shutil.copytree(board / "logs", dest / "logs")
    png, pdf = logs_report(dest)
    d = json.loads(png.with_suffix(".json").read_text())
    assert d["outcome"] == "DONE" and d["target_reached"] and len(d["cycles"]) == 2
    assert d["faults"][0]["name"] == "depleted"


def logs_report(dest):
    from host_tools.report import write_report

    return write_report(dest, 1, dest)


def test_make_demo_treatment_and_its_report(mpy, tmp_path):
    """`make demo` as a newcomer runs it: two freeze-thaw cycles on the
    calibrated plant, pulled and reported; the report's start comes from the
    board's clock (set from the host's), the firmware without a release
    manifest says so instead of showing a hash of zeros."""
    from host_tools import demo

    assert demo.main(["--out", str(tmp_path)]) == 0
    (js,) = tmp_path.glob("report-session*.json")
    d = json.loads(js.read_text())
    assert d["outcome"] == "DONE" and d["target_reached"] and d["cycles_done"] == 2
    assert d["start"].endswith("UTC (device clock)") and not d["start"].startswith("2000")
    assert d["firmware_hash"] is None and d["faults"] == []
    # the board's serial: its flash chip's id, kept in the image (not the file name)
    assert len(d["device_serial"]) == 12 and int(d["device_serial"], 16) >= 0
    assert all(c["target_reached"] and c["at_or_below_target_s"] > 0 for c in d["cycles"])
    keep = os.environ.get("CRYO_REPORTS")
    if keep:
        shutil.copy(js.with_suffix(".png"), Path(keep) / "report-demo.png")


def test_logs_list_says_what_the_report_says(archive):
    """`cryo logs list` (the real CLI): the report's outcome words and m:ss
    durations in the table; seconds and the same word in its JSON."""
    from clirun import cryo

    def listing(*extra):
        p = cryo("logs", "--archive", archive.parent, *extra, "list", "--offline")
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
        return p.stdout

    words = {n: clinical.report_data(archive, n)["outcome"] for n in (1, 2, 3, 4)}
    assert words == {1: "DONE", 2: "ABORTED", 3: "FAULT", 4: "DONE"}
    rows = {r["session"]: r for r in json.loads(listing("--json"))}
    assert {n: r["outcome"] for n, r in rows.items()} == words
    assert rows[1]["duration_s"] == pytest.approx(140.0, abs=0.2)
    lines = [ln.split() for ln in listing().splitlines()]
    table = {int(c[0]): c for c in lines if c and c[0].isdigit()}
    assert sorted(table) == [1, 2, 3, 4]
    for n, cells in table.items():  # session, date, time, duration, ..., outcome
        assert cells[-1] == words[n], cells
        assert cells[3] == clinical.mss(rows[n]["duration_s"]), cells
        assert " ".join(cells[1:3]) == rows[n]["date"], cells  # whole, in an 80-column pipe
    assert table[1][3] == "2:20" and table[3][3] == "1:50"
