"""docs/storage.md states the record sizes of the safety state and device events: they must
be the sizes of the struct formats in cryo.storage.device_records (the one definition)."""

import re
import struct
from pathlib import Path

from cryo import paths
from cryo.storage import device_records as D

DOC = (Path(__file__).resolve().parents[2] / "docs" / "storage.md").read_text()


def _documented(pattern):
    m = re.search(pattern, DOC)
    assert m, "docs/storage.md no longer says %r" % pattern
    return m.groups()


def test_safety_state_sizes_match_the_struct():
    (slot,) = _documented(r"\*\*Safety state slot, (\d+) bytes\*\*")
    fmt = _documented(r"`SAFETY_STATE_FMT = \"([^\"]+)\"`")[0]
    (file_size,) = _documented(
        r"\| `/safety\.bin` \| `SAFETY_STATE_PATH` \| (\d+) bytes \(2 slots\)"
    )
    assert fmt == D.SAFETY_STATE_FMT
    assert int(slot) == struct.calcsize(D.SAFETY_STATE_FMT) == D.SAFETY_STATE_SIZE
    assert int(file_size) == D.SAFETY_STATE_SLOTS * D.SAFETY_STATE_SIZE
    assert paths.on_flash(paths.SAFETY_STATE_PATH, "/") == "/safety.bin"


def test_device_event_sizes_match_the_struct():
    (rec,) = _documented(r"\*\*Device event record, (\d+) bytes\*\*")
    fmt = _documented(r"`DEV_EVENT_FMT = \"([^\"]+)\"`")[0]
    per, default_slots, default_bytes = _documented(
        r"\| `/events\.bin` \| `DEVICE_EVENTS_PATH` \| capacity × (\d+) bytes \(default (\d+) slots = (\d+) bytes\)"
    )
    assert fmt == D.DEV_EVENT_FMT
    assert int(rec) == int(per) == struct.calcsize(D.DEV_EVENT_FMT) == D.DEV_EVENT_SIZE
    assert int(default_bytes) == int(default_slots) * D.DEV_EVENT_SIZE
    import inspect

    from cryo.storage.events import DeviceEventLog

    assert inspect.signature(DeviceEventLog).parameters["capacity"].default == int(default_slots)
    assert paths.on_flash(paths.DEVICE_EVENTS_PATH, "/") == "/events.bin"


def test_documented_byte_offsets_cover_each_record():
    # Every table row "| a–b | name ..." of the two layouts, in order, tiles the record.
    for title, size in (
        ("Safety state slot", D.SAFETY_STATE_SIZE),
        ("Device event record", D.DEV_EVENT_SIZE),
    ):
        section = DOC[DOC.index("**" + title) :]
        section = section[: section.index("\n\n", section.index("| bytes |"))]
        spans = re.findall(r"^\| (\d+)(?:–(\d+))? \| `(\w+)`", section, re.M)
        pos = 0
        names = []
        for a, b, name in spans:
            assert int(a) == pos, (title, name)
            pos = int(b or a) + 1
            names.append(name)
        assert pos == size, title
        fields = D.SAFETY_STATE_FIELDS if title.startswith("Safety") else D.DEV_EVENT_FIELDS
        assert tuple(names) == fields
