"""`cryo flash`: deploy the firmware app to a board, or flash a blank board's runtime.

App deploy (the usual job): ``host_tools.deploy`` — probe, compile, sign,
copy only what changed into the inactive slot, verify on the device, switch
atomically, audit, reset.

Runtime flashing for blank boards (``--runtime FILE``): ESP32 family with
esptool used as a library, RP2 by copying the UF2 to the BOOTSEL drive,
STM32 through DFU (dfu-util). ``--dry-run`` prints exactly those steps.

Compiling is ``host_tools.build``, runtime flashing ``host_tools.runtime``;
this module is the command: arguments, progress, the printed plan.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from host_tools.build import board_profile
from host_tools.commands.output import Progress, console, emit
from host_tools.deploy import deploy, keystore
from host_tools.device.connect import ENV_PORT, resolve_port
from host_tools.errors import InvalidInput
from host_tools.runtime import check_image, required_runtime, run_runtime_step, runtime_steps


# -- CLI -----------------------------------------------------------------
def _print_plan(res: dict, dry: bool):
    from rich.table import Table

    c = console()
    verb = "would" if dry else "did"
    if res.get("up_to_date") and not res.get("boot_layer"):
        c.print(
            f"device {res['serial']}: firmware {res['version']} is up to date (slot {res['slot']})"
        )
        return
    t = Table(title=f"deploy {res['version']} to device {res['serial']} slot {res['slot']}")
    t.add_column("action")
    t.add_column("files", justify="right")
    t.add_column("detail")
    t.add_row("transfer", str(len(res["transfer"])), ", ".join(res["transfer"][:6]))
    t.add_row("copy on device", str(len(res["local_copy"])), "")
    t.add_row("unchanged", str(res["unchanged"]), "")
    t.add_row("remove", str(len(res["remove"])), ", ".join(res["remove"][:6]))
    t.add_row("boot layer", str(len(res["boot_layer"])), ", ".join(res["boot_layer"]))
    c.print(t)
    if res.get("provision_key"):
        c.print(f"{verb} provision a new device key (kept in {keystore()})")
    if dry:
        prev = res.get("previous_slot") or "none"
        c.print(
            f"would verify slot {res['slot']} on the device, switch app/active {prev} → "
            f"{res['slot']}, record the deploy in the audit trail and reset the board"
        )
    else:
        c.print(
            f"switched to slot {res['slot']}; audit: {res.get('audit')}; reset: {res.get('reset') or 'not requested'}"
        )


def cmd_flash(args) -> int:
    prof = board_profile(args.board)
    if args.runtime:
        return _flash_runtime(args, prof)
    if args.dry_run and not (args.port or os.environ.get(ENV_PORT)):
        # no port to ask: the plan for a blank board (what README promises)
        return _blank_plan(args, prof, [])

    from host_tools.device.connect import Session

    port = resolve_port(args.port)
    t0 = time.perf_counter()
    _check_tree(args.firmware)
    # The port first: a missing or busy board is reported at once, not after
    # a cold compile (seconds; deploy() keeps the board's watchdog fed meanwhile).
    with Session(port) as s, Progress(args, "deploy", unit="bytes") as bar:
        bar.update(note="compiling and comparing")
        res = deploy(
            s,
            args.board,
            firmware_dir=args.firmware,
            dry_run=args.dry_run,
            progress=None if args.dry_run else bar,
            reset=not args.no_reset,
        )
    res["seconds"] = round(time.perf_counter() - t0, 3)
    emit(args, res, lambda: _print_plan(res, args.dry_run))
    return 0


def _check_tree(firmware: Path):
    if not (firmware / "cryo").is_dir():
        raise InvalidInput(f"{firmware} is not a firmware tree (no cryo/ package in it)")


def _flash_runtime(args, prof) -> int:
    image = check_image(prof, Path(args.runtime))
    port = args.port or os.environ.get(ENV_PORT)
    steps = runtime_steps(prof, image, port, bootsel=Path(args.bootsel) if args.bootsel else None)
    if args.dry_run:
        return _blank_plan(args, prof, steps, image)
    res = {"board": args.board, "runtime": str(image), "dry_run": False}
    res.update(steps=[s[2] for s in steps], then=f"cryo flash --board {args.board}")
    for s in steps:
        if not args.json:
            print("running: " + s[2], flush=True)
        run_runtime_step(s)
    emit(args, res)
    return 0


def _blank_plan(args, prof, steps, image=None) -> int:
    """A blank board's dry run, no port needed: the runtime (the exact steps
    with ``--runtime``, else what it needs) and every file of the app."""
    from cryo import paths
    from host_tools.build import build

    _check_tree(args.firmware)
    then = f"cryo flash --board {args.board}"
    res = {"board": args.board, "runtime": image and str(image), "dry_run": True, "then": then}
    res["steps"] = [s[2] for s in steps]
    if not steps:
        res["runtime_needed"] = required_runtime(prof)
    with Progress(args, "compile", note=f"the app for {args.board}"):
        b = build(args.board, args.firmware)
    slot = paths.slot_dir("a")  # a blank board has no app: the first deploy fills slot a
    res["app"] = {
        "version": b["meta"]["version"],
        "arch": b["meta"]["arch"],
        "slot": {f"{slot}/{p}": len(data) for p, data in sorted(b["slot"].items())},
        "boot_layer": {p: len(data) for p, data in sorted(b["root"].items())},
    }
    emit(args, res, lambda: _print_blank(res))
    return 0


def _print_blank(res):
    lines = [f"would run: {s}" for s in res["steps"]]
    if not res["steps"]:
        lines.append(f"runtime: {res['runtime_needed']}")
    lines.append(f"then: {res['then']} (deploy the app)")
    app = res["app"]
    for what, files in (("boot layer", app["boot_layer"]), ("app slot", app["slot"])):
        lines.append(
            f"{what}: {len(files)} files, {sum(files.values())} bytes "
            f"(app {app['version']}, {app['arch'] or 'bytecode'})"
        )
        lines += [f"  {p}  {n} B" for p, n in files.items()]
    print("\n".join(lines), flush=True)
