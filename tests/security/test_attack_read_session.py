"""The read session on a locked virtual board, attacked on its serial port.

The board is the real `cryo sim` (provisioned: tests/security/sec_sim.py).
The engineer's pull (``LinkFiles`` over the real ``Link``) reads the whole
log folder in one read session; every frame it wrote is recorded, and an
attacker holding the cable replays them, reorders them and tries the
session's nonce on a state change, with raw pyserial writes.
"""

import json
import time

import pytest
from sec_sim import ENGINEER_PIN
from test_attack_link import Recorder, Wire

from host_tools.archive.pull import pull
from host_tools.auth import Credentials
from host_tools.device.files import LinkFiles
from host_tools.device.link import Link
from host_tools.device.readsession import ReadSession

pytestmark = pytest.mark.sim


def _sent(rec, marker):
    return [f for f in rec.sent if marker in f]


def _fields(frame):
    return json.loads(frame[: frame.rindex(b"*")])


def _rid(frame):
    return _fields(frame)["id"]


def test_locked_pull_in_one_session_and_its_frames_replayed(board, tmp_path):
    rec = Recorder(board.port)
    eng = Credentials(pins={"engineer": ENGINEER_PIN}, ask=False)
    with Link(rec, timeout=3, credentials=eng) as link:
        src = LinkFiles(link, "engineer")
        res = pull(src, tmp_path / "a", serial="sim")
        opened = [src.session.opened]
        reads = _sent(rec, b'"cmd":"read"')
        # a captured read written again on the line while the session is
        # open ends it; the host renews it once and reads on
        rec.s.write(reads[3])
        time.sleep(0.5)
        size, data = src._read("audit.log", 0)
        opened.append(src.session.opened)
        link.request("challenge", role="engineer")  # a new challenge ends it too
        src._read("audit.log", 0)
        opened.append(src.session.opened)
    assert res["verify"]["ok"] and res["verify"]["audit"]["ok"], res
    assert res["bytes"] > 4096 and size > 0 and data
    assert opened == [1, 2, 3]  # one session for the whole pull
    assert len(_sent(rec, b'"session":true')) == 3 and len(reads) > 4
    assert all(b'"seq":' in f for f in reads + _sent(rec, b'"cmd":"list"'))

    w = Wire(board.port)
    try:
        # the captured read replayed against the host's open session
        w.write(reads[3])
        r = w.reply(_rid(reads[3]))
        assert r["err"] == "E_AUTH" and "out of order" in r["msg"], r
        # a fresh session of the attacker's: the captured MACs are worthless in it
        w.ask(cmd="challenge", role="engineer", session=True)
        first = [f for f in rec.sent if _fields(f).get("seq") == 1][0]
        w.write(first)
        r = w.reply(_rid(first))
        assert r["err"] == "E_AUTH" and "wrong credential" in r["msg"], r

        # the engineer's session: the attacker replays and reorders its frames
        key = eng.key(w.ask(cmd="challenge", role="engineer"))  # (the salt and rounds)
        ch = w.ask(cmd="challenge", role="engineer", session=True)
        read = {"cmd": "read", "path": "audit.log", "offset": 0, "role": "engineer"}
        assert w.send_signed(dict(read, seq=1), key, ch["nonce"])["ok"]
        for bad in (1, 3):  # repeated, skipped
            r = w.send_signed(dict(read, seq=bad), key, ch["nonce"])
            assert r["err"] == "E_AUTH" and "out of order" in r["msg"], r
            r = w.send_signed(dict(read, seq=2), key, ch["nonce"])
            assert r["err"] == "E_AUTH" and "no open challenge" in r["msg"], r
            ch = w.ask(cmd="challenge", role="engineer", session=True)
            assert w.send_signed(dict(read, seq=1), key, ch["nonce"])["ok"]
        # its nonce used for a state change: refused, and the session is over
        r = w.send_signed({"cmd": "pulled", "upto": 0, "role": "engineer"}, key, ch["nonce"])
        assert r["err"] == "E_AUTH" and "read session" in r["msg"], r
        ch = w.ask(cmd="challenge", role="engineer", session=True)
        kp = w.ask(cmd="get", name="pid.kp")["value"]
        r = w.send_signed(
            {"cmd": "set", "name": "pid.kp", "value": kp * 2, "role": "engineer"},
            key,
            ch["nonce"],
        )
        assert r["err"] == "E_AUTH" and w.ask(cmd="get", name="pid.kp")["value"] == kp
        r = w.send_signed(dict(read, seq=1), key, ch["nonce"])
        assert r["err"] == "E_AUTH" and "no open challenge" in r["msg"], r
    finally:
        w.close()


def test_host_renews_an_idle_session_before_using_it(board):
    now = [0.0]
    rec = Recorder(board.port)
    eng = Credentials(pins={"engineer": ENGINEER_PIN}, ask=False)
    with Link(rec, timeout=3, credentials=eng) as link:
        s = ReadSession(link, "engineer", clock=lambda: now[0])
        replies = [s.request("read", path="audit.log", offset=0)]
        opened = [s.opened]
        now[0] = 28.5  # within ttl_s (30) less the margin: the same session
        replies.append(s.request("read", path="audit.log", offset=0))
        opened.append(s.opened)
        now[0] = 58.0  # 29.5 s idle: renewed before it is used, no frame refused
        replies.append(s.request("read", path="audit.log", offset=0))
        opened.append(s.opened)
        with pytest.raises(ValueError, match="cannot run in a read session"):
            s.request("pulled", upto=0)
    assert opened == [1, 1, 2] and all(r["ok"] and r["size"] > 0 for r in replies)
    seqs = [_fields(f)["seq"] for f in _sent(rec, b'"cmd":"read"')]
    assert seqs == [1, 2, 1]
