"""The argparse machinery under the `cryo` command table (``host_tools.cli``).

``Parser`` turns a usage error into the JSON error object when ``--json``
was asked for; ``parsers`` walks the command tree (the CLI and the tests
that check every command); ``hoist_options`` lets a group's options follow
its action, only into the actions that use them (``only_for``).
"""

import argparse
import copy
import sys

from host_tools.commands import output
from host_tools.errors import EXIT_USAGE


def hoist_options(parser):
    """Let options go after the action too: `cryo config set X=1 --role engineer`.

    argparse only accepts a group's options before its sub-action; a copy of
    each, defaulting to "not given", is added to every sub-action (recursively)
    that uses it (``only_for``), so an action's help lists only its options.
    """
    if not getattr(parser, "hoist", True):
        return
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, child in action.choices.items():
            for opt in parser._actions:
                if not opt.option_strings or isinstance(opt, argparse._HelpAction):
                    continue
                if name not in getattr(opt, "used_by", (name,)):
                    continue
                if any(s in child._option_string_actions for s in opt.option_strings):
                    continue
                clone = copy.copy(opt)
                clone.default = argparse.SUPPRESS
                child._add_action(clone)
            hoist_options(child)


def only_for(parser, actions, *options):
    """These options of a command group mean something only to these actions."""
    for o in options:
        parser._option_string_actions[o].used_by = actions


class Parser(argparse.ArgumentParser):
    """argparse, whose usage errors become a JSON object when ``--json`` was asked for."""

    json_errors = False

    def error(self, message):
        if self.json_errors:
            output.error_json(f"{message} (see `{self.prog} --help`)", EXIT_USAGE)
            sys.exit(EXIT_USAGE)
        super().error(message)


def parsers(parser, path=()):
    """Every (path, parser) of the command tree, the root first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, path + (name,))
