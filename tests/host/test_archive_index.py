"""The archive index: verified incrementally (pull by pull) it says what a full read says."""

import shutil

from host_tools.archive import index as archive_index
from host_tools.virtual.port import write_demo_treatment


def _grow(src, dst, fraction):
    """The archive as a pull interrupted at ``fraction`` of every file would leave it."""
    (dst / "logs").mkdir(parents=True, exist_ok=True)
    segs = sorted((src / "logs").glob("seg*.bin"))
    total = sum(p.stat().st_size for p in segs)
    left = int(total * fraction)
    for p in segs:
        data = p.read_bytes()[: max(0, left)]
        left -= len(data)
        if data:
            (dst / "logs" / p.name).write_bytes(data)


def test_incremental_index_equals_a_full_read(mpy, tmp_path):
    board = tmp_path / "board"
    write_demo_treatment(flash_dir=board, seconds=120, sessions=4)
    inc = tmp_path / "incremental"
    for f in (0.13, 0.31, 0.5, 0.77, 0.9, 1.0):  # resumed pulls, each mid-record
        _grow(board, inc, f)
        archive_index.update(inc)
    write_demo_treatment(flash_dir=board, seconds=30, sessions=2)  # later treatments
    shutil.copytree(board / "logs", inc / "logs", dirs_exist_ok=True)
    idx = archive_index.update(inc)
    full = tmp_path / "full"
    shutil.copytree(board / "logs", full / "logs")
    ref = archive_index.update(full)
    assert archive_index.sessions(idx) == archive_index.sessions(ref)
    assert [s["session"] for s in archive_index.sessions(idx)] == [1, 2, 3, 4, 5, 6]
    assert all(s["summary"] for s in archive_index.sessions(idx))
    assert idx["state"]["records"] == ref["state"]["records"]
    assert not idx["state"]["damaged"] and not idx["state"]["gaps"]
    # each session's solenoid cycles (EV_VALVE_CYCLES) and the lifetime count after it
    cyc = [(s["valve_cycles"], s["lifetime_cycles"]) for s in archive_index.sessions(idx)]
    assert all(c > 0 for c, _ in cyc)
    # (each write_demo_treatment call is a new "device life" starting at 0)
    for batch in (cyc[:4], cyc[4:]):
        assert [life for _, life in batch] == [
            sum(c for c, _ in batch[: k + 1]) for k in range(len(batch))
        ]


def test_a_damaged_record_names_its_session_and_is_not_a_reset(mpy, tmp_path):
    board = tmp_path / "board"
    write_demo_treatment(flash_dir=board, seconds=60, sessions=3)
    arch = tmp_path / "arch"
    shutil.copytree(board / "logs", arch / "logs")
    seg = sorted((arch / "logs").glob("seg*.bin"))[1]
    data = bytearray(seg.read_bytes())
    data[5000] ^= 0x10
    seg.write_bytes(bytes(data))
    idx = archive_index.update(arch)
    (bad,) = idx["state"]["damaged"]
    assert bad["file"] == seg.name and bad["session"] in (1, 2, 3) and bad["after_seq"] > 0
    rows = archive_index.sessions(idx)
    assert [s["session"] for s in rows] == [1, 2, 3]  # every session still listed


def test_a_kept_index_is_parsed_once_and_never_outlives_its_file(mpy, tmp_path):
    # A pull and the listing after it share one parse of index.json; an index
    # file changed since (another process, a restored archive) is read again.
    board = tmp_path / "board"
    write_demo_treatment(flash_dir=board, seconds=20, sessions=2)
    dest = tmp_path / "archive"
    shutil.copytree(board / "logs", dest / "logs")
    idx = archive_index.update(dest)  # verified and saved: kept for the next reader
    assert archive_index.load(dest) is idx  # no second parse
    assert archive_index.load(dest) is not idx  # handed out once: the next load parses
    archive_index.remember(dest, idx)
    (dest / archive_index.INDEX).write_text((dest / archive_index.INDEX).read_text() + " ")
    fresh = archive_index.load(dest)
    assert fresh is not idx and archive_index.sessions(fresh) == archive_index.sessions(idx)
    idx2 = archive_index.update(dest)  # nothing new: the index stays as it was, unwritten
    assert archive_index.mark(idx2) == archive_index.mark(fresh)
