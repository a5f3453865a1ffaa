"""The `cryo` command: its table of subcommands, and errors as exit codes.

Like mpremote's ``main.py``: this module holds only the command table -
every subcommand's name, arguments and help - and the dispatch; the
handlers live in ``host_tools/commands/`` (one module per command group),
the device layer in ``host_tools/device/``, the archive readers in
``host_tools/archive/``. Each ``_add_*`` below adds one subcommand and sets
``func`` (called with the parsed args, returns the exit code). Expected
errors are ``CryoError`` subclasses: printed as one line (with ``--json`` a
JSON object, ``host_tools/commands/output.py``), with the exit code the class
defines — never a traceback. The argparse machinery is
``host_tools/commands/parsing.py``.
"""

import argparse
import errno
import os
import sys
from pathlib import Path

from host_tools import FIRMWARE_DIR, keys, sim
from host_tools.archive_db import cli as archive
from host_tools.archive_db.location import ENV_ARCHIVE
from host_tools.commands import config, flash, logs, monitor, output, parsing, reset, tune
from host_tools.commands import sim as sim_cmd
from host_tools.device.connect import add_port_argument
from host_tools.errors import (
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    CryoError,
)
from host_tools.serve import cli as serve

# isort: split
from cryo.link.messages import ROLES  # the one list of roles, lowest first

EXIT_PIPE = EXIT_OK  # the reader of our output went away (`| head`): not an error of ours


def _sim_common(p, run=False):
    # `run` inherits what was given before it (cryo sim --plant X run ...):
    # its own options only override when given (SUPPRESS keeps the parent's).
    d = argparse.SUPPRESS if run else None
    p.add_argument(
        "--plant",
        default=d or "default",
        help="plant name (boards/sim/plants) or JSON file (default: default)",
    )
    p.add_argument("--seed", type=int, default=d or 0, help="noise seed (deterministic per seed)")
    p.add_argument(
        "--scenario", default=d, help="scenario name (boards/sim/scenarios) or JSON file"
    )
    p.add_argument(
        "--flash",
        default=d,
        help="littlefs2 flash image file (created if missing); default "
        + ("RAM only" if run else sim.DEFAULT_FLASH),
    )
    p.add_argument(
        "--flash-size", type=int, default=d or 2048, help="flash size in KiB (default 2048)"
    )
    p.add_argument(
        "--board",
        default=d,
        help="board.json (default boards/sim/board.json; boards/sim/board_proportional.json "
        "fits a proportional cryogen valve); real time also qemu-mps2: the "
        "emulated Cortex-M3 with the firmware frozen (make qemu)",
    )


def _add_sim(subparsers):
    p = subparsers.add_parser(
        "sim",
        help="start the virtual board (real time on a pty, or `run` in fast virtual time)",
        description="Start the virtual board on a pseudo-terminal (mpremote/pyserial open the "
        "printed port), or `cryo sim run` for fast virtual time.",
    )
    _sim_common(p)
    p.add_argument("--link", help="also make a stable symlink to the port at PATH")
    p.add_argument(
        "--tcp",
        type=int,
        metavar="PORT",
        help="also serve the line on socket://127.0.0.1:PORT (0: any free port, printed)",
    )
    p.add_argument(
        "--power-cut-after", type=int, help="cut power after N flash operations, then reboot"
    )
    p.add_argument(
        "--tear", action="store_true", help="with --power-cut-after: tear the last write"
    )
    p.add_argument("--rom", help="firmware tree served read-only at /rom (default firmware/)")
    p.add_argument(
        "--panel",
        help="front-panel file (physical inputs as JSON; default: in the relay's temp dir)",
    )
    output.add_json_argument(p, "the port, panel and flash as one JSON line")
    p.set_defaults(func=sim_cmd.cmd_realtime)
    p.hoist = False  # the real-time board's options mean nothing to `run` or `panel`
    sub = p.add_subparsers(dest="sim_command", metavar="run|panel")
    q = sub.add_parser(
        "panel",
        help="press/release inputs of a running real-time board (the technician's hands)",
    )
    q.add_argument("panel_file", help="the front-panel file printed by `cryo sim`")
    for k, what in (
        ("footswitch", "1 = pressed"),
        ("handpiece", "1 = out of its holder"),
        ("estop", "1 = loop closed, 0 = pressed"),
    ):
        q.add_argument(f"--{k}", type=int, choices=(0, 1), help=what)
    output.add_json_argument(q, "the panel's inputs as JSON")
    q.set_defaults(func=sim_cmd.cmd_panel)
    r = sub.add_parser("run", help="fast virtual time: run the control tick as fast as possible")
    _sim_common(r, run=True)
    r.add_argument(
        "--duration", type=float, default=60.0, help=_limits("length of the run", "duration_s", 60)
    )
    r.add_argument("--trace", help="write a CSV trace (t, surface, probes, valve, ...)")
    r.add_argument(
        "--trace-ms", type=int, default=100, help=_limits("trace interval", "trace_ms", 100)
    )
    r.add_argument("--config", help="controller configuration (JSON file)")
    r.add_argument(
        "--start-ms", type=int, default=0, help=_limits("virtual ticks at boot", "start_ms", 0)
    )
    r.add_argument("--no-autostart", action="store_true", help="do not call start() after boot")
    output.add_json_argument(r, "the summary as JSON")
    r.set_defaults(func=sim_cmd.cmd_run)


def _limits(what, key, default):
    _, low, high, unit, _ = sim.RUN_LIMITS[key]
    return f"{what} ({low}..{high} {unit}, default {default})"


def _add_flash(subparsers):
    p = subparsers.add_parser(
        "flash",
        help="deploy the firmware app (or flash a blank board's MicroPython runtime)",
        description=flash.__doc__.split("\n\n")[0],
    )
    add_port_argument(p)
    p.add_argument("--board", default="sim", help="board definition under boards/ (default sim)")
    p.add_argument(
        "--firmware",
        type=Path,
        default=FIRMWARE_DIR,
        help="firmware tree to deploy (default firmware/)",
    )
    p.add_argument("--runtime", metavar="FILE", help="flash this MicroPython image (blank board)")
    p.add_argument("--bootsel", metavar="DIR", help="RP2 BOOTSEL drive (default: auto-detect)")
    p.add_argument("--dry-run", action="store_true", help="print what would be done, do nothing")
    p.add_argument("--no-reset", action="store_true", help="do not reset the board afterwards")
    output.add_json_argument(p, "the plan and result (or the runtime steps) as JSON")
    p.set_defaults(func=flash.cmd_flash)


def _add_config(subparsers):
    p = subparsers.add_parser("config", help="show, change and export the device configuration")
    add_port_argument(p)
    p.add_argument("--role", choices=ROLES, help="role for changes")
    p.add_argument("--pin", help=f"the role's PIN (default ${config.ENV_PIN}, else asked)")
    p.add_argument("--yes", "-y", action="store_true", help="write without asking")
    p.add_argument("--reset", action="store_true", help="reset the board after a change")
    output.add_json_argument(p)
    sub = p.add_subparsers(dest="config_cmd", metavar="ACTION", required=True)
    sub.add_parser("show", help="every field with value, unit, range and role")
    g = sub.add_parser("get", help="print one field")
    g.add_argument("name", help="field name, e.g. protocol.target_c (see `config show`)")
    s = sub.add_parser("set", help="change fields: NAME=VALUE ... (needs --role)")
    s.add_argument("assignments", nargs="+", metavar="NAME=VALUE", help="field and new value")
    d = sub.add_parser("diff", help="differences between the device and FILE")
    d.add_argument("file", type=Path, help="configuration JSON (a full export or a patch)")
    a = sub.add_parser("apply", help="write the fields of FILE (needs --role)")
    a.add_argument("file", type=Path, help="configuration JSON: the fields to write")
    e = sub.add_parser("export", help="write the configuration as JSON")
    e.add_argument("-o", "--output", type=Path, help="output file (default: standard output)")
    pn = sub.add_parser("pin", help="set a role's PIN (service role; first one on a new device)")
    pn.add_argument("target_role", choices=ROLES, help="whose PIN to set")
    pn.add_argument("new_pin", help="the new PIN (digits)")
    parsing.only_for(p, ("set", "apply", "pin"), "--role", "--pin")
    parsing.only_for(p, ("set", "apply"), "--yes", "--reset")
    p.set_defaults(func=config.cmd_config)


def _add_logs(subparsers):
    p = subparsers.add_parser("logs", help="list, pull, export and report treatment logs")
    add_port_argument(p)
    p.add_argument(
        "--archive",
        help=f"archive folder or postgresql:// URL (default ${ENV_ARCHIVE} or ./cryo-archive)",
    )
    p.add_argument("--serial", help="device serial in the archive (offline commands)")
    output.add_json_argument(p)
    sub = p.add_subparsers(dest="logs_cmd", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="list sessions (pulls new records first unless --offline)")
    ls.add_argument("--offline", action="store_true", help="list the archive only")
    sub.add_parser("pull", help="copy new log records into the archive and verify them")
    ex = sub.add_parser("export", help="write a session as CSV or JSON")
    ex.add_argument("session", type=int, help="session number (see `cryo logs list`)")
    ex.add_argument("--format", choices=("csv", "json"), default="csv", help="file format")
    ex.add_argument("-o", "--output", type=Path, help="output file (- = standard output)")
    rp = sub.add_parser("report", help="write a session report for the clinic (PNG, PDF, JSON)")
    rp.add_argument("session", type=int, help="session number (see `cryo logs list`)")
    rp.add_argument("-o", "--output", type=Path, help="folder for the report files")
    for opt, what in (
        ("--patient", "patient reference (kept in the archive, never sent to the device)"),
        ("--lesion", "lesion reference"),
        ("--operator", "who treated"),
        ("--reviewer", "who reviewed and signs off the report"),
    ):
        rp.add_argument(opt, help=what)
    ev = sub.add_parser(
        "events",
        help="device events: faults, acks, boots, resets (pulls first unless --offline)",
    )
    ev.add_argument("--offline", action="store_true", help="show the archive only")
    ev.add_argument("--since", type=int, default=0, metavar="SEQ", help="only events after SEQ")
    p.add_argument(
        "--pin",
        help=f"engineer's PIN for a locked (provisioned) device (default ${config.ENV_PIN})",
    )
    parsing.only_for(p, ("list", "pull", "events"), "--port", "--pin")
    parsing.only_for(p, ("list", "export", "report", "events"), "--serial")
    p.set_defaults(func=logs.cmd_logs)


def _add_monitor(subparsers):
    p = subparsers.add_parser(
        "monitor",
        help="live view of temperatures, valve, PID terms, faults",
        description=monitor.__doc__.split("\n\n")[0],
    )
    add_port_argument(p)
    p.add_argument("--rate", type=float, default=10.0, help="telemetry rate, Hz (0.2..50; 10)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--csv", metavar="FILE", help="record every telemetry frame to a CSV file")
    p.add_argument("--plot", metavar="PNG", help="plot the recording to a PNG when done")
    output.add_json_argument(p, "one JSON line per frame and a summary line, no live view")
    p.add_argument(
        "--from-csv",
        metavar="FILE",
        help="no device: plot an earlier --csv recording (with --plot)",
    )
    p.add_argument("--timeout", type=float, default=2.0, help="reply timeout, s")
    p.set_defaults(func=monitor.main)


def _add_tune(subparsers):
    p = subparsers.add_parser(
        "tune",
        help="relay autotune, step test + FOPDT fit, live gains",
        description=tune.__doc__.split("\n\n")[0],
    )
    sub = p.add_subparsers(dest="tune_cmd", metavar="ACTION", required=True)

    a = sub.add_parser("auto", help="run the on-device relay autotune")
    _tune_common(a)
    a.add_argument("--setpoint", type=float, help="relay setpoint, °C (default: configured)")
    a.add_argument("--hysteresis", type=float, help="relay hysteresis, °C (noise band)")
    a.add_argument("--bias", type=float, help="relay bias (mean demand) 0.05..0.95")
    a.add_argument("--max-time", type=float, default=1800, help="give up after S seconds")
    a.add_argument(
        "--apply",
        metavar="RULE",
        help="apply this rule's gains: " + ", ".join(tune.RULE_NAMES) + " or 'chosen'",
    )
    a.add_argument("--save", action="store_true", help="save the configuration after --apply")
    a.set_defaults(func=tune.run_auto)

    s = sub.add_parser("step", help="open-loop step test, FOPDT fit on the host")
    _tune_common(s)
    s.add_argument("--demand", type=float, default=0.3, help="step demand 0..1 (0.3)")
    s.add_argument("--duration", type=float, default=60.0, help="step length, s (60)")
    s.add_argument("--rate", type=float, default=10.0, help="telemetry rate during the test, Hz")
    s.add_argument("--channel", default="tissue", help="temperature channel to fit (tissue)")
    s.add_argument("--setpoint", type=float, help="predict at this setpoint, °C (default: target)")
    s.add_argument("--csv", metavar="FILE", help="record the step response to CSV")
    s.add_argument("--plot", metavar="PNG", help="plot data and fitted model")
    s.add_argument("--apply", metavar="RULE", help="apply this rule's gains")
    s.add_argument("--save", action="store_true", help="save the configuration after --apply")
    s.set_defaults(func=tune.run_step)

    g = sub.add_parser("apply", help="set PID gains live (bumpless, audited)")
    _tune_common(g)
    g.add_argument("--kp", type=float, required=True, help="proportional gain, demand per °C")
    g.add_argument("--ki", type=float, required=True, help="integral gain, demand per °C·s")
    g.add_argument("--kd", type=float, default=0.0, help="derivative gain, demand·s per °C (0)")
    g.add_argument("--save", action="store_true", help="save the configuration")
    g.add_argument("--observe", type=float, default=0.0, help="record S s before and after")
    g.add_argument("--plot", metavar="PNG", help="before/after comparison plot (with --observe)")
    g.set_defaults(func=tune.run_apply)


def _tune_common(p):
    add_port_argument(p)
    p.add_argument("--role", choices=ROLES, default="engineer", help="role for changes (engineer)")
    p.add_argument(
        "--pin",
        help=f"the role's PIN on a locked (provisioned) device (default ${config.ENV_PIN}, else asked)",
    )
    output.add_json_argument(p)
    p.add_argument("--timeout", type=float, default=2.0, help="reply timeout, s")


def _add_reset(subparsers):
    what = "restart the board: boot.py, main.py, the controller (refused during a treatment)"
    p = subparsers.add_parser("reset", help=what, description=reset.__doc__.split("\n\n")[0])
    output.add_json_argument(p)
    add_port_argument(p)
    p.add_argument(
        "--pin", help="engineer PIN, for a locked (provisioned) board (default $CRYO_PIN)"
    )
    p.set_defaults(func=reset.cmd_reset)


# in `cryo --help` order
# `cryo archive`, `cryo serve` and `cryo keys` keep their tables beside their handlers
# (host_tools/archive_db, host_tools/serve, host_tools/keys.py): their ``register`` adds them here.
COMMANDS = (
    _add_sim,
    _add_flash,
    _add_config,
    _add_logs,
    archive.register,
    serve.register,
    _add_monitor,
    _add_tune,
    _add_reset,
    keys.register,
)


def build_parser():
    p = parsing.Parser(prog="cryo", description="Cryotherapy controller host tools")
    p.add_argument("--version", action="store_true", help="print the tool version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    for command in sub.choices.values():
        parsing.hoist_options(command)
    return p


def main(argv=None):
    try:
        return _main(argv)
    finally:
        # What is still buffered (help text, a table) goes out now, while a
        # reader that went away can still be told apart: Python's own flush
        # at exit would turn it into exit code 120 and a message.
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            _quiet_stdout()
        except OSError as e:
            if e.errno != errno.EPIPE:
                raise
            _quiet_stdout()


def _main(argv):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if "--json" in argv:
        for _, p in parsing.parsers(parser):
            p.json_errors = True
    args = parser.parse_args(argv)
    as_json = output.wants_json(args)
    try:
        if args.version:
            from host_tools import fwimport

            fwimport.ensure()
            import cryo

            print("cryo", cryo.VERSION)
            return EXIT_OK
        if not args.command:
            parser.print_help()
            return EXIT_USAGE
        from host_tools.device import portlock

        sub = [
            getattr(args, a, None) for a in ("config_cmd", "logs_cmd", "sim_command", "tune_cmd")
        ]
        portlock.set_command(args.command, *sub)
        return args.func(args) or EXIT_OK
    except CryoError as e:
        return _fail(as_json, str(e), e.exit_code)
    except KeyboardInterrupt:
        return _fail(as_json, "interrupted", EXIT_INTERRUPTED, "cryo: interrupted")
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_PIPE
    except OSError as e:
        if e.errno == errno.EPIPE:
            _quiet_stdout()
            return EXIT_PIPE
        if e.errno in (errno.ENOENT, errno.EACCES, errno.EISDIR, errno.ENOTDIR, errno.EROFS):
            what = f"{e.filename}: {e.strerror}" if e.filename else e.strerror
            return _fail(as_json, what, EXIT_INVALID)
        raise


def _fail(as_json: bool, message: str, code: int, line: str | None = None) -> int:
    """An expected error: one line on standard error, or (``--json``) one JSON object."""
    try:
        if as_json:
            output.error_json(message, code)
        else:
            print(line or f"cryo: error: {message}", file=sys.stderr)
    except BrokenPipeError:
        _quiet_stdout()
    return code


def _quiet_stdout():
    # Python flushes stdout at exit and would report the broken pipe again.
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
