"""`cryo sim` on a pty, driven by the real mpremote (CLI and transport API)."""

import hashlib
import subprocess
import time
from pathlib import Path

import pytest
from sim_harness import ROOT, mpremote_exe

pytestmark = [pytest.mark.sim, pytest.mark.mpy]  # firmware runs under MicroPython


def run(t, code, timeout=10):
    """exec on the board with an inter-character timeout; returns stdout."""
    out, err = t.exec_raw(code, timeout=timeout)
    assert not err, err.decode()
    return out.decode()


def test_exec_eval_and_boot_sequence(sim):
    b = sim()
    assert b.link.resolve() == Path(b.port)
    r = subprocess.run(
        [mpremote_exe(), "connect", str(b.link), "resume", "exec", "print('hello', 6 * 7)"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "hello 42"
    r = b.mpremote("resume", "eval", "[MAIN_RAN, BOOT['valves_closed'], sorted(BOOT)]")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[True, True, ['app', 'flash', 'valves_closed']]"


def test_copy_file_sha256_and_survives_soft_reset_and_restart(sim, tmp_path):
    b = sim()
    data = bytes(range(256)) * 40 + b"end"
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    r = b.mpremote("resume", "fs", "cp", str(src), ":blob.bin", "+", "fs", "sha256sum", ":blob.bin")
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(data).hexdigest() in r.stdout
    # plain mpremote soft-resets first (Ctrl-D in the raw REPL)
    r = b.mpremote(
        "soft-reset", "eval", "(open('blob.bin','rb').read()[-3:], 'MAIN_RAN' in globals())"
    )
    assert r.returncode == 0, r.stderr
    # after a soft reset from the raw REPL boot.py ran, main.py did not
    assert r.stdout.strip() == "(b'end', False)"
    assert "raw" in b.resets()
    b.stop()
    # a new `cryo sim` on the same image: the file is still there
    b2 = sim()
    r = b2.mpremote("resume", "fs", "sha256sum", ":blob.bin")
    assert hashlib.sha256(data).hexdigest() in r.stdout, r.stdout + r.stderr


def test_friendly_soft_reset_prints_banner_and_runs_main(sim):
    b = sim()
    t = b.transport()
    t.exec("MAIN_RAN = 'cleared'")
    t.exit_raw_repl()
    t.read_until(1, b">>> ", timeout=10)  # the friendly REPL's banner
    t.serial.write(b"\x04")  # Ctrl-D on an empty line
    out = t.read_until(1, b"MPY: soft reboot\r\n", timeout=10)
    assert out.endswith(b"MPY: soft reboot\r\n")
    t.read_until(1, b">>> ", timeout=10)
    t.serial.write(b"print(MAIN_RAN)\r")
    out = t.read_until(1, b">>> ", timeout=10)
    assert b"True" in out  # main.py ran again
    t.close()


def test_mip_install_of_firmware_package(sim):
    b = sim()
    r = b.mpremote("mip", "install", str(ROOT / "firmware" / "package.json"), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # after a reset the installed copy (/lib precedes /rom on sys.path) is used
    r = b.mpremote("soft-reset", "exec", "import cryo.clock; print(cryo.clock.__file__)")
    assert r.stdout.strip() == "/lib/cryo/clock.py", r.stdout + r.stderr
    local = (ROOT / "firmware" / "cryo" / "pid.py").read_bytes()
    r = b.mpremote("resume", "fs", "sha256sum", ":/lib/cryo/pid.py")
    assert hashlib.sha256(local).hexdigest() in r.stdout


def test_ctrl_c_interrupts_a_running_loop(sim):
    b = sim()
    t = b.transport()
    t.exec_raw_no_follow("print('looping')\nn = 0\nwhile True:\n    n += 1\n")
    t.read_until(1, b"looping\n", timeout=10)
    t.serial.write(b"\x03")
    out, err = t.follow(timeout=10)
    assert b"KeyboardInterrupt" in err
    assert t.eval("n > 0") is True  # the board is usable again
    t.close()


def test_unfed_watchdog_resets_the_board(sim):
    b = sim()
    t = b.transport()
    t.exec("import machine\nwdt = machine.WDT(timeout=300)\nwdt.feed()")
    t.close()
    resets = b.wait_resets(1)
    assert resets[-1:] == ["wdt"]
    b.wait_prompt()
    t = b.transport()
    assert t.eval("__import__('machine').reset_cause() == __import__('machine').WDT_RESET")
    assert t.eval("MAIN_RAN") is True  # hard reset: main.py ran
    t.close()


def test_fed_watchdog_does_not_reset(sim):
    b = sim()
    t = b.transport()
    run(
        t,
        "import machine, time\nw = machine.WDT(timeout=1000)\n"
        "for i in range(15):\n    time.sleep_ms(100)\n    w.feed()\n",
    )
    assert b.resets() == []
    t.close()


def test_machine_reset_restarts_the_board(sim):
    b = sim()
    r = b.mpremote("resume", "exec", "--no-follow", "import machine; machine.reset()")
    assert r.returncode == 0, r.stderr
    assert b.wait_resets(1)[-1:] == ["reset"]
    b.wait_prompt()
    t = b.transport()
    assert t.eval("__import__('machine').reset_cause() == __import__('machine').HARD_RESET")
    t.close()


def test_power_cut_keeps_last_good_state(sim):
    """Cut power at each flash operation of a file update (torn last write):
    littlefs always remounts with the old or the new content, never a mix."""
    b = sim()
    t = b.transport()
    t.exec("f = open('state.txt', 'w'); f.write('good ' * 300); f.close()")
    outcomes = []
    for n in range(6):
        t.exec("import vboard; vboard.world.flash.cut_power_after(%d, tear=True)" % n)
        before = len(b.resets())
        t.exec_raw_no_follow("f = open('state.txt', 'w'); f.write('new%d ' * 300); f.close()" % n)
        try:
            out, err = t.follow(timeout=1)
            cut = False
        except Exception:  # noqa: BLE001 - no reply: lost power, or just slow
            cut = len(b.wait_resets(before + 1)) > before
            if not cut:
                out, err = t.follow(timeout=10)
        if cut:
            assert b.resets()[-1] == "power"
            t.close()
            b.wait_prompt()
            t = b.transport()
        else:
            assert not err, err
            t.exec("vboard.world.flash.cut_power_after(10 ** 6)")
        words = t.eval("open('state.txt').read()").split()
        assert len(words) == 300 and len(set(words)) == 1, words[:3]
        outcomes.append((cut, words[0]))
        t.exec("f = open('state.txt', 'w'); f.write('good ' * 300); f.close()")
    t.close()
    cuts = [w for cut, w in outcomes if cut]
    assert cuts, outcomes
    assert "good" in cuts  # a cut mid-update fell back to the last good state


def test_power_cut_option_reboots_once(sim):
    b = sim("--power-cut-after", "2", "--tear")
    t = b.transport()
    t.exec_raw_no_follow("f = open('x.txt', 'w'); f.write('x' * 9000); f.close()")
    with pytest.raises(Exception):  # noqa: B017 - no reply: power lost mid-write
        t.follow(timeout=1)
    assert b.wait_resets(1)[-1:] == ["power"]
    t.close()
    b.wait_prompt()
    t = b.transport()
    t.exec("f = open('y.txt', 'w'); f.write('y' * 9000); f.close()")  # no cut after reboot
    assert t.eval("len(open('y.txt').read())") == 9000
    t.close()


def test_mount_a_host_directory(sim, tmp_path):
    b = sim()
    d = tmp_path / "host"
    d.mkdir()
    (d / "hello_host.py").write_text("GREETING = 'from the host'\n")
    r = b.mpremote("mount", str(d), "exec", "import hello_host; print(hello_host.GREETING)")
    assert r.returncode == 0, r.stderr
    assert "from the host" in r.stdout


def test_scenario_serial_events_are_typed_on_the_line(sim, tmp_path):
    import json

    scen = tmp_path / "s.json"
    scen.write_text(
        json.dumps({"events": [{"t": 0.5, "event": "serial", "data": "SERIAL_SEEN = 1\r"}]})
    )
    b = sim("--scenario", str(scen))
    time.sleep(1.0)
    t = b.transport()
    assert t.eval("SERIAL_SEEN") == 1  # typed at the friendly REPL
    t.close()


def test_ctrl_c_is_ignored_when_the_firmware_disabled_it(sim):
    """kbd_intr(-1): a board ignores 0x03; the unix port would die of the
    SIGINT, so the relay drops the byte."""
    b = sim()
    t = b.transport()
    t.exec_raw_no_follow(
        "import micropython, time\nmicropython.kbd_intr(-1)\nprint('armed')\n"
        "time.sleep_ms(800)\nprint('survived')"
    )
    t.read_until(1, b"armed\n", timeout=10)
    time.sleep(0.1)
    t.serial.write(b"\x03")
    out, err = t.follow(timeout=5)
    assert out.strip() == b"survived" and not err, (out, err)
    assert b.resets() == []
    t.close()


def test_ctrl_c_on_cryo_sim_stops_it_cleanly(sim):
    import signal

    from sim_harness import _children, alive

    b = sim()
    kids = _children(b.proc.pid)
    assert kids
    b.proc.send_signal(signal.SIGINT)
    assert b.proc.wait(timeout=10) == 0
    time.sleep(0.1)
    assert not any(alive(k) for k in kids)
    assert not b.link.exists()


def test_patient_and_scenario_state_survive_a_reset(sim, tmp_path):
    """A reset restarts the electronics, not the world: the cooled skin stays
    cold, a pressed e-stop stays pressed, one-shot events are not repeated."""
    import json

    scen = tmp_path / "s.json"
    events = [
        {"t": 0.3, "event": "estop", "pressed": True},
        {"t": 0.3, "event": "serial", "data": "SERIAL_N = 1\r"},
    ]
    scen.write_text(json.dumps({"events": events}))
    b = sim("--scenario", str(scen))
    time.sleep(0.8)
    t = b.transport()
    assert t.eval("SERIAL_N") == 1
    code = """
import cryo.board, time, vboard
bd = cryo.board.build()
t0 = vboard.world.plant.surface_c
bd.master_pin.value(1); bd.valve_pin.value(1)
time.sleep_ms(2500)
bd.estop.value()
print(t0, vboard.world.plant.surface_c, bd.estop.value())
"""
    t0, t1, estop = run(t, code).split()
    assert float(t1) < float(t0) - 1.0 and estop == "0"
    t.exec_raw_no_follow("import machine; machine.reset()")
    t.close()
    assert b.wait_resets(1)[-1:] == ["reset"]
    b.wait_prompt()
    t = b.transport()
    after = t.eval("(__import__('vboard').world.plant.surface_c, 'SERIAL_N' in globals())")
    assert after[0] < float(t0) - 1.0  # still cold after the reset
    assert after[1] is False  # the serial event was not typed again
    assert t.eval("__import__('cryo.board').board.build().estop.value()") == 0
    t.close()


OPEN_VALVES = """
import cryo.board
bd = cryo.board.build()
bd.master_pin.value(1)
bd.valve_pin.value(1)
"""
VALVE_OPEN = "__import__('vboard').world.valve_is_open()"


def test_soft_reset_keeps_pin_levels_and_boot_py_closes_the_valves(sim, tmp_path):
    """Soft reset keeps output levels on boards: without boot.py's first
    action the valve would stay open; with it, it is closed at once."""
    bare = tmp_path / "bare_rom"
    bare.mkdir()
    (bare / "cryo").symlink_to(ROOT / "firmware" / "cryo")
    (bare / "boot.py").write_text("pass\n")
    b = sim(rom=bare)
    r = b.mpremote("resume", "exec", OPEN_VALVES, "soft-reset", "eval", VALVE_OPEN)
    assert r.stdout.strip() == "True", r.stdout + r.stderr  # pins survived the soft reset
    r = b.mpremote("resume", "exec", "--no-follow", "import machine; machine.reset()")
    assert b.wait_resets(2)[-1] == "reset"
    b.wait_prompt()
    r = b.mpremote("resume", "eval", VALVE_OPEN)
    assert r.stdout.strip() == "False"  # a hard reset de-energises the outputs
    b.stop()

    b = sim()  # the real boot.py
    r = b.mpremote("resume", "exec", OPEN_VALVES, "soft-reset", "eval", VALVE_OPEN)
    assert r.stdout.strip() == "False", r.stdout + r.stderr


def test_ctrl_c_never_leaves_the_timer_threads_stuck(sim):
    """The unix port raises KeyboardInterrupt straight from its SIGINT
    handler; delivered inside the allocator it would leave the heap's mutex
    held, and a real-time machine.Timer's thread would block for ever on its
    first allocation. The relay delivers Ctrl-C while the main thread is
    blocked: interrupt an allocating loop many times, then every timer still
    fires."""
    b = sim()
    t = b.transport()
    run(t, "import time, machine, micropython\nmicropython.kbd_intr(3)")
    for _ in range(8):
        t.exec_raw_no_follow(
            "print('busy')\nwhile True:\n"
            "    junk = [bytearray(64) for _ in range(3000)]\n"
            "    time.sleep_ms(1)\n"
        )
        t.read_until(1, b"busy\n", timeout=10)
        time.sleep(0.05)
        t.serial.write(b"\x03")
        out, err = t.follow(timeout=5)
        assert b"KeyboardInterrupt" in err, (out, err)
    got = run(
        t,
        "n = [0]\n"
        "def cb(tm):\n    n[0] += 1\n"
        "tm = machine.Timer(-1, mode=machine.Timer.PERIODIC, period=10, callback=cb)\n"
        "t0 = time.ticks_ms()\n"
        "while n[0] < 5 and time.ticks_diff(time.ticks_ms(), t0) < 3000:\n"
        "    time.sleep_ms(10)\n"
        "tm.deinit()\nprint(n[0])",
    )
    assert int(got.strip()) >= 5, got
    assert b.resets() == []
    t.close()
