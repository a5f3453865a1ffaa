"""The `cryo` command: one subcommand per job (flash, config, logs, monitor, tune, sim)."""

import argparse
import sys

from host_tools.errors import CryoError


def build_parser():
    p = argparse.ArgumentParser(prog="cryo", description="Cryotherapy controller host tools")
    p.add_argument("--version", action="store_true", help="print the firmware/tool version")
    p.add_subparsers(dest="command", metavar="COMMAND")
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.version or not args.command:
            from host_tools import FIRMWARE_DIR

            sys.path.insert(0, str(FIRMWARE_DIR))
            import cryo  # noqa: PLC0415 - firmware package shared with the host

            print("cryo", cryo.VERSION)
            return 0
        return args.func(args)
    except CryoError as e:
        print(f"cryo: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
