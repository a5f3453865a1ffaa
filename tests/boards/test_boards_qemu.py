"""The firmware frozen into a real Cortex-M build, on the emulated board.

boards/qemu-mps2: QEMU's MPS2 AN385 machine (Cortex-M3) running the qemu
port of MicroPython built from the pinned upstream source by ``make qemu``
(boards/qemu-mps2/manifest.py frozen in), with the heap of an RP2040
(``QEMU_HEAP``). Reached over its emulated UART with real mpremote; in
real time (``cryo sim --board qemu-mps2``, host_tools/virtual/qemu.py) also
by the shipped ``cryo`` commands.
"""

import json
from pathlib import Path

import pytest
import qemu_board as Q


@pytest.fixture(scope="module")
def board():
    with Q.QemuBoard() as b:
        yield b


def test_the_emulated_board_is_a_32_bit_float32_board_with_the_firmware_frozen(board):
    out = board.exec(
        """
import gc, json, sys, time
gc.collect()
free0 = gc.mem_free()
import cryo.controller, machine, os
gc.collect()
def on_a_filesystem(f):
    try:
        os.stat(f)
        return True
    except OSError:
        return False
files = [cryo.controller.__file__, machine.__file__]
print(json.dumps([sys.implementation._machine, 1 / 3, sys.maxsize, time.ticks_add(0, -1),
                  gc.mem_alloc() + gc.mem_free(), free0, gc.mem_free(),
                  files, [on_a_filesystem(f) for f in files]]))
"""
    )
    mach, third, maxsize, tick_max, heap, free0, free1, files, on_fs = json.loads(
        out.strip().splitlines()[-1]
    )
    assert "Cortex-M3" in mach
    assert third == pytest.approx(0.33333334, abs=1e-9) and third != 1 / 3  # float32
    assert maxsize == 2**31 - 1 and tick_max == 2**30 - 1
    assert heap <= Q.HEAP <= 190 * 1024
    # Frozen: the modules come from the image, not from a filesystem, and
    # importing the controller costs its objects only, not its bytecode
    # (143 KB of .mpy): measured 37 KB.
    assert files == ["cryo/controller.py", "machine.py"] and on_fs == [False, False]
    assert free0 - free1 < 64 * 1024


def test_a_treatment_on_the_emulated_board_fits_an_rp2040_heap():
    """The fast-mode runner (``cryo sim run``'s) with the frozen firmware
    and the virtual board's chips and plant, all on the emulated Cortex-M3
    heap of an RP2040: a minute of treatment that crosses the 2**30 tick
    wrap (pre-cool, freeze, thaw) without an escaped exception or a reset,
    collecting after every tick to find the peak. The whole treatment runs
    in ``make bench`` (bench/bench_qemu.py)."""
    s, _, free = Q.run_treatment(duration_s=60)
    assert s["errors"] == [] and s["resets"] == []
    assert s["heap_size"] <= Q.HEAP
    assert s["valve_cycles"] > 0 and s["min_probe_c"] < -30.0
    assert s["status"]["phase"] in ("FREEZE", "THAW") and s["status"]["faults"] == []
    assert s["heap_live_peak"] < s["heap_tick_peak"] <= s["heap_size"]
    assert free > s["heap_size"] - 8 * 1024  # nothing but the runner before it


def test_the_firmware_runs_in_the_smallest_boards_free_heap():
    """The same minute with the firmware in the pyboard's free heap (~100 KB,
    the smallest supported board): the virtual board is built first and
    the rest of the emulated board's heap is held apart, so the firmware
    imports, boots, treats and logs in exactly that heap, with the virtual
    board's garbage competing for it. The whole treatment runs in ``make
    bench``."""
    fw = Q.STM32F4_FREE_HEAP
    s, _, _ = Q.run_treatment(duration_s=60, firmware_heap=fw)
    assert s["firmware_heap_free"] == fw and s["held_for_board"] > 0
    assert s["errors"] == [] and s["resets"] == []
    assert s["status"]["phase"] in ("FREEZE", "THAW") and s["status"]["faults"] == []
    assert s["valve_cycles"] > 0 and s["min_probe_c"] < -30.0
    # What the firmware keeps live stays well inside the board's heap.
    in_use_before = s["heap_size"] - fw
    assert s["heap_live_peak"] - in_use_before < 0.8 * fw


def test_a_firmware_heap_larger_than_the_emulated_board_has_is_refused():
    s, _, _ = Q.run_treatment(duration_s=1, firmware_heap=Q.HEAP)
    assert s["ticks"] == 0 and len(s["errors"]) == 1
    assert "firmware_heap %d exceeds" % Q.HEAP in s["errors"][0]


# One freeze-thaw cycle of 5 s at -20 degC, thawed above -5 degC: a whole
# treatment in about 80 s of real time on the 3x-spray plant.
SHORT_PROTOCOL = (
    "protocol.cycles=1",
    "protocol.freeze_s=5",
    "protocol.min_thaw_s=10",
    "protocol.target_c=-20",
    "protocol.thaw_threshold_c=-5",
)


SLOW_HOST_LIMITS = ("limits.overruns=20", "limits.heartbeat_ms=2000")


@pytest.fixture
def strong_spray_board():
    yield from _realtime("strong_spray")


@pytest.fixture
def realtime_board():
    yield from _realtime("default")


def _realtime(plant):
    """``cryo sim --board qemu-mps2`` in this process: the board booting,
    its relay served by a thread; stopped (QEMU killed) in teardown."""
    import threading

    from host_tools.virtual.qemu import QemuVirtualBoard

    Q.require_elf()
    vb = QemuVirtualBoard(plant, log=lambda m: None)
    vb.open()
    stop = threading.Event()
    t = threading.Thread(target=vb.serve, kwargs={"until": stop.is_set}, daemon=True)
    t.start()
    yield vb
    stop.set()
    t.join(5)
    vb.close()


def _cryo(*args, timeout=120):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "host_tools.cli", *args],
        capture_output=True,
        text=True,
        cwd=Q.ROOT,
        timeout=timeout,
    )


def _status(vb, within_s=30):
    """The controller's status through ``cryo monitor``. A board that a
    service session just soft-reset boots for about 3 s (docs/boards.md);
    its REPL banner left on the line answers first: asked again."""
    import time

    deadline = time.monotonic() + within_s
    while True:
        r = _cryo("monitor", "-p", vb.port, "--json", "--duration", "0.5", "--rate", "2")
        if r.returncode == 0 or time.monotonic() > deadline:
            break
    assert r.returncode == 0, "%s\nthe board printed:\n%s" % (
        r.stderr,
        vb.tail.decode("utf-8", "replace"),
    )
    return json.loads(r.stdout.splitlines()[0])


def test_cryo_sim_qemu_board_in_real_time_full_treatment_driven_and_pulled_by_the_tools(
    strong_spray_board, tmp_path
):
    """``cryo sim --board qemu-mps2``: the frozen firmware's boot.py and
    main.py on the emulated Cortex-M3 (an RP2040's heap) in real time,
    reached over the pty relay by the shipped ``cryo`` commands only: PINs
    and a short one-cycle protocol set with ``cryo config``, the treatment
    started and held on the front panel (``cryo sim panel``'s bytes on
    UART1) and watched with ``cryo monitor`` until the device ends it
    (DONE); ``cryo reset`` (the watchdog the treatment armed blocks service
    mode until a reset), then ``cryo logs pull`` (CRCs and audit chain
    verified), ``cryo logs list`` and ``cryo logs report`` of the session."""
    import time

    vb = strong_spray_board
    port = vb.port
    st = _status(vb)  # waits for the boot
    assert st["phase"] == "IDLE" and st["temps"]["tissue"] > 30.0, st
    for argv in (
        ("--role", "service", "--pin", "4711", "pin", "service", "4711"),
        ("--role", "service", "--pin", "4711", "pin", "operator", "1111"),
        ("--role", "operator", "--pin", "1111", "--yes", "set", *SHORT_PROTOCOL),
        # QEMU emulates the Cortex-M3 in real time on a host that `make test`
        # keeps busy with a second suite: a loop late by several periods in a
        # row is the host's, not the firmware's (instructions per tick are
        # measured in fast time, docs/boards.md), so the service engineer
        # widens the overrun limits as far as the schema allows
        ("--role", "service", "--pin", "4711", "--yes", "set", *SLOW_HOST_LIMITS),
    ):
        r = _cryo("config", "-p", port, *argv)
        assert r.returncode == 0, r.stdout + r.stderr
    # the service sessions restarted the controller (soft reset): a pedal
    # already held when it comes up is no press, so wait for it first
    assert _status(vb)["phase"] == "IDLE"
    vb.press(handpiece=1, footswitch=1)  # the technician starts and holds
    phases = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        st = _status(vb)
        if not phases or phases[-1] != st["phase"]:
            phases.append(st["phase"])
        if st["phase"] in ("DONE", "FAULT", "ABORTED"):
            break
    assert phases[-1] == "DONE" and "FREEZE" in phases and "THAW" in phases, (phases, st)
    assert st["faults"] == [] and not st["valve"]
    vb.press(footswitch=0, handpiece=0)
    r = _cryo("reset", "-p", port, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["controller_was"] == "running", r.stderr
    arch = str(tmp_path / "arch")
    r = _cryo("logs", "--port", port, "--archive", arch, "--json", "pull")
    assert r.returncode == 0, r.stdout + r.stderr
    pulled = json.loads(r.stdout)
    assert pulled["verify"]["ok"], pulled["verify"]
    assert pulled["marked_pulled_upto"] == 1
    r = _cryo("logs", "--port", port, "--archive", arch, "--json", "list")
    assert r.returncode == 0, r.stdout + r.stderr
    (session,) = json.loads(r.stdout)
    assert session["cycles"] == 1 and session["faults"] == 0
    r = _cryo(
        "logs", "--port", port, "--archive", arch, "--json", "report", "1", "-o", str(tmp_path)
    )
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(Path(json.loads(r.stdout)["json"]).read_text())
    assert rep["outcome"] == "DONE" and rep["target_reached"] is True and rep["faults"] == []
    assert rep["planned_cycles"] == 1 and rep["cycles_done"] == 1 and rep["target_c"] == -20.0
    assert [m for _, m in vb.resets] == ["reset"]


def test_machine_reset_on_the_real_time_qemu_board_keeps_the_flash(realtime_board):
    """``machine.reset()`` on the emulated board: the world asks the host on
    UART1, QEMU resets the machine (QMP), the flash keeps its files, the
    controller comes back and the reset cause is the reset's, not power-up."""
    import subprocess

    from host_tools.device.link import Link

    vb = realtime_board
    port = vb.port

    def mpremote(*args):
        r = subprocess.run(
            [Q.MPREMOTE, "connect", port, "resume", "exec", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    with Link(port) as link:
        assert link.await_controller(boot_wait=60)
    code = "open('/mark.txt', 'w').write('x')\nimport machine\nmachine.reset()"
    mpremote("--no-follow", code)
    with Link(port) as link:
        assert link.await_controller(boot_wait=60)  # main.py runs again
    out = mpremote(
        "import machine, os\nprint(machine.reset_cause(), machine.HARD_RESET, os.listdir('/'))"
    )
    cause, hard, files = out.split(" ", 2)
    assert cause == hard and "mark.txt" in files
    assert [m for _, m in vb.resets] == ["reset"]


def _cryo_sim_qemu(tmp_path, *extra):
    """``cryo sim --board qemu-mps2 --link PORT ...`` as users start it."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "host_tools.cli", "sim", "--board", "qemu-mps2"]
    p = subprocess.Popen(
        cmd + ["--link", str(tmp_path / "port"), *extra],
        cwd=Q.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "virtual board on /dev/pts/" in p.stdout.readline(), p.stderr.read()
    from host_tools.device.link import Link

    try:
        with Link(str(tmp_path / "port")) as link:
            assert link.await_controller(boot_wait=60)  # booted: main.py runs
    except BaseException:
        p.terminate()  # cryo sim stops its QEMU on SIGTERM: none is left behind
        p.wait(timeout=30)
        raise
    return p


def _stop(p):
    import signal

    kids = Path("/proc/%d/task/%d/children" % (p.pid, p.pid)).read_text().split()
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0
    assert kids and not [k for k in kids if Path("/proc/" + k).exists()]  # no QEMU left


def test_cryo_sim_board_qemu_mps2_command_line_and_flash_file(tmp_path):
    """The command as users type it: ``cryo sim --board qemu-mps2 --link``
    prints its port, real mpremote runs code on the emulated Cortex-M3
    through the link, SIGTERM stops it (exit 0, QEMU gone, link removed).
    ``--flash FILE`` keeps the flash chip in FILE between runs; options the
    emulated board cannot honour are refused by name."""
    import subprocess
    import sys

    Q.require_elf()
    link, img = tmp_path / "port", tmp_path / "flash.img"

    def mpremote(code):
        r = subprocess.run(
            [Q.MPREMOTE, "connect", str(link), "resume", "exec", code],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout.strip()

    p = _cryo_sim_qemu(tmp_path, "--flash", str(img))
    try:
        assert mpremote("import sys; print(sys.platform)") == "qemu"
        mpremote("with open('/kept.txt', 'w') as f:\n    f.write('across runs')")
        # a machine reset keeps what was written since power-up (QEMU writes
        # the loaded image again at every reset: it is staged, not the chip)
        r = _cryo("reset", "-p", str(link), "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        assert mpremote("print(open('/kept.txt').read())") == "across runs"
    finally:
        _stop(p)
    # the flash contents, then the chip's id (boards/sim/flash.py)
    from host_tools.sim import image_uid

    uid = image_uid(img, 512)
    assert not link.exists() and uid and img.stat().st_size == 2048 * 1024 + 14
    p = _cryo_sim_qemu(tmp_path, "--flash", str(img))
    try:
        assert mpremote("print(open('/kept.txt').read())") == "across runs"
        assert mpremote("import machine; print(machine.unique_id().hex())") == uid
    finally:
        _stop(p)
    r = subprocess.run(
        [sys.executable, "-m", "host_tools.cli", "sim", "--board", "qemu-mps2", "--tear"],
        cwd=Q.ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "--tear is not available with --board qemu-mps2" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "host_tools.cli", "sim", "--board", "qemu-mps2"]
        + ["--flash", str(img), "--flash-size", "1024"],
        cwd=Q.ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "the board's flash is 1048576" in r.stderr
