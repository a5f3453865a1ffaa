"""Authenticated commands on the device, under real MicroPython.

The channel, parser, framing, ``cryo.link.auth`` and ``cryo.link.backoff``
are the firmware's; ``FakeController`` (tests/link/link_fakes.py) stands in
for the controller. Each test plays the attacker or the host on the wire:
frames in, replies out, files on the interpreter's filesystem.
"""

PRELUDE = """
import os
from binascii import unhexlify
from cryo.clock import ManualClock
from cryo.link import auth
from cryo.link.backoff import Backoff
from cryo.link.channel import CommandChannel
from cryo.link.framing import encode, decode, crc32
from cryo.storage import roles
from link_fakes import FakeController, ScriptStream, SinkStream
import json
D = %(dir)r
ROLES = D + "/roles.txt"
AUTHF = D + "/auth.txt"
FAILS = D + "/auth.fails"
MASTER = b"m" * 32
try:
    os.stat(AUTHF)
except OSError:
    roles.set_pin(ROLES, "engineer", "4711", salt=b"s" * 16, iterations=50)
    roles.set_pin(ROLES, "operator", "1234", salt=b"o" * 16, iterations=50)
    with open(AUTHF, "w") as f:
        f.write(auth.provisioning_text("dev-1", auth.service_key(MASTER, "dev-1"), auth.audit_key(MASTER, "dev-1")))
clock = ManualClock((1 << 30) - 5000)   # crosses the tick wrap
ctl = FakeController(clock)
sin = ScriptStream()
sout = SinkStream()
ch = CommandChannel(ctl, sin, sout, auth=auth.load(clock, AUTHF, ROLES, FAILS))
_id = [0]
def pump(n=5, step=1):
    for _ in range(n):
        ch.poll()
        clock.advance(step)
def ask(**obj):
    _id[0] += 1
    obj["id"] = _id[0]
    sin.feed(encode(obj))
    pump()
    return [decode(ln, None, 2048) for ln in sout.lines()][-1]
def signed(obj, key, nonce_hex):
    _id[0] += 1
    obj["id"] = _id[0]
    obj["v"] = 1
    p = json.dumps(obj).encode()
    s = auth.sign_payload(p, key, unhexlify(nonce_hex))
    return s + (b"*%%08x\\n" %% crc32(s))
def send_raw(frame):
    sin.feed(frame)
    pump()
    return [decode(ln, None, 2048) for ln in sout.lines()][-1]
def key_for(c):
    if c["role"] == "service":
        return auth.service_key(MASTER, c["device"])
    pin = {"engineer": "4711", "operator": "1234"}[c["role"]]
    return roles.verifier(unhexlify(c["salt"]), pin, c["iter"])
"""


def _run(run_sec, tmp_path, body):
    return run_sec(PRELUDE % {"dir": str(tmp_path)} + body)


def test_commands_without_auth_are_refused_and_reads_stay_open(run_sec, tmp_path):
    r = _run(
        run_sec,
        tmp_path,
        """
h = ask(cmd="hello")
st = ask(cmd="status")
g = ask(cmd="get", name="pid.kp")
s = ask(cmd="set", name="pid.kp", value=0.5, role="engineer")
sv = ask(cmd="service", role="service")
at = ask(cmd="autotune", action="status")
result([h, st["ok"], g, s, sv, at["ok"], ctl.config["pid.kp"], ctl.service, ch._auth.backoff.fails])
""",
    )
    hello, status_ok, get, set_, service, at_ok, kp, in_service, fails = r
    assert hello["auth"] is True and hello["device"] == "dev-1"
    assert status_ok and get["ok"] and at_ok
    for rep in (set_, service):
        assert rep["ok"] is False and rep["err"] == "E_AUTH" and rep["required"] is True
        assert "needs authentication" in rep["msg"]
    assert kp == 0.08 and in_service is False
    assert fails == 0  # a missing field is not a guess


def test_authenticated_command_runs_once_and_its_replay_is_refused(run_sec, tmp_path):
    r = _run(
        run_sec,
        tmp_path,
        """
c = ask(cmd="challenge", role="engineer")
frame = signed({"cmd": "set", "name": "pid.kp", "value": 0.5, "role": "engineer"},
               key_for(c), c["nonce"])
first = send_raw(frame)
kp1 = ctl.config["pid.kp"]
ctl.config["pid.kp"] = 0.08
replay = send_raw(frame)              # the captured frame, byte for byte
c2 = ask(cmd="challenge", role="engineer")
replay2 = send_raw(frame)             # replayed against a fresh challenge
result([c, first, kp1, replay, replay2, ctl.config["pid.kp"]])
""",
    )
    c, first, kp1, replay, replay2, kp_end = r
    assert len(c["nonce"]) == 32 and c["iter"] == 50 and c["ttl_s"] == 30
    assert first["ok"] is True and kp1 == 0.5
    assert replay["err"] == "E_AUTH" and "no open challenge" in replay["msg"]
    assert replay2["err"] == "E_AUTH" and "wrong credential" in replay2["msg"]
    assert kp_end == 0.08


def test_mac_covers_every_byte_and_service_key_is_per_device(run_sec, tmp_path):
    r = _run(
        run_sec,
        tmp_path,
        """
out = []
c = ask(cmd="challenge", role="engineer")
f = signed({"cmd": "set", "name": "pid.kp", "value": 0.5, "role": "engineer"},
           key_for(c), c["nonce"])
t = f.replace(b"0.5", b"9.5")         # value changed after signing (CRC redone)
body = t[: t.index(b"*")]
out.append(send_raw(body + (b"*%08x\\n" % crc32(body))))
c = ask(cmd="challenge", role="service")
other = auth.service_key(MASTER, "dev-2")   # another device's service key
out.append(send_raw(signed({"cmd": "service", "role": "service"}, other, c["nonce"])))
c = ask(cmd="challenge", role="operator")   # operator credential used for an engineer command
out.append(send_raw(signed({"cmd": "save", "role": "engineer"}, key_for(c), c["nonce"])))
clock.advance(1100)  # three failures: a 1 s wait before the next attempt
c = ask(cmd="challenge", role="service")
out.append(send_raw(signed({"cmd": "service", "role": "service"}, key_for(c), c["nonce"])))
result([out, ctl.config["pid.kp"], ctl.service])
""",
    )
    out, kp, in_service = r
    assert [o["err"] for o in out[:3]] == ["E_AUTH"] * 3
    assert out[3]["ok"] is True and in_service is True
    assert kp == 0.08


def test_expired_challenge_refused(run_sec, tmp_path):
    r = _run(
        run_sec,
        tmp_path,
        """
c = ask(cmd="challenge", role="engineer")
clock.advance(31000)
late = send_raw(signed({"cmd": "save", "role": "engineer"}, key_for(c), c["nonce"]))
result(late)
""",
    )
    assert r["err"] == "E_AUTH" and "expired" in r["msg"]


def test_backoff_grows_is_persisted_and_clears_on_success(run_sec, tmp_path):
    r = _run(
        run_sec,
        tmp_path,
        """
waits = []
for i in range(12):
    c = ask(cmd="challenge", role="engineer")
    if c["ok"]:
        rep = send_raw(signed({"cmd": "save", "role": "engineer"}, b"x" * 32, c["nonce"]))
    else:
        rep = send_raw(signed({"cmd": "save", "role": "engineer"}, b"x" * 32, "00" * 16))
    waits.append([rep["err"], rep.get("retry_s"), rep.get("fails")])
stored = open(FAILS).read()
# a power cut: a new channel on the same files, the clock restarted
clock2 = ManualClock(0)
a2 = auth.load(clock2, AUTHF, ROLES, FAILS)
after_reboot = a2.backoff.wait_ms()
# the right PIN is refused without evaluation while the wait runs
ch2 = CommandChannel(ctl, sin, sout, clock=clock2, auth=a2)
ch = ch2
clock = clock2
c = ask(cmd="challenge", role="engineer")
# past the wait: the right credential works and clears the count
clock2.advance(a2.backoff.wait_ms() + 1)
c3 = ask(cmd="challenge", role="engineer")
ok = send_raw(signed({"cmd": "save", "role": "engineer"}, key_for(c3), c3["nonce"]))
result([waits, stored, after_reboot, c, ok, open(FAILS).read()])
""",
    )
    waits, stored, after_reboot, locked_challenge, ok, stored_end = r
    # the first 3 failures cost nothing, then every attempt is refused and doubles the wait
    assert [w[0] for w in waits[:3]] == ["E_AUTH"] * 3
    assert all(w[0] == "E_LOCKED" for w in waits[4:])
    retry = [w[1] for w in waits[4:]]
    assert retry == sorted(retry) and retry[-1] > retry[0] * 8, waits
    assert [w[2] for w in waits[3:]] == list(range(4, 13))  # every attempt counted
    assert stored.strip() == "12"
    assert after_reboot >= 512000  # the full wait restarts at boot
    assert locked_challenge["err"] == "E_LOCKED" and locked_challenge["retry_s"] >= 512
    assert ok["ok"] is True and stored_end.strip() == "0"


def test_unprovisioned_device_behaves_as_before(run_sec, tmp_path):
    r = run_sec(
        """
from cryo.clock import ManualClock
from cryo.link import auth
from cryo.link.channel import CommandChannel
from cryo.link.framing import encode, decode
from link_fakes import FakeController, ScriptStream, SinkStream
D = %r
a = auth.load(ManualClock(0), D + "/none.txt", D + "/roles.txt", D + "/fails")
clock = ManualClock(0)
ctl = FakeController(clock)
sin = ScriptStream(); sout = SinkStream()
ch = CommandChannel(ctl, sin, sout, auth=a)
sin.feed(encode({"id": 1, "cmd": "set", "name": "pid.kp", "value": 0.5, "role": "engineer"}))
sin.feed(encode({"id": 2, "cmd": "challenge", "role": "engineer"}))
sin.feed(encode({"id": 3, "cmd": "hello"}))
for _ in range(20):
    ch.poll(); clock.advance(1)
result([a is None, [decode(l, None, 2048) for l in sout.lines()], ctl.config["pid.kp"]])
"""
        % str(tmp_path)
    )
    none, replies, kp = r
    assert none and kp == 0.5
    assert replies[0]["ok"] and replies[1]["err"] == "E_UNSUPPORTED"
    assert replies[2]["auth"] is False and "device" not in replies[2]
