"""Fast virtual time: the firmware's control tick against the plant, as fast
as the CPU allows. Run under MicroPython by ``cryo sim run`` (host_tools/sim.py)::

    micropython boards/sim/fastrun.py OPTIONS.json

(a file: the PyPI unix port aborts on argv elements of >= 256 characters).
Options (JSON object): plant, scenario, seed, flash (image path or null = RAM),
flash_blocks, duration_s, trace (CSV path or null), trace_ms, config (dict
for the Controller), board (board.json path or null; its ``flash_root``,
"/flash" for the pyboard's layout, is where the flash is mounted and every
firmware file named from), rom (firmware dir),
sim (boards/sim dir), start_ms (virtual ticks at boot, to cross the 2**30
wrap), autostart (call Controller.start after boot), flash_at (address of
memory outside the heap for the flash contents: the emulated Cortex-M board),
collect_each_tick (collect after every tick and report the heap peaks),
firmware_heap (bytes: run the firmware in a real board's free heap, the
virtual board's share held apart; the summary's ``firmware_heap_free``
is what was free for it at boot).

The board's safety timer is armed with the controller's ``safety_isr`` as
``Controller.run`` arms it, and fires in virtual time (also while a
``wdt_starve`` event hangs the firmware).

Every virtual millisecond is deterministic for a given seed: the clock is a
``cryo.clock.ManualClock`` advanced by the controller's period in
``service_ms`` steps (10 ms); at each step ``Controller.service_valve(now)``
runs (the valve sub-tick ``Controller.run`` does between ticks) and the
plant is stepped every 20 ms with the valve duty measured on the pins (open
time integrated from the pin-edge times, to the ms), then the tick;
scenario events fire at their virtual time. The flash image is written as the
firmware writes it (file-backed littlefs), so ``cryo logs`` can pull the
logs afterwards. The last stdout line is ``@@SIM@@`` + a JSON summary.

The firmware it boots is built in fastrun_firmware.py; what it measures
(summary figures, trace) is kept in fastrun_figures.py.
"""

import gc
import json
import sys
import time

import plant
import scenario as scen_mod
import vboard
from fastrun_figures import RunFigures, Trace
from fastrun_firmware import make_controller, serial_bytes
from vboard import BoardReset

from cryo.clock import ManualClock

MARK = "@@SIM@@"


def _leave_for_firmware(nbytes):
    """With ``firmware_heap`` set, hold all but ``nbytes`` of the free heap
    in one block before the firmware is imported: the virtual board (its
    ``machine``, chips, plant and flash) is built by then, so the firmware
    runs in exactly a real board's free heap, with the virtual board's
    share beside it, as on hardware where those are silicon. The virtual
    board's garbage during the run still lands in the firmware's share: a
    harder condition than the board's. Returns the block (kept alive by the
    caller) and the heap then free, or (None, None)."""
    if not nbytes:
        return None, None
    import machine  # noqa: F401 - the virtual board's, counted on its side

    gc.collect()
    spare = gc.mem_free() - int(nbytes)
    if spare <= 0:
        raise ValueError(
            "firmware_heap %d exceeds the %d bytes free once the virtual board is built"
            % (nbytes, gc.mem_free())
        )
    block = bytearray(spare - 16)  # its own header and GC block rounding
    gc.collect()
    return block, gc.mem_free()


def main(opts_path=None):
    """Run with the options file ``opts_path`` (default: the first argument;
    a frozen runner on a port without ``sys.argv`` is called with it)."""
    if opts_path is None and len(sys.argv) > 1:
        opts_path = sys.argv[1]
    opts = {}
    if opts_path is not None:
        with open(opts_path) as f:
            opts = json.load(f)
    # A collection every 256 KB allocated: on the PyPI unix port a list
    # growing among many new floats raises MemoryError with most of the
    # heap free (a long run's events and logs); collecting early avoids it.
    gc.threshold(256 * 1024)
    seed = int(opts.get("seed", 0))
    clock = ManualClock(int(opts.get("start_ms", 0)))
    board_def = vboard.load_board(opts.get("board"))
    params = plant.load(opts.get("plant") or "default")
    world = vboard.install(vboard.World(board_def, params, seed, clock, realtime=False))
    world.serial_out = bytearray()
    if opts.get("scenario"):
        doc = scen_mod.load(opts["scenario"])
        world.scenario = scen_mod.Scenario(doc, clock.ticks_ms(), clock)
    trace = Trace(opts["trace"], int(opts.get("trace_ms", 100))) if opts.get("trace") else None
    dev = vboard.make_flash(
        opts.get("flash"), 4096, int(opts.get("flash_blocks", 512)), opts.get("flash_at")
    )
    world.flash = dev
    flash_root = board_def.get("flash_root", "/")
    vboard.mount_root(dev, opts.get("rom"), opts.get("sim"), flash_root)
    errors = []
    try:
        ballast, firmware_free = _leave_for_firmware(opts.get("firmware_heap"))
    except ValueError as e:
        errors.append(str(e))
        ballast = firmware_free = None
    import cryo.board as cboard

    cboard.use_flash(flash_root)  # as boot.py: checked, and files named from it

    duration_ms = int(float(opts.get("duration_s", 60)) * 1000)
    resets = []
    t_start_wall = time.ticks_us()
    elapsed = 0
    hang_until = None
    off_until = None
    ctrl = link = None
    period = 10
    figures = RunFigures(bool(opts.get("collect_each_tick")))

    def boot():
        b = cboard.Board(board_def, clock)
        # The controller arms the safety timer beside the loop at
        # construction (it fires in virtual time, so a wdt_starve hang meets it).
        return make_controller(b, opts, clock, world)

    autostart_ms = int(float(opts.get("autostart_s", 1.0)) * 1000)
    started_at = [None]

    def autostart(now):
        # Start (self-test -> READY) once the sensors have delivered samples,
        # as the operator would after power-up; again after every reset.
        try:
            ctrl.start(now)
        except Exception as e:  # noqa: BLE001 - recorded; the tick still runs
            world.log.append((now, "start refused: %s" % (e,)))

    def reboot(cause):
        nonlocal ctrl, link, dev, off_until, hang_until
        resets.append((elapsed, cause))
        started_at[0] = None
        hang_until = None  # a reset ends a firmware hang
        world.outputs_off()
        world.reset_cause = cause
        ctrl = link = None
        if cause == "power":
            dev = dev.reboot()
            world.flash = dev
            vboard.remount_root(dev, flash_root)
        gc.collect()

    try:
        if errors:
            duration_ms = 0  # the run was refused before the firmware
        else:
            ctrl, link = boot()
            period = ctrl.period_ms
            started_at[0] = elapsed
    except BoardReset as r:
        reboot(r.cause)
    except Exception as e:  # noqa: BLE001 - firmware cannot start: report, stop
        sys.print_exception(e)
        errors.append("boot failed: %r" % (e,))
        world.outputs_off()
        duration_ms = 0

    while elapsed < duration_ms:
        # Between ticks, as Controller.run spends the wait: the plant stepped
        # and the valve serviced every service_ms (time-proportioning
        # resolution = the sub-tick, not the 100 ms tick).
        sub = ctrl.service_ms if ctrl is not None else period
        if sub <= 0 or sub > period:
            sub = period
        left = period
        while left > sub:
            clock.advance(sub)
            elapsed += sub
            left -= sub
            now = clock.ticks_ms()
            try:
                world.sync()  # plant step every 20 ms (its granularity)
                if ctrl is not None and off_until is None and hang_until is None:
                    ctrl.service_valve(now)
            except BoardReset as r:
                reboot(r.cause)
            figures.hold(ctrl, world, elapsed, sub)
        clock.advance(left)
        elapsed += left
        now = clock.ticks_ms()
        try:
            world.advance_to(now)
        except BoardReset as r:
            reboot(r.cause)
        while world.pending:
            ev = world.pending.pop(0)
            name = ev["event"]
            if name == "wdt_starve":
                hang_until = elapsed + int(ev["ms"])
            elif name == "power_cut":
                reboot("power")
                off_until = elapsed + int(float(ev.get("off_s", 1.0)) * 1000)
            elif name == "reset":
                reboot("reset")
            elif name == "serial":
                world.serial_in.extend(serial_bytes(ev))
            elif name == "call" and ctrl is not None:
                try:
                    getattr(ctrl, ev["method"])(*ev.get("args", []))
                except Exception as e:  # noqa: BLE001
                    world.log.append((now, "call %s: %s" % (ev["method"], e)))
        if off_until is not None:
            if elapsed < off_until:
                continue
            off_until = None
        if ctrl is None:
            try:
                ctrl, link = boot()
                started_at[0] = elapsed
            except BoardReset as r:
                reboot(r.cause)
                continue
            except Exception as e:  # noqa: BLE001 - firmware cannot start: report, stop
                sys.print_exception(e)
                errors.append("t=%d ms: boot failed: %r" % (elapsed, e))
                world.outputs_off()
                break
        if hang_until is not None and elapsed < hang_until:
            pass  # firmware hung: no tick, no feed
        else:
            hang_until = None
            try:
                figures.tick(ctrl, now, elapsed)
                ctrl.idle(now)
                if link is not None:
                    link.poll()
            except BoardReset as r:
                reboot(r.cause)
                continue
            except Exception as e:  # noqa: BLE001 - an escaped exception: valves closed, reboot
                world.outputs_off()
                errors.append("t=%d ms: %r" % (elapsed, e))
                reboot("exception")
                continue
            figures.tick_done()
            if (
                opts.get("autostart", True)
                and started_at[0] is not None
                and elapsed - started_at[0] >= autostart_ms
            ):
                started_at[0] = None
                autostart(now)
        figures.hold(ctrl, world, elapsed, left)
        if world.wdt_expired(now):
            reboot("wdt")
        figures.step(world, period)
        if trace is not None:
            trace.sample(elapsed, world, ctrl)
        if figures.ticks % 200 == 0:
            gc.collect()

    wall_us = time.ticks_diff(time.ticks_us(), t_start_wall)
    if ctrl is not None:
        try:
            ctrl.safe()
        except Exception:  # noqa: BLE001
            world.outputs_off()
    status = None
    if ctrl is not None:
        try:
            status = ctrl.status()
        except Exception as e:  # noqa: BLE001
            status = {"error": repr(e)}
    if trace is not None:
        trace.close()
    import vfs

    try:
        vfs.umount(flash_root)
    except OSError:
        pass
    if opts.get("flash"):
        dev.close()
    p = world.plant
    summary = {
        "plant": p.name,
        "seed": seed,
        "duration_s": duration_ms / 1000.0,
        "period_ms": period,
        "wall_s": wall_us / 1e6,
        "speed_x": (duration_ms * 1000.0 / wall_us) if wall_us > 0 else 0,
        "resets": resets,
        "errors": errors,
        "surface_c": p.surface_c,
        "valve_cycles": world.valve_cycles,
        "valve_flow_s": world.flow_ms / 1000.0,
        "uncommanded_flow_s": world.uncommanded_ms / 1000.0,
        "reservoir_fraction": p.reservoir_fraction,
        "frozen_depth_mm": p.frozen_depth_mm(),
        "events": [[t, str(n)] for t, n in world.log],
        "scenario_done": world.scenario.done() if world.scenario is not None else None,
        "status": status,
        # the controller's recent notes (why a start was refused, ...)
        "notes": [list(e) for e in ctrl.journal.events] if ctrl is not None else [],
        "serial_out": bytes(world.serial_out).decode("utf-8", "replace")[-2000:],
    }
    summary.update(figures.summary(ctrl))
    summary["firmware_heap_free"] = firmware_free
    summary["held_for_board"] = len(ballast) if ballast is not None else 0
    # Streamed: the summary as one string does not fit a small board's heap.
    sys.stdout.write(MARK)
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
