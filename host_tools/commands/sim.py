"""`cryo sim` handlers: the real-time board, its front panel, fast virtual time."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from host_tools import jsonfile
from host_tools.commands.output import Progress, emit
from host_tools.errors import EXIT_FAILED, InvalidInput
from host_tools.sim import (
    DEFAULT_FLASH,
    PANEL_INPUTS,
    check_run_limits,
    run_fast,
    write_panel,
)
from host_tools.virtual.board import VirtualBoard
from host_tools.virtual.qemu import NAME as QEMU_BOARD


def cmd_run(args):
    check_run_limits(duration_s=args.duration, trace_ms=args.trace_ms, start_ms=args.start_ms)
    config = None
    if args.config:
        try:
            text = Path(args.config).read_bytes()
        except OSError as e:
            raise InvalidInput(f"--config {args.config}: {e.strerror}") from None
        config = jsonfile.loads(text, f"--config {args.config}")
    # the runner reports only at its end: shown alive, and for how long
    with Progress(args, "sim run", note=f"{args.duration:g} s of virtual time"):
        s = _run_fast(args, config)
    st = s.get("status") or {}
    lines = [
        f"plant {s['plant']} seed {s['seed']}: {s['duration_s']:.1f} s virtual in "
        f"{s['wall_s']:.2f} s ({s['speed_x']:.0f}x real time), {s['ticks']} ticks",
        f"surface min {s['min_surface_c']:.1f} C, probe min {s['min_probe_c']:.1f} C, "
        f"valve open {s['valve_open_s']:.1f} s ({s['valve_cycles']} cycles), "
        f"reservoir {s['reservoir_fraction'] * 100:.0f} %",
        f"final phase {st.get('phase')} ({st.get('reason') or '-'}), latched {st.get('latched')}",
    ]
    lines += [f"reset at {t / 1000:.1f} s: {cause}" for t, cause in s["resets"]]
    lines += [f"error: {e}" for e in s["errors"]]
    if args.flash:
        lines.append(f"flash image: {args.flash}")
    emit(args, s, "\n".join(lines))
    return EXIT_FAILED if s["errors"] else 0  # an exception escaped the firmware


def _run_fast(args, config):
    return run_fast(
        plant=args.plant,
        scenario=args.scenario,
        seed=args.seed,
        flash=args.flash,
        duration_s=args.duration,
        trace=args.trace,
        trace_ms=args.trace_ms,
        config=config,
        start_ms=args.start_ms,
        autostart=not args.no_autostart,
        flash_kib=args.flash_size,
        board=args.board,
    )


def cmd_panel(args):
    inputs = {}
    for k in PANEL_INPUTS:
        v = getattr(args, k)
        if v is not None:
            inputs[k] = v
    if not inputs:
        raise InvalidInput(
            "cryo sim panel: give at least one of --footswitch, --handpiece, --estop"
        )
    state = write_panel(args.panel_file, **inputs)
    emit(args, state, f"{args.panel_file}: " + ", ".join(f"{k} {v}" for k, v in state.items()))
    return 0


def _qemu_board(args):
    """``--board qemu-mps2``: the emulated Cortex-M board (host_tools/virtual/qemu.py)."""
    from host_tools.virtual.qemu import QemuVirtualBoard

    for opt, given in (
        ("--power-cut-after", args.power_cut_after is not None),
        ("--tear", args.tear),
    ):
        if given:
            raise InvalidInput(
                f"{opt} is not available with --board {QEMU_BOARD}: its flash chip is "
                "the emulator's memory, not a file the relay can cut"
            )
    return QemuVirtualBoard(
        args.plant,
        args.scenario,
        args.seed,
        link=args.link,
        tcp=args.tcp,
        panel=args.panel,
        flash=args.flash,
        flash_kib=args.flash_size,
        rom=args.rom,
    )


def cmd_realtime(args):
    if args.board == QEMU_BOARD:
        return _serve(_qemu_board(args), args)
    return _serve(_unix_board(args), args)


def _unix_board(args):
    return VirtualBoard(
        flash=args.flash or DEFAULT_FLASH,
        plant=args.plant,
        seed=args.seed,
        scenario=args.scenario,
        link=args.link,
        power_cut_after=args.power_cut_after,
        tear=args.tear,
        flash_kib=args.flash_size,
        board=args.board,
        rom=args.rom,
        panel=args.panel,
        tcp=args.tcp,
    )


def _serve(vb, args):
    def stop(signum, frame):
        vb._stop = True

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        port = vb.open()
        board = {"port": port, "link": args.link, "tcp": vb.tcp.url if vb.tcp else None}
        flash = getattr(vb, "flash", None)  # None: the qemu board's chip is its memory
        board.update(flash=flash and str(flash), panel=str(vb.panel), plant=args.plant)
        board["seed"] = args.seed
        text = (
            f"virtual board on {port}"
            + (f" (link {args.link})" if args.link else "")
            + (f", {vb.tcp.url}" if vb.tcp else "")
            + f"\n  flash {flash or 'in the emulator'}, plant {args.plant}, seed {args.seed}; "
            f"try: mpremote connect {args.link or port} resume exec \"print('hi')\""
            f"\n  front panel {vb.panel}: cryo sim panel {vb.panel} --handpiece 1 --footswitch 1"
        )
        emit(args, board, text)
        vb.serve()
    finally:
        vb.close()
        for s, h in old.items():
            signal.signal(s, h)
    if not args.json:
        print("cryo sim: stopped", file=sys.stderr)
    return 0
