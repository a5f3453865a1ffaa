"""A full simulated treatment on the virtual board, for heap budgeting.

Runs under the MicroPython unix port (``micropython -X heapsize=N``), with
firmware/ and boards/sim/ on MICROPYPATH:

    micropython mpy_treatment.py [board.json|-] [plant] [cycles] [max_s] [logdir] [overrides]

``overrides`` is a JSON object merged into the plant parameters (e.g.
``{"h_spray_w_m2k": 300.0}``: the calibrated keloid with a ~7x spray, so a
whole treatment takes ~11 virtual minutes).

It wires the real firmware exactly as a board does (cryo.board.Board from a
board definition, cryo.controller.Controller with a TreatmentLog) and runs
the controller's own loop policy in fast virtual time: tick, then the
planned ``gc.collect()`` idle point (Controller._loop does the same when
there is slack before the deadline). The ManualClock starts one minute
before the 2**30 tick wrap, so the treatment crosses it.

The last line printed is one JSON object: final state, phases seen, ticks,
``live_peak`` (largest heap in use right after the idle-point collect: what
the firmware keeps), ``tick_peak`` (largest heap in use just before it: live
data plus one tick's garbage) and ``alloc_per_tick_avg``/``_max`` (bytes the controller's tick allocates; the
plant step before it is not counted), ``heap_total`` (the heap size) and ``sim_base`` (heap held by the interpreter
and the virtual board before any firmware object exists: ``live_peak -
sim_base`` is the firmware's own share). A
MemoryError anywhere ends the process with a traceback (exit code 1).
"""

import gc
import json
import sys

import plant as plant_mod
import vboard

from cryo.clock import ManualClock


def _arg(i, default):
    argv = sys.argv
    if len(argv) > i and argv[i] != "-":
        return argv[i]
    return default


def _make_log(clock, root):
    try:
        from cryo.storage.log import TreatmentLog
    except ImportError:
        return None
    import os

    try:
        os.mkdir(root)
    except OSError:
        pass
    return TreatmentLog(root=root + "/logs", clock=clock)


def main():
    board_path = _arg(1, None)
    plant_name = _arg(2, "default")
    cycles = int(_arg(3, "2"))
    max_s = int(_arg(4, "900"))
    logdir = _arg(5, "/tmp/cryo_heap_%d" % (gc.mem_free() & 0xFFFF))
    overrides = json.loads(_arg(6, "{}"))
    params = plant_mod.load(plant_name)
    for key in overrides:
        params[key] = overrides[key]
    defn = vboard.load_board(board_path)
    clock = ManualClock((1 << 30) - 60000)
    world = vboard.World(
        board=defn,
        plant_params=params,
        seed=1,
        clock=clock,
        realtime=False,
    )
    vboard.install(world)
    import machine  # noqa: F401 - the virtual board's, counted in sim_base

    gc.collect()
    sim_base = gc.mem_alloc()  # interpreter + virtual board (plant, chips, world)
    from cryo.board import Board
    from cryo.controller import Controller
    from cryo.protocol import states as S

    end = (1 << S.DONE) | (1 << S.ABORTED) | (1 << S.FAULT)
    board = Board(defn, clock)
    log = _make_log(clock, logdir)
    ctl = Controller(board, {"cycles": cycles, "require_wdt": True}, log=log)
    period = ctl.period_ms
    gc.collect()
    live_peak = gc.mem_alloc()
    tick_peak = live_peak
    seen = 0
    garbage_sum = 0
    garbage_max = 0
    max_at = ""  # phase before -> after the largest tick
    steps = 0

    def step(n):
        nonlocal live_peak, tick_peak, seen, garbage_sum, garbage_max, max_at, steps
        i = 0
        while i < n:
            clock.advance(period)
            now = clock.ticks_ms()
            world.advance_to(now)
            world.present_all()  # the chips' float work is the simulator's, not the firmware's
            was = ctl.protocol.state
            cj_was = ctl.inputs._cj_limits  # the limit block's cold junction
            before = gc.mem_alloc()  # the plant step's garbage is not the firmware's
            ctl.tick(now)
            ctl.idle(now)
            seen |= 1 << ctl.protocol.state
            used = gc.mem_alloc()
            if used > tick_peak:
                tick_peak = used
            g = used - before  # allocated by the controller (tick and idle point)
            garbage_sum += g
            if g > garbage_max:
                garbage_max = g
                max_at = S.NAMES[was] + "->" + S.NAMES[ctl.protocol.state]
                if ctl.inputs._cj_limits != cj_was:
                    max_at += ", limits re-placed for the cold junction"
            steps += 1
            gc.collect()  # the loop's planned idle point
            used = gc.mem_alloc()
            if used > live_peak:
                live_peak = used
            i += 1

    step(5)  # sensors settle
    ctl.start()
    world.set_input("handpiece", 1)
    world.set_input("footswitch", 1)
    step(1)
    if ctl.protocol.state == S.READY:
        ctl.begin()
    limit = max_s * 1000 // period
    n = 0
    while n < limit and not (seen & end):
        step(1)
        n += 1
    st = ctl.status()
    print(
        json.dumps(
            {
                "state": S.NAMES[ctl.protocol.state],
                "phases": [S.NAMES[i] for i in range(len(S.NAMES)) if seen & (1 << i)],
                "ticks": ctl.ticker.ticks,
                "virtual_s": ctl.ticker.ticks * period // 1000,
                "valve_cycles": world.valve_cycles,
                "reason": st.get("reason"),
                "sim_base": sim_base,
                "live_peak": live_peak,
                "tick_peak": tick_peak,
                "alloc_per_tick_avg": garbage_sum // steps,
                "alloc_per_tick_max": garbage_max,
                "alloc_max_at": max_at,
                "heap_total": gc.mem_alloc() + gc.mem_free(),
                "wrapped": clock.ticks_ms() < (1 << 29),
                "log": log is not None,
            }
        )
    )


main()
