"""The real-time board's front panel (`cryo sim --panel`):
the host writes the physical inputs, the world applies changes."""

import json

import pytest

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
    with pytest.raises(InvalidInput, match="footswitch must be 0 or 1"):
        write_panel(str(path), footswitch=2)
    assert cli.main(["sim", "panel", str(path), "--footswitch", "0", "--estop", "0"]) == 0
    assert json.loads(path.read_text()) == {"estop": 0, "footswitch": 0, "handpiece": 1}


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
