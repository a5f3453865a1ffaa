"""Query rows as a table people read in a terminal, 80 columns wide included.

A table of every column cut each cell to a letter and an ellipsis at 80
characters, so by default it shows the columns that answer the question
(``NARROW``), with short headings, no vertical rules, and the keys (serial,
date) never wrapped; ``--wide`` shows every column. ``--json`` and
``--csv`` always carry every column, unabridged.
"""

from __future__ import annotations

import datetime as _dt

from host_tools.archive_db.query import short_hash

# the columns of the default table, in the order of the query's columns
NARROW = {
    "sessions": (
        "serial",
        "session",
        "started_at",
        "outcome",
        "target_reached",
        "min_temp_c",
        "valve_cycles",
        "conditions",
    ),
    "devices": (
        "serial",
        "fw_version",
        "fw_hash",
        "sessions",
        "lifetime_valve_cycles",
        "latched",
        "last_pull_at",
    ),
}
HEADINGS = {
    "serial": "device",
    "session": "#",
    "started_at": "started (UTC)",
    "target_reached": "target",
    "min_temp_c": "min °C",
    "valve_cycles": "valves",
    "lifetime_valve_cycles": "valve life",
    "conditions": "faults",
    "fw_version": "fw",
    "fw_hash": "fw hash",
    "last_pull_at": "last pull (UTC)",
}
# never wrapped: the keys, and words a break would garble
KEYS = ("serial", "session", "started_at", "outcome", "fw_version", "fw_hash", "last_pull_at")
CLOCK_NOT_SET = "clock not set"


def _minutes(text):
    """An ISO time to the minute: the seconds and fractions are in --json and --csv."""
    return _dt.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")


def cell(column: str, value) -> str:
    """A value as the table shows it."""
    if column == "started_at" and value is None:
        return CLOCK_NOT_SET
    if value is None:
        return ""
    if column.endswith("_at"):
        return _minutes(value)
    if column == "fw_hash":
        return short_hash(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column in ("conditions", "latched"):
        return value.replace(",", ", ")  # a narrow column breaks between names, not inside
    return str(value)


def print_table(rows: list[dict], columns, title: str, wide: bool = False, console=None):
    from host_tools.commands.output import console as output_console
    from host_tools.commands.output import listing

    shown = list(columns) if wide else [c for c in columns if c in NARROW[title]]
    t = listing(f"{title} ({len(rows)})")
    for c in shown:
        t.add_column(HEADINGS.get(c, c.replace("_", " ")), no_wrap=c in KEYS, overflow="fold")
    for r in rows:
        t.add_row(*(cell(c, r[c]) for c in shown))
    (console or output_console()).print(t)
