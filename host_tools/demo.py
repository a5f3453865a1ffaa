"""`make demo`: a complete simulated treatment on the virtual board.

Two freeze-thaw cycles of the real firmware (board layer, MAX31855/MAX31856
drivers against register-level chip emulators, interlock, protocol, PID,
valves, treatment log on a littlefs flash image) under the MicroPython unix
port, in fast virtual time on the calibrated default plant, then a
phase-by-phase summary. The treatment log is written to a flash image
(``build/demo/flash.img``), so the last step can pull it and write the
report with ``host_tools.commands.logs.pull_and_report`` (``finish``).

Run: ``python -m host_tools.demo [--plant P] [--seed N] [--out DIR] [--no-report]``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from host_tools import FIRMWARE_DIR, ROOT
from host_tools.interpreter import micropython_exe
from host_tools.mpylib import MPYLIB_DIR
from host_tools.sim import sim_uid

SIM_DIR = ROOT / "boards" / "sim"
MARK = "@@DEMO@@"

# Demo protocol: the clinical defaults except a -25 °C target and 15 s hold,
# which the calibrated plant (Har-Shai 2007 contact cooling, ~13 °C/min)
# reaches in about five minutes per cycle.
DEMO_CONFIG = {"target_c": -25.0, "freeze_s": 15.0, "cycles": 2}
DEWAR_KG = 1.0
DEMO_BLOCKS = 512  # the virtual board's 2 MiB flash, 4 KiB blocks

# Runs inside MicroPython: argv[1] is the path of a JSON options file (the
# PyPI unix port aborts with "FATAL: uncaught NLR" on an argv string longer
# than ~256 bytes, so options never go on the command line).
_SCRIPT = r"""
import sys, json, gc
with open(sys.argv[1]) as f:
    opts = json.load(f)
gc.threshold(256 * 1024)
import vboard
import plant as plant_mod
from cryo.clock import ManualClock

clock = ManualClock(opts["start_ms"])
board_def = vboard.load_board()
params = plant_mod.load(opts["plant"])
params["reservoir_kg"] = opts["dewar_kg"]
world = vboard.install(vboard.World(board_def, params, opts["seed"], clock, realtime=False))
# The board's clock set from the host's, as `cryo` sets a device's on connect.
world.rtc_base_s = opts["rtc_base_s"]
dev = vboard.make_flash(opts["flash"], 4096, opts["blocks"])
world.flash = dev
vboard.mount_root(dev, opts["rom"], opts["sim"])

from cryo.board import Board
from cryo.controller import Controller
from cryo.protocol import states as S
from cryo.storage.log import TreatmentLog

board = Board(board_def, clock)
# The session's start from the board's RTC, read as main.py reads it.
from cryo.board import rtc_seconds
rtc = rtc_seconds(board)
rtc_log = lambda: (rtc(), 0)
log = TreatmentLog(root="/logs", clock=clock, rtc=rtc_log)
ctl = Controller(board, opts["config"], log=log, rtc=rtc_log)
period = ctl.period_ms
target = ctl.params["target_c"]
phases = []
cur = None


def open_phase(st, t):
    global cur
    cur = {"phase": S.name(st), "cycle": ctl.protocol.cycle, "t0": t, "ticks": 0, "open": 0,
           "tmin": None, "tmax": None, "surf_min": None, "depth_mm": 0.0, "at_target_s": 0.0}
    phases.append(cur)


t = 0
started = False
max_ms = int(opts["max_s"] * 1000)
open_phase(ctl.protocol.state, 0)
while t < max_ms:
    # The wait between ticks as Controller.run spends it (valve sub-ticks),
    # then the tick.
    now = clock.add(clock.ticks_ms(), period)
    open_sub = world.wait_for_tick(ctl, now)
    t += period
    ctl.tick(now)
    ctl.idle(now)
    if world.wdt_expired(now):
        print("watchdog expired at", t)
        break
    st = ctl.protocol.state
    if t >= 1000 and not started and st == S.IDLE:
        started = True
        ctl.start(now)  # operator: self-test -> READY
    if st == S.READY:
        world.set_input("handpiece", 1)  # operator picks up the handpiece ...
        world.set_input("footswitch", 1)  # ... and presses the footswitch
    if S.name(st) != cur["phase"]:
        open_phase(st, t)
    cur["ticks"] += 1
    cur["open"] += open_sub / period  # valve-open fraction of this period
    tc = ctl.inputs.temps[0]
    if tc is not None:
        cur["tmin"] = tc if cur["tmin"] is None or tc < cur["tmin"] else cur["tmin"]
        cur["tmax"] = tc if cur["tmax"] is None or tc > cur["tmax"] else cur["tmax"]
        if tc <= target:
            cur["at_target_s"] += period / 1000.0
    p = world.plant
    if cur["surf_min"] is None or p.surface_c < cur["surf_min"]:
        cur["surf_min"] = p.surface_c
    d = p.frozen_depth_mm()
    if d > cur["depth_mm"]:
        cur["depth_mm"] = d
    if st in (S.DONE, S.FAULT, S.ABORTED):
        break
ctl.safe()
log.close()
print("@@DEMO@@" + json.dumps({
    "final": ctl.protocol.name, "reason": ctl.protocol.reason, "t_s": t / 1000.0,
    "phases": phases, "events": ctl.journal.events, "faults": [list(h) for h in ctl.journal.fault_history],
    "reservoir_left": world.plant.reservoir_fraction, "valve_cycles": ctl.valve.cycles,
    "session": log.session, "params": {"target_c": target, "freeze_s": ctl.params["freeze_s"],
    "cycles": ctl.params["cycles"], "thaw_c": ctl.params["thaw_c"],
    "min_thaw_s": ctl.params["min_thaw_s"], "floor_c": ctl.params["floor_c"]},
}))
"""


def run_treatment(plant="default", seed=1, flash=None, config=None, max_s=3600.0, start_ms=0):
    """Run the treatment under MicroPython; returns the summary dict."""
    cfg = dict(DEMO_CONFIG)
    if config:
        cfg.update(config)
    opts = {
        "plant": plant,
        "seed": int(seed),
        "flash": str(flash) if flash else None,
        "blocks": DEMO_BLOCKS,
        "rom": str(FIRMWARE_DIR),
        "sim": str(SIM_DIR),
        "config": cfg,
        "max_s": float(max_s),
        "start_ms": int(start_ms),
        "dewar_kg": DEWAR_KG,
        "rtc_base_s": int(time.time()) - int(start_ms) // 1000,
    }
    env = dict(os.environ, MICROPYPATH=f"{MPYLIB_DIR}:{SIM_DIR}:{FIRMWARE_DIR}")
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "demo_board.py"
        script.write_text(_SCRIPT)
        opts_file = Path(d) / "opts.json"
        opts_file.write_text(json.dumps(opts))
        cmd = [micropython_exe(), str(script), str(opts_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(
            "demo: the virtual board failed:\n" + (proc.stdout[-3000:] + proc.stderr[-3000:])
        )
    return json.loads(lines[-1][len(MARK) :])


def _fmt(v, spec="%.1f"):
    return "-" if v is None else spec % v


def summary_lines(res):
    """Phase-by-phase table (list of lines)."""
    p = res["params"]
    out = [
        "cryo demo: 2 freeze-thaw cycles on the virtual board (MicroPython, fast virtual time)",
        "protocol: target %.0f C, hold %.0f s x %d cycles, thaw above %.0f C for >= %.0f s, floor %.0f C"
        % (p["target_c"], p["freeze_s"], p["cycles"], p["thaw_c"], p["min_thaw_s"], p["floor_c"]),
        "",
        "%-9s %5s %8s %8s %8s %8s %8s %7s %8s %9s"
        % (
            "phase",
            "cycle",
            "start s",
            "dur s",
            "tis min",
            "tis max",
            "surf min",
            "valve%",
            "frozen",
            "<=tgt s",
        ),
    ]
    for ph in res["phases"]:
        dur = ph["ticks"] * 0.1
        duty = 100.0 * ph["open"] / ph["ticks"] if ph["ticks"] else 0.0
        out.append(
            "%-9s %5d %8.1f %8.1f %8s %8s %8s %6.0f%% %6.1fmm %9.1f"
            % (
                ph["phase"],
                ph["cycle"],
                ph["t0"] / 1000.0,
                dur,
                _fmt(ph["tmin"]),
                _fmt(ph["tmax"]),
                _fmt(ph["surf_min"]),
                duty,
                ph["depth_mm"],
                ph["at_target_s"],
            )
        )
    out.append("")
    out.append(
        "result: %s after %.0f s virtual%s; valve cycles %d; dewar left %.0f %%; log session %s"
        % (
            res["final"],
            res["t_s"],
            (" (" + res["reason"] + ")") if res["reason"] and res["final"] != "DONE" else "",
            res["valve_cycles"],
            100 * res["reservoir_left"],
            res["session"],
        )
    )
    if res["faults"]:
        out.append("faults: %s" % res["faults"])
    return out


def finish(res, flash_image, out_dir, serial=None):
    """Pull the treatment log from the flash image and write the report.

    Uses ``host_tools.commands.logs.pull_and_report``; returns a list of lines to print.
    """
    from host_tools.commands import logs

    try:
        r = logs.pull_and_report(flash_image, out_dir, serial=serial)
    except Exception as e:  # noqa: BLE001 - the treatment ran; say why the report did not
        return ["report: not written: %s" % (e,)]
    lines = ["report:"]
    for k in ("archive", "png", "pdf", "csv", "json"):
        if k in r:
            lines.append("  %-7s %s" % (k, r[k]))
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(prog="cryo-demo", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--plant", default="default", help="plant name or JSON path (boards/sim/plants)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "build" / "demo"), help="output folder")
    ap.add_argument("--no-report", action="store_true", help="skip pulling the log / report")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    image = out / "flash.img"
    if image.exists():
        image.unlink()
    # A fresh image is a new device (a new chip id, as `cryo sim --flash`
    # gives it): the report names it by that serial.
    serial = sim_uid(image, DEMO_BLOCKS)
    res = run_treatment(args.plant, args.seed, flash=image)
    for line in summary_lines(res):
        print(line)
    if not args.no_report:
        for line in finish(res, image, out, serial):
            print(line)
    return 0 if res["final"] == "DONE" else 1


if __name__ == "__main__":
    sys.exit(main())
