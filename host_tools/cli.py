"""The `cryo` command: one subcommand module per job.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its
subparser and sets ``func`` (called with the parsed args, returns the exit
code). Every module ships with the tool: a missing one is an import error.
Expected errors are ``CryoError`` subclasses: printed as one line, with the
exit code the class defines — never a traceback.
"""

import argparse
import copy
import errno
import os
import sys

from host_tools import config, flash, keys, logs, monitor, reset, sim, tune
from host_tools.archive_db import cli as archive
from host_tools.errors import EXIT_INVALID, CryoError
from host_tools.serve import cli as serve

COMMANDS = (
    sim,
    flash,
    config,
    logs,
    archive,
    serve,
    monitor,
    tune,
    reset,
    keys,
)  # in `cryo --help` order
EXIT_PIPE = 0  # the reader of our output went away (`| head`): not an error of ours


def _hoist_options(parser):
    """Let options go after the action too: `cryo config set X=1 --role engineer`.

    argparse only accepts a group's options before its sub-action; a copy of
    each, defaulting to "not given", is added to every sub-action (recursively).
    """
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in set(action.choices.values()):
            for opt in parser._actions:
                if not opt.option_strings or isinstance(opt, argparse._HelpAction):
                    continue
                if any(s in child._option_string_actions for s in opt.option_strings):
                    continue
                clone = copy.copy(opt)
                clone.default = argparse.SUPPRESS
                child._add_action(clone)
            _hoist_options(child)


def build_parser():
    p = argparse.ArgumentParser(prog="cryo", description="Cryotherapy controller host tools")
    p.add_argument("--version", action="store_true", help="print the tool version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    for command in sub.choices.values():
        _hoist_options(command)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.version:
            from host_tools import fwimport

            fwimport.ensure()
            import cryo

            print("cryo", cryo.VERSION)
            return 0
        if not args.command:
            parser.print_help()
            return 2
        from host_tools import portlock

        sub = [
            getattr(args, a, None) for a in ("config_cmd", "logs_cmd", "sim_command", "tune_cmd")
        ]
        portlock.set_command(args.command, *sub)
        return args.func(args) or 0
    except CryoError as e:
        print(f"cryo: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("cryo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_PIPE
    except OSError as e:
        if e.errno == errno.EPIPE:
            _quiet_stdout()
            return EXIT_PIPE
        if e.errno in (errno.ENOENT, errno.EACCES, errno.EISDIR, errno.ENOTDIR, errno.EROFS):
            where = f" {e.filename}" if e.filename else ""
            print(f"cryo: error:{where}: {e.strerror}", file=sys.stderr)
            return EXIT_INVALID
        raise


def _quiet_stdout():
    # Python flushes stdout at exit and would report the broken pipe again.
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
