"""Each virtual board is its own device: its serial is its flash image's chip id.

The id lives in the image file after the flash contents (boards/sim/flash.py):
made with the image, kept by it across runs, gone with it. Pulls by the real
`cryo` command from the real-time board (firmware and controller running).
"""

import json
import threading
from contextlib import contextmanager

import pytest
from clirun import cryo

from host_tools.errors import InvalidInput
from host_tools.sim import image_uid, sim_uid
from host_tools.virtual.board import VirtualBoard
from host_tools.virtual.port import write_demo_treatment

pytestmark = [pytest.mark.sim, pytest.mark.mpy]

BLOCKS = 512  # the default 2 MiB


@contextmanager
def board(img, link):
    vb = VirtualBoard(flash=str(img), link=str(link), log=lambda m: None)
    vb.open()
    t = threading.Thread(target=vb.serve, daemon=True)
    t.start()
    try:
        yield vb
    finally:
        vb._stop = True
        t.join(5)
        vb.close()


def pull(port, archive) -> dict:
    r = cryo("logs", "--port", port, "--archive", archive, "--json", "pull", timeout=180)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_an_image_gets_its_chip_id_when_made_and_keeps_it(tmp_path):
    img = tmp_path / "flash.img"
    uid = sim_uid(str(img), BLOCKS)  # made here: erased blocks, then the id
    assert img.stat().st_size == BLOCKS * 4096 + 14
    assert img.read_bytes()[: BLOCKS * 4096] == b"\xff" * (BLOCKS * 4096)
    assert sim_uid(str(img), BLOCKS) == uid == image_uid(img, BLOCKS)
    # the firmware's own log writer (MicroPython, littlefs) uses the image:
    # the id after the flash contents is untouched
    write_demo_treatment(image=img, seconds=5, sessions=1)
    assert image_uid(img, BLOCKS) == uid
    # made again at the same path by a tool that writes no id: a new chip
    img.unlink()
    write_demo_treatment(image=img, seconds=5, sessions=1)
    assert image_uid(img, BLOCKS) is None
    again = sim_uid(str(img), BLOCKS)
    assert again != uid and image_uid(img, BLOCKS) == again
    assert sim_uid(str(tmp_path / "other.img"), BLOCKS) not in (uid, again)
    assert sim_uid(None, BLOCKS) != sim_uid(None, BLOCKS)  # RAM flash: a new chip each start


def test_an_image_of_another_size_is_refused_by_name(tmp_path):
    img = tmp_path / "flash.img"
    sim_uid(str(img), 256)
    before = img.read_bytes()
    with pytest.raises(InvalidInput, match=r"the board's flash is 2097152 \(--flash-size 2048\)"):
        sim_uid(str(img), BLOCKS)
    assert img.read_bytes() == before  # nothing written over the id
    odd = tmp_path / "odd.img"
    odd.write_bytes(b"\0" * 1000)
    with pytest.raises(InvalidInput, match="1000 bytes"):
        sim_uid(str(odd), BLOCKS)


def test_serial_follows_the_image_across_restarts_and_recreation(tmp_path):
    img, link, archive = tmp_path / "flash.img", tmp_path / "port", tmp_path / "arch"
    write_demo_treatment(image=img, seconds=20, sessions=1)
    with board(img, link) as vb:
        first = pull(link, archive)
    assert first["serial"] == vb.uid == image_uid(img, BLOCKS)
    with board(img, link):  # the same image again: the same board, its archive continued
        again = pull(link, archive)
    assert again["serial"] == first["serial"]
    assert [p.name for p in archive.iterdir() if p.is_dir()] == [first["serial"]]
    # deleted and made again at the same path: a new board, a new archive
    # folder, and no "the device log was reset"
    img.unlink()
    write_demo_treatment(image=img, seconds=20, sessions=1)
    with board(img, link) as vb:
        fresh = pull(link, archive)
    assert fresh["serial"] == vb.uid != first["serial"] and fresh["bytes"] > 0
    assert sorted(p.name for p in archive.iterdir() if p.is_dir()) == sorted(
        [first["serial"], fresh["serial"]]
    )


def test_two_boards_at_once_have_different_serials(tmp_path):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    for img in (a, b):
        write_demo_treatment(image=img, seconds=5, sessions=1)
    with board(a, tmp_path / "pa") as va, board(b, tmp_path / "pb") as vb:
        sa = pull(tmp_path / "pa", tmp_path / "arch")["serial"]
        sb = pull(tmp_path / "pb", tmp_path / "arch")["serial"]
    assert sa == va.uid and sb == vb.uid and sa != sb
