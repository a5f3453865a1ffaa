"""`cryo sim run`: the firmware's control tick in fast virtual time."""

import subprocess
import sys

import pytest
from sim_harness import ROOT

from host_tools import sim
from host_tools.errors import InvalidInput

pytestmark = [pytest.mark.sim, pytest.mark.mpy]  # firmware runs under MicroPython

_VOLATILE = ("wall_s", "speed_x", "console", "tick_us_mean", "tick_us_max", "tick_max_at")


def stable(summary):
    return {k: v for k, v in summary.items() if k not in _VOLATILE}


def test_same_seed_same_run_other_seed_differs(tmp_path):
    # Not only the summary: the full trace (plant and valve after every
    # tick) of two runs with the same seed is identical.
    ta, tb = tmp_path / "a.csv", tmp_path / "b.csv"
    a = sim.run_fast(scenario="treatment", seed=5, duration_s=20, trace=ta)
    b = sim.run_fast(scenario="treatment", seed=5, duration_s=20, trace=tb)
    c = sim.run_fast(scenario="treatment", seed=6, duration_s=20)
    diff = {k: (a[k], b[k]) for k in stable(a) if k != "trace" and a[k] != b[k]}
    assert diff == {}, "same seed, different run"
    rows_a, rows_b = ta.read_text().splitlines(), tb.read_text().splitlines()
    assert len(rows_a) == 201 and rows_a == rows_b
    assert a["valve_cycles"] > 0 and a["status"]["phase"] in ("PRECOOL", "FREEZE")
    assert a["min_probe_c"] != c["min_probe_c"], (a["min_probe_c"], c["min_probe_c"])


def test_treatment_freezes_and_writes_the_log_to_flash(tmp_path, mpy):
    img = tmp_path / "flash.img"
    trace = tmp_path / "trace.csv"
    s = sim.run_fast(scenario="treatment", duration_s=40, flash=img, trace=trace, flash_kib=512)
    assert s["errors"] == [] and s["resets"] == []
    assert s["status"]["phase"] in ("PRECOOL", "FREEZE", "THAW", "DONE")
    assert s["valve_open_s"] > 5.0 and s["min_surface_c"] < 10.0
    rows = trace.read_text().splitlines()
    assert rows[0].startswith("t_s,surface_c,probe_c,")
    assert len(rows) == 401 and rows[-1].startswith("40.000,")
    # the image is a littlefs2 filesystem holding the controller's log
    files = mpy.run(
        """
import vfs, flash, os
dev = flash.FlashBlockDevice(%r, 4096, 128)
vfs.mount(vfs.VfsLfs2(dev), "/f")
result(sorted(os.listdir("/f/logs")))
"""
        % str(img)
    )
    assert files, "no log files on the flash image"


def test_estop_scenario_closes_the_valve(tmp_path):
    trace = tmp_path / "t.csv"
    s = sim.run_fast(scenario="estop", duration_s=25, trace=trace, trace_ms=100)
    assert "estop" in s["status"]["latched"]
    rows = [r.split(",") for r in trace.read_text().splitlines()[1:]]
    after = [int(r[5]) for r in rows if 20.2 <= float(r[0]) <= 25.0]
    assert after and not any(after)  # valve commanded closed after the e-stop


def test_watchdog_starvation_resets_the_board():
    s = sim.run_fast(scenario="wdt_starve", duration_s=20)
    assert [c for _, c in s["resets"]] == ["wdt"]
    assert 10000 < s["resets"][0][0] <= 14000


def test_safety_timer_closes_the_valve_while_the_firmware_hangs(tmp_path):
    """The runner arms the board's safety timer as Controller.run does: the
    firmware hangs at 10 s with the valve open, the timer's heartbeat check
    closes it 0.5 s later (heartbeat 500 ms), long before the watchdog
    resets the board at 12 s; the nozzle dries after the line's dead time."""
    trace = tmp_path / "t.csv"
    s = sim.run_fast(scenario="wdt_starve", duration_s=12.5, trace=trace, trace_ms=100)
    rows = {round(float(r.split(",")[0]), 1): r.split(",") for r in trace.read_text().split()[1:]}
    assert rows[10.0][5] == "1" and float(rows[10.0][8]) > 0.5, "valve open when the hang begins"
    assert [rows[t / 10][5] for t in range(106, 120)] == ["0"] * 14
    assert [float(rows[t / 10][8]) for t in range(110, 120)] == [0.0] * 10
    assert [c for _, c in s["resets"]] == ["wdt"] and s["uncommanded_flow_s"] == 0.0


def test_power_cut_scenario_reboots_and_flash_survives(tmp_path, mpy):
    """Mains cut at 12 s; flash dies mid-write (torn) at 21 s: both reboot,
    and the image still mounts with the log of the first treatment."""
    img = tmp_path / "flash.img"
    s = sim.run_fast(scenario="power_cut", duration_s=30, flash=img, flash_kib=512)
    assert s["resets"][0] == [12000, "power"]
    assert [c for _, c in s["resets"]] == ["power", "power"]
    assert s["errors"] == []
    files = mpy.run(
        """
import vfs, flash, os
vfs.mount(vfs.VfsLfs2(flash.FlashBlockDevice(%r, 4096, 128)), "/f")
result(sorted(os.listdir("/f/logs")))
"""
        % str(img)
    )
    assert files


def test_runs_across_the_tick_wrap():
    s = sim.run_fast(scenario="treatment", duration_s=20, start_ms=(1 << 30) - 5000)
    assert s["errors"] == [] and s["valve_open_s"] > 5.0


def test_bad_names_are_clear_errors():
    with pytest.raises(InvalidInput, match="plant file not found.*shipped plants: .*default"):
        sim.run_fast(plant="nope")
    with pytest.raises(InvalidInput, match="scenario file not found.*shipped scenarios"):
        sim.run_fast(scenario="nope")


def test_every_shipped_scenario_validates():
    plant, scenario = sim._sim_modules()
    names = sorted(p.stem for p in (sim.SIM_DIR / "scenarios").glob("*.json"))
    assert len(names) >= 9
    for n in names:
        scenario.load(n)
    with pytest.raises(scenario.ScenarioError, match=r"events\[0\]: unknown event 'explode'"):
        scenario.validate({"events": [{"t": 1, "event": "explode"}]})
    with pytest.raises(scenario.ScenarioError, match="field 'channel' is missing"):
        scenario.validate({"events": [{"t": 1, "event": "tc_open"}]})


def test_cli_run_prints_a_summary(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "host_tools.cli", "sim", "run", "--duration", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "real time" in r.stdout and "final phase" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "host_tools.cli", "sim", "run", "--plant", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 5 and "plant file not found" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "option,value,bounds",
    [
        ("--duration", "inf", "from 0.001 to 86400 virtual s"),
        ("--duration", "nan", "from 0.001 to 86400 virtual s"),
        ("--duration", "1e12", "from 0.001 to 86400 virtual s"),
        ("--duration", "-5", "from 0.001 to 86400 virtual s"),
        ("--trace-ms", "0", "from 1 to 60000 ms"),
        ("--start-ms", str(1 << 30), "from 0 to 1073741823 ms"),
        ("--flash-size", "99999999", "from 64 to 16384 KiB"),
    ],
)
def test_cli_run_refuses_numbers_the_runner_cannot_run(option, value, bounds):
    """Checked on the host, before the firmware starts: one line naming the
    option, its allowed range and the value; no firmware traceback."""
    r = subprocess.run(
        [sys.executable, "-m", "host_tools.cli", "sim", "run", f"{option}={value}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 5 and r.stdout == "", (r.returncode, r.stderr)
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"cryo: error: {option} must be") and bounds in line, line
    assert line.endswith(f"got {value if value != '1e12' else '1e+12'}"), line


def test_package_json_lists_existing_firmware_modules():
    """firmware/package.json (mip) names real files, relative to firmware/,
    including what boot.py and main.py import. Regenerate it after adding
    modules: `python -m host_tools.sim --write-package`."""
    import json

    have = json.loads((ROOT / "firmware" / "package.json").read_text())
    listed = [src for dest, src in have["urls"]]
    assert all(d == s for d, s in have["urls"])
    missing = [f for f in listed if not (ROOT / "firmware" / f).is_file()]
    assert missing == []
    for core in (
        "cryo/__init__.py",
        "cryo/board/__init__.py",
        "cryo/clock.py",
        "cryo/controller.py",
    ):
        assert core in listed
    # Every module the firmware ships is listed (a new module missing from
    # the mip package would install a board that cannot import it).
    assert set(listed) == {u[0] for u in sim.package_json()["urls"]}, (
        "firmware/package.json is out of date: python -m host_tools.sim --write-package"
    )


def test_serial_and_call_events_reach_the_firmware():
    s = sim.run_fast(scenario="serial_status", duration_s=25)
    lines = s["serial_out"].splitlines()
    assert lines[0].startswith('{"id":1,"status":') or '"id":1' in lines[0]
    assert '"ok":true' in lines[0] and '"E_FRAME"' in lines[1]
    assert s["status"]["phase"] == "ABORTED" and s["status"]["reason"] == "scenario stop"
