"""The read session of a provisioned device, under real MicroPython.

One challenge with ``"session": true`` authenticates a run of ``list`` /
``read`` numbered ``seq`` 1, 2, 3, ...; the firmware's channel, parser and
``cryo.link.auth`` on the wire (test_auth_device's prelude: a
FakeController, a clock that crosses the tick wrap). Each test plays the
host or the attacker: frames in, replies out.
"""

import pytest
from test_auth_device import PRELUDE

SESSION = """
def open_session(role="engineer"):
    c = ask(cmd="challenge", role=role, session=True)
    return key_for(c), c["nonce"]
def rd(k, seq, key, nonce, role="engineer", offset=0):
    return signed({"cmd": "read", "path": "audit.log", "offset": offset, "role": role,
                   "seq": seq}, key, nonce)
def oks(frames):
    return [send_raw(f).get("ok") for f in frames]
"""


@pytest.fixture
def device(run_sec, tmp_path):
    """``device(body)``: the prelude, a provisioned channel, then ``body``."""
    return lambda body: run_sec(PRELUDE % {"dir": str(tmp_path)} + SESSION + body)


def test_one_challenge_serves_a_run_of_reads_and_a_replay_is_refused(device):
    r = device(
        """
key, nonce = open_session()
lst = send_raw(signed({"cmd": "list", "path": "logs", "role": "engineer", "seq": 1}, key, nonce))
frames = [rd(0, k, key, nonce, offset=k) for k in range(2, 40)]
got = oks(frames)
replay = send_raw(frames[5])           # a captured read, byte for byte
after = send_raw(rd(0, 40, key, nonce))  # the session ended with the refusal
result([lst, got, replay, after, ch._auth.accepted, ch._auth.backoff.fails])
""",
    )
    lst, got, replay, after, accepted, fails = r
    assert lst["ok"] is True and lst["names"] == [] and got == [True] * 38
    assert replay["err"] == "E_AUTH"
    assert "seq 7 out of order: the read session expects 40" in replay["msg"]
    assert after["err"] == "E_AUTH" and "no open challenge" in after["msg"]
    assert accepted == 39 and fails == 2  # two failed attempts counted


def test_only_the_first_read_of_a_session_writes_the_backoff_count(device):
    """The first read proves the key: counted on flash before its MAC and
    cleared after (two writes); the reads riding on it write nothing, and a
    failed one is on flash before its refusal is sent."""
    r = device(
        """
bo = ch._auth.backoff
stores = [0]
_store = bo._store
def counting():
    stores[0] += 1
    _store()
bo._store = counting
key, nonce = open_session()
got = oks([rd(0, k, key, nonce, offset=k) for k in range(1, 21)])
after_reads = stores[0]
bad = send_raw(signed({"cmd": "read", "path": "audit.log", "offset": 0, "role": "engineer",
                       "seq": 21}, bytes(32), nonce))
with open(bo._path) as f:
    on_flash = f.read().strip()
result([got, after_reads, stores[0], bad.get("err"), bo.fails, on_flash])
""",
    )
    got, after_reads, after_bad, err, fails, on_flash = r
    assert got == [True] * 20
    assert after_reads == 2  # count + clear of the first read only
    assert err == "E_AUTH" and fails == 1 and after_bad == 3 and on_flash == "1"


def test_seq_skipped_or_repeated_is_refused_and_ends_the_session(device):
    r = device(
        """
out = []
for bad in (3, 1, 0, -1):               # skipped, repeated, the start again, negative
    key, nonce = open_session()
    out.append(oks([rd(0, 1, key, nonce)]) + [send_raw(rd(0, bad, key, nonce))["msg"]]
               + oks([rd(0, 2, key, nonce)]))
    clock.advance(ch._auth.backoff.wait_ms() + 1)
result(out)
""",
    )
    for (first, why, next_ok), bad in zip(r, (3, 1, 0, -1)):
        assert first is True and next_ok is False
        assert "seq %d out of order: the read session expects 2" % bad in why


def test_session_nonce_serves_no_state_change_nor_a_lower_role(device):
    r = device(
        """
out = []
key, nonce = open_session()
out.append(send_raw(signed({"cmd": "pulled", "upto": 3, "role": "engineer"}, key, nonce)))
out.append(oks([rd(0, 1, key, nonce)]))  # the attempt ended the session
key, nonce = open_session()
out.append(oks([rd(0, 1, key, nonce)]))
out.append(send_raw(signed({"cmd": "set", "name": "pid.kp", "value": 0.5, "role": "engineer"},
                           key, nonce)))
out.append(oks([rd(0, 2, key, nonce)]))
key, nonce = open_session()
out.append(send_raw(signed({"cmd": "pulled", "upto": 3, "role": "engineer", "seq": 1}, key, nonce)))
out.append(send_raw(signed({"cmd": "save", "role": "engineer", "seq": 1}, key, nonce)))
clock.advance(ch._auth.backoff.wait_ms() + 1)
out.append(ask(cmd="challenge", role="operator", session=True))
out.append(ask(cmd="challenge", role="engineer", session=1))
c = ask(cmd="challenge", role="service", session=True)   # service reads in its own session
out.append(send_raw(rd(0, 1, key_for(c), c["nonce"], role="service")))
out.append(send_raw(rd(0, 2, key_for(c), c["nonce"], role="engineer")))  # not its role
c = ask(cmd="challenge", role="engineer")               # a single-use challenge takes no seq
out.append(send_raw(rd(0, 1, key_for(c), c["nonce"])))
result([out, ctl.config["pid.kp"]])
""",
    )
    out, kp = r
    pulled, after_pulled, first, set_, after_set, pulled_seq, save_seq = out[:7]
    operator, not_bool, service, cross_role, single = out[7:]
    assert pulled["err"] == "E_AUTH" and "serves only list, read" in pulled["msg"]
    assert after_pulled == [False] and first == [True] and after_set == [False]
    assert set_["err"] == "E_AUTH" and "pid.kp" not in set_["msg"] and kp == 0.08
    for rep in (pulled_seq, save_seq):  # seq is no field of a state change
        assert rep["err"] == "E_ARGS" and "unexpected field 'seq'" in rep["msg"]
    assert operator["err"] == "E_DENIED" and "needs role engineer" in operator["msg"]
    assert not_bool["err"] == "E_ARGS" and "true or false" in not_bool["msg"]
    assert service["ok"] is True
    assert cross_role["err"] == "E_AUTH" and "opened for role service" in cross_role["msg"]
    assert single["err"] == "E_AUTH" and "belongs to a read session" in single["msg"]


def test_session_expires_after_nonce_ms_idle_across_the_tick_wrap(device):
    r = device(
        """
key, nonce = open_session()
used = []
for k in range(1, 5):                    # 29 s between reads: 116 s in all, still open
    clock.advance(29000)
    used.append(send_raw(rd(0, k, key, nonce))["ok"])
clock.advance(auth.NONCE_MS + 1)
late = send_raw(rd(0, 5, key, nonce))
key, nonce = open_session()
new = oks([rd(0, 1, key, nonce)])
c = ask(cmd="challenge", role="engineer", session=True)  # a new challenge ends the old one
old = send_raw(rd(0, 1, key, nonce))   # the old nonce against the new session
result([used, late, new, old, clock.ticks_ms() < 200000])  # wrapped at 2**30
""",
    )
    used, late, new, old, wrapped = r
    assert used == [True] * 4 and new == [True] and wrapped
    assert late["err"] == "E_AUTH" and "expired" in late["msg"]
    assert old["err"] == "E_AUTH" and "wrong credential" in old["msg"]


def test_failed_session_attempts_grow_the_backoff(device):
    r = device(
        """
seen = []
for i in range(8):
    c = ask(cmd="challenge", role="engineer", session=True)
    nonce = c["nonce"] if c["ok"] else "00" * 16
    rep = send_raw(rd(0, 1, b"x" * 32, nonce))   # a guessed key
    seen.append([c["ok"], rep["err"], rep.get("retry_s"), rep.get("fails")])
clock.advance(ch._auth.backoff.wait_ms() + 1)
key, nonce = open_session()
ok = oks([rd(0, 1, key, nonce), rd(0, 2, key, nonce)])
result([seen, ok, open(FAILS).read()])
""",
    )
    seen, ok, stored = r
    assert [s[1] for s in seen[:3]] == ["E_AUTH"] * 3  # typing errors are free
    assert all(s[1] == "E_LOCKED" and s[0] is False for s in seen[4:])
    waits = [s[2] for s in seen[4:]]
    assert waits == sorted(waits) and waits[-1] >= 8 * waits[0], seen
    assert [s[3] for s in seen[3:]] == list(range(4, 9))
    assert ok == [True, True] and stored.strip() == "0"
