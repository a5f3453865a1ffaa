"""Shipped JSON files of the virtual board (plants/, scenarios/).

A name without "/" or ".json" is a shipped file (``default`` ->
``boards/sim/plants/default.json``); anything else is a path. Runs under
MicroPython and CPython.
"""

import json


def folder(sub):
    """Directory of the shipped files of one kind, beside this module."""
    f = __file__
    i = f.rfind("/")
    return (f[:i] if i >= 0 else ".") + "/" + sub


def path_of(sub, name_or_path):
    if "/" not in name_or_path and not name_or_path.endswith(".json"):
        return folder(sub) + "/" + name_or_path + ".json"
    return name_or_path


def load_json(kind, sub, name_or_path, error):
    """The parsed file; ``error(message)`` for a missing or malformed one."""
    path = path_of(sub, name_or_path)
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        raise error("%s file not found: %s" % (kind, path))
    except ValueError as e:
        raise error("%s file %s is not valid JSON: %s" % (kind, path, e))
