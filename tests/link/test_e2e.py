"""End to end: host tools ↔ a MicroPython process running the real channel.

The device is ``tests/link/link_rigs.py`` under the real ``micropython``
unix port: the channel on ``StdioStream`` (select.poll on stdin/stdout),
polled once per 100 ms tick by a closed loop built from the real PID, valve and
the plant model (``link_rigs.RigController``), paced against real time (SPEED× faster
when asked). The host side is the real ``cryo`` CLI and ``host_tools.device.link``
over pyserial's ``socket://`` URL (tests/link/link_devrig.py relays the pipes).

The same checks against the real ``cryo.controller.Controller``: on the
real-time virtual board, ``cryo sim`` (test_sim_e2e.py: monitor during a
treatment, bumpless audited gain change) and in virtual time
(test_ctl_e2e.py: ``cryo tune auto`` through the CLI).
"""

import pytest
from link_devrig import DeviceRig

from host_tools import cli, fopdt, telemetry
from host_tools.commands import monitor
from host_tools.device.link import Link, LinkDenied, LinkError, LinkInvalid, request_service_mode

pytestmark = pytest.mark.sim


def test_monitor_receives_telemetry_at_the_requested_rate_during_treatment(
    cli_json, tmp_path, mpy
):  # mpy: the device is a MicroPython process
    csv_path, png = tmp_path / "run.csv", tmp_path / "run.png"
    with DeviceRig(1, "treat") as rig:
        rc, lines, _ = cli_json(
            [
                "monitor",
                "--port",
                rig.url,
                "--rate",
                "5",
                "--duration",
                "2",
                "--json",
                "--csv",
                str(csv_path),
                "--plot",
                str(png),
            ],
        )
    assert rc == 0
    summary = lines[-1]["summary"]
    frames = lines[:-1]
    assert summary["device_rate_hz"] == pytest.approx(5.0)  # exactly 200 ms apart
    assert summary["gaps"] == 0 and summary["bad_frames"] == 0
    assert 7 <= summary["frames"] == len(frames) <= 13
    assert {f["phase"] for f in frames} == {"FREEZE"}
    assert all(
        {"temps", "setpoint_c", "demand", "valve", "p", "i", "d", "faults", "alarms"} <= f.keys()
        for f in frames
    )
    rows = telemetry.read_csv(csv_path)
    assert len(rows) == summary["frames"] and rows[0]["phase"] == "FREEZE"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the recording can be plotted again later, without a device
    png2 = tmp_path / "again.png"
    assert cli.main(["monitor", "--from-csv", str(csv_path), "--plot", str(png2)]) == 0
    assert png2.read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["monitor", "--from-csv", str(png), "--plot", str(png2)]) == 5


def test_monitor_live_view_runs_and_reports_rate(
    capsys, mpy
):  # mpy: the device is a MicroPython process
    with DeviceRig(4, "treat") as rig:
        rc = cli.main(
            ["monitor", "--port", rig.url, "--timeout", "10", "--rate", "10", "--duration", "1.5"]
        )
    out = capsys.readouterr().out
    assert rc == 0
    assert "cryo monitor:" in out and "10.00 Hz (device time)" in out
    assert "tissue" in out and "valve" in out


KP_NEW = 0.4


def test_live_gain_change_is_bumpless_and_audited(mpy):  # mpy: the device is a MicroPython process
    # settle at the setpoint in virtual time, then run in real time
    with DeviceRig(1, "treat", "settle=360") as rig, Link(rig.url, timeout=10) as link:
        link.set_telemetry(10)
        frames = []
        while True:  # wait for a regulated moment with a clear error
            tel = link.next_telemetry(2.0)
            assert tel is not None, "no telemetry"
            frames.append(tel)
            e = tel["temps"]["tissue"] - tel["setpoint_c"]
            # a clear error, and room in the integral to absorb the P change
            # (set_gains is bumpless within the integral's 0..1 bounds)
            if len(frames) > 20 and abs(e) > 0.5 and 0.1 < tel["i"] - (KP_NEW - 0.1) * e < 0.9:
                break
            assert len(frames) < 300, "loop never regulated"
        kp_old = link.get("pid.kp")
        assert link.set("pid.kp", KP_NEW, role="engineer") == KP_NEW
        for _ in range(10):
            frames.append(link.next_telemetry(2.0))
        st = link.status()
    j = next(i for i, f in enumerate(frames) if f["audit_n"] >= 1)  # tick of the change
    before, after = frames[j], frames[j + 1]  # after: first update with the new kp
    e0 = before["temps"]["tissue"] - before["setpoint_c"]
    e1 = after["temps"]["tissue"] - after["setpoint_c"]
    kick = (KP_NEW - kp_old) * e0  # what switching gains without bumpless transfer adds
    tol = 0.02 + 0.01 * abs(e1)
    assert abs(kick) > 2.5 * tol  # large enough to tell bumpless from not
    # Bumpless: the demand moves only by the new P acting on the *change* of
    # the error (plus one tiny integral step), not by the gain change itself.
    residual = (after["demand"] - before["demand"]) - KP_NEW * (e1 - e0)
    assert abs(residual) < tol, (residual, kick)
    # ... because set_gains moved the P change into the integral term (frame
    # j is sent after the set in the same poll, so it already shows the new i)
    assert before["i"] == pytest.approx(frames[j - 1]["i"] - kick, abs=0.01)
    assert after["i"] == pytest.approx(before["i"], abs=0.01)
    assert after["p"] == pytest.approx(KP_NEW * e1, abs=0.01)
    assert st["last_audit"] == {"what": "pid.kp", "old": kp_old, "new": KP_NEW, "role": "engineer"}
    assert st["audit_n"] == 1


def test_apply_saves_the_gains_and_plots_before_after(
    cli_json, tmp_path, mpy
):  # mpy: the device is a MicroPython process
    # (the step test and its FOPDT fit run against the real controller:
    # test_ctl_e2e.py)
    cmp_png = tmp_path / "cmp.png"
    with DeviceRig(50, "settle=1") as rig:
        rc, lines, _ = cli_json(
            [
                "tune",
                "apply",
                "--port",
                rig.url,
                "--kp",
                "0.12",
                "--ki",
                "0.02",
                "--save",
                "--observe",
                "0.5",
                "--plot",
                str(cmp_png),
                "--json",
            ],
        )
    assert rc == 0
    out = lines[-1]
    assert out["applied"] == {"pid.kp": 0.12, "pid.ki": 0.02, "pid.kd": 0.0}
    assert out["before"]["pid.kp"] == 0.1 and out["saved"] is True
    assert cmp_png.read_bytes()[:4] == b"\x89PNG"


def test_errors_map_to_clear_exceptions_and_service_mode_waits_for_idle(
    mpy,
):  # mpy: the device is a MicroPython process
    with DeviceRig(1, "treat") as rig:
        with Link(rig.url, timeout=10) as link:
            with pytest.raises(LinkDenied, match="needs role engineer"):
                link.set("pid.kp", 0.2, role="operator")
            with pytest.raises(LinkInvalid, match=r"within 0.0..10.0"):
                link.set("pid.kp", 50, role="engineer")
            with pytest.raises(LinkError, match="unknown command"):
                link.request("warp")
            assert link.stats()["errors"] == {"E_DENIED": 1, "E_INVALID": 1, "E_UNKNOWN": 1}
        with pytest.raises(LinkError) as e:
            request_service_mode(rig.url)
        assert e.value.treatment_running and e.value.exit_code == 3
    with DeviceRig(1) as rig:
        assert request_service_mode(rig.url)["service"] is True


def test_cli_errors_are_one_line_with_exit_codes(
    capsys, mpy
):  # mpy: the device is a MicroPython process
    with DeviceRig(1) as rig:
        rc = cli.main(
            [
                "tune",
                "apply",
                "--port",
                rig.url,
                "--kp",
                "0.2",
                "--ki",
                "0.01",
                "--role",
                "operator",
            ]
        )
        err = capsys.readouterr().err
        assert rc == 4 and err.startswith("cryo: error: device:") and err.count("\n") == 1
        rc = cli.main(["monitor", "--port", rig.url, "--timeout", "10", "--rate", "500"])
        assert rc == 5 and "0.2..50" in capsys.readouterr().err
    rc = cli.main(["monitor", "--port", "socket://127.0.0.1:9", "--duration", "1"])
    assert rc == 3 and "cannot connect" in capsys.readouterr().err


def test_fopdt_fit_recovers_a_known_model():
    import numpy as np

    t = np.arange(0, 60, 0.1)
    k, tau, theta, u = 20.0, 8.0, 1.5, 0.4
    y = 30 - k * u * (1 - np.exp(-np.clip(t - theta, 0, None) / tau))
    y = y + np.random.default_rng(1).normal(0, 0.05, len(t))
    fit = fopdt.fit_fopdt(t, y, u)
    assert fit["gain"] == pytest.approx(k, rel=0.05)
    assert fit["tau"] == pytest.approx(tau, rel=0.1)
    assert fit["dead_time"] == pytest.approx(theta, abs=0.2)
    ku, tu, gains = fopdt.fopdt_rules(k, tau, theta)
    # phase crossover of the model: ωu·θ + atan(ωu·τ) = π
    wu = 2 * np.pi / tu
    assert wu * theta + np.arctan(wu * tau) == pytest.approx(np.pi, abs=1e-6)
    assert gains["simc"]["kp"] == pytest.approx(tau / (k * 2 * theta))


def test_live_view_shows_every_field():
    from rich.console import Console

    tel = {
        "tel": 3,
        "t_ms": 1200,
        "phase": "FREEZE",
        "mode": "auto",
        "setpoint_c": -30.0,
        "temps": {"tissue": -29.5, "tissue2": -29.25, "aux": -150.0},
        "cj_c": 24.5,
        "demand": 0.625,
        "valve": True,
        "p": 0.05,
        "i": 0.575,
        "d": 0.0,
        "overruns": 0,
        "faults": ["TC_OPEN"],
        "alarms": ["SENSOR"],
        "latched": ["TC_OPEN"],
        "alarm_priority": "high",
    }
    rec = telemetry.Recorder()
    rec.add(dict(tel, _rx=0.0))

    class L:
        noise_lines = bad_frames = 0

    con = Console(width=120, record=True)
    con.print(monitor.render(tel, rec, L(), "sim"))
    out = con.export_text()
    for text in (
        "FREEZE",
        "tissue2",
        "-29.50",
        "-150.00",
        "cold junction",
        "24.50",
        "-30.00",
        "0.625",
        "OPEN",
        "0.5750",
        "TC_OPEN",
        "SENSOR",
        "high",
    ):
        assert text in out, text
    assert monitor.REFRESH_HZ >= 5


def test_tune_rejects_an_unknown_rule_before_touching_the_device(capsys):
    rc = cli.main(["tune", "auto", "--port", "socket://127.0.0.1:9", "--apply", "magic"])
    err = capsys.readouterr().err
    assert rc == 5 and "allowed: zn, no_overshoot, tyreus_luyben, simc, chosen" in err


def test_recorder_counts_silence_as_one_gap_and_says_when_frames_stopped():
    import time

    rec = telemetry.Recorder(10)  # 10 Hz: 5 periods are 0.5 s, the floor 2 s applies
    assert rec.stall_s == telemetry.MIN_STALL_S
    t = time.monotonic()
    rec.add({"tel": 1, "_rx": t})
    rec.add({"tel": 2, "_rx": t + 0.1})
    assert not rec.stalled(t + 1.5) and rec.gaps == 0
    assert rec.stalled(t + 2.5) and (rec.gaps, rec.stalls) == (1, 1)
    assert rec.stalled(t + 9.0) and rec.gaps == 1  # one stall is one gap, however long
    rec.add({"tel": 90, "_rx": t + 9.1})  # back, past the frames it missed: the same gap
    assert not rec.stalled(t + 9.2) and rec.gaps == 1
    rec.add({"tel": 92, "_rx": t + 9.2})  # a frame lost while flowing: a new gap
    assert rec.gaps == 2
    old = telemetry.Recorder(5)
    old.add({"tel": 7, "_rx": time.monotonic() - 10})
    msg = old.stopped()
    assert msg.startswith("frames stopped at") and "after 1 (frame 7)" in msg
    assert telemetry.Recorder(5).stopped() is None  # just started: not silent yet
    assert telemetry.Recorder().stalled(t + 1e6) is False  # no rate: no stall rule (tune)
