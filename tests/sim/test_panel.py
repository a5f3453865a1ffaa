"""The real-time board's front panel (`cryo sim --panel`):
the host writes the physical inputs, the world applies changes."""

import json

import pytest
from clirun import cryo

from host_tools import cli
from host_tools.errors import InvalidInput
from host_tools.sim import write_panel


def test_write_panel_merges_in_place_and_checks_inputs(tmp_path):
    path = tmp_path / "panel.json"
    assert write_panel(str(path), reset=True) == {}
    assert write_panel(str(path), handpiece=1) == {"handpiece": 1}
    assert write_panel(str(path), footswitch=True) == {"footswitch": 1, "handpiece": 1}
    text = path.read_text()
    assert len(text) == 64 and json.loads(text) == {"footswitch": 1, "handpiece": 1}
    with pytest.raises(InvalidInput, match="unknown input 'pedal'; allowed: estop"):
        write_panel(str(path), pedal=1)
    with pytest.raises(InvalidInput, match="footswitch is 2; allowed: 0 or 1"):
        write_panel(str(path), footswitch=2)
    assert cli.main(["sim", "panel", str(path), "--footswitch", "0", "--estop", "0"]) == 0
    assert json.loads(path.read_text()) == {"estop": 0, "footswitch": 0, "handpiece": 1}


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"hello\n", "not JSON"),
        (b'{"foo": 1}', "unknown input 'foo'; allowed: estop, footswitch, handpiece"),
        (b'{"handpiece": 2}', "handpiece is 2; allowed: 0 or 1"),
        (b'{"handpiece": true}', "handpiece is True; allowed: 0 or 1"),
        (b"[1]", "not a JSON object of inputs"),
        (b"{}" + b" " * 200, "larger than the 64 bytes of one"),
    ],
)
def test_a_file_that_is_not_a_panel_is_refused_and_kept(tmp_path, content, problem):
    """Through the real CLI: exit 5, one line naming what is wrong and what is
    allowed; the file is never overwritten (nor by a board started on it)."""
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    r = cryo("sim", "panel", str(path), "--handpiece", "1")
    assert r.returncode == 5 and r.stdout == "", (r.returncode, r.stderr)
    assert r.stderr == (
        f"cryo: error: {path}: not a front-panel file ({problem}); "
        "give the front-panel file `cryo sim` prints (or --panel FILE)\n"
    )
    r = cryo("sim", "--panel", str(path), "--flash", str(tmp_path / "f.img"))
    assert r.returncode == 5 and "not a front-panel file" in r.stderr, r.stderr
    assert path.read_bytes() == content


def test_a_stale_panel_path_is_refused_not_created(tmp_path):
    path = tmp_path / "gone" / "panel.json"
    r = cryo("sim", "panel", str(path), "--footswitch", "1")
    assert r.returncode == 5 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"cryo: error: {path}: no such front-panel file; give ")
    assert not path.exists()


def test_world_applies_panel_changes_only(tmp_path, mpy):
    path = tmp_path / "panel.json"
    write_panel(str(path), reset=True)
    r = mpy.run(
        """
import vboard
from cryo.clock import ManualClock
clk = ManualClock(0)
w = vboard.install(vboard.World(clock=clk, realtime=False, seed=3))
w.attach_panel(open(%r, "rb"))
out = []
def step(ms):
    clk.advance(ms)
    w.advance_to(clk.ticks_ms())
    out.append([w.logical["footswitch"], w.logical["handpiece"], w.logical["estop"]])
step(100)
with open(%r, "w") as f:
    f.write('{"footswitch": 1, "handpiece": 1}' + " " * 30)
step(50)   # read at most every 100 ms
step(60)
w.set_input("footswitch", 0)   # e.g. a scenario: the panel did not change, no re-apply
step(200)
with open(%r, "w") as f:
    f.write('{"estop": 0')        # caught mid-write: ignored, read again later
step(200)
result([out, [t for t in w.log]])
"""
        % (str(path), str(path), str(path))
    )
    states, log = r
    assert states == [[0, 0, 1], [0, 0, 1], [1, 1, 1], [0, 1, 1], [0, 1, 1]]
    assert sorted(e[1] for e in log) == ["panel footswitch=1", "panel handpiece=1"]
