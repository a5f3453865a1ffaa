"""Attacks on the authenticated link of a provisioned virtual board.

The board is the real `cryo sim` (MicroPython running boot.py and main.py);
the attacker writes raw frames to its serial port with pyserial, as any
program holding the cable could. The legitimate host is the real
``host_tools.device.link.Link`` with a PIN, as the `cryo` commands use it.
"""

import json
import time

import pytest
import serial
from sec_sim import ENGINEER_PIN, ControllerSim

from host_tools.auth import Credentials, signed_frame
from host_tools.device.link import Link, LinkDenied, LinkInvalid

# isort: split
from cryo.link import framing

pytestmark = pytest.mark.sim


class Wire:
    """A raw serial connection: frames out, replies (by id) back."""

    def __init__(self, port):
        self.s = serial.Serial(port, timeout=0.05)
        self.buf = b""
        self.id = 1000

    def close(self):
        self.s.close()

    def write(self, frame):
        self.s.write(frame)

    def reply(self, rid, timeout=3):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.buf += self.s.read(4096)
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                try:
                    obj = framing.decode(line.rstrip(b"\r"), limit=4096)
                except framing.FrameError:
                    continue
                if obj.get("id") == rid:
                    return obj
        raise AssertionError("no reply to id %d" % rid)

    def ask(self, **obj):
        self.id += 1
        obj["id"] = self.id
        self.write(framing.encode(obj))
        return self.reply(self.id)

    def send_signed(self, obj, key, nonce):
        self.id += 1
        obj["id"] = self.id
        self.write(signed_frame(obj, key, nonce))
        return self.reply(self.id)


class Recorder:
    """A serial port that keeps a copy of every frame the host writes."""

    def __init__(self, port):
        self.s = serial.Serial(port, timeout=0.05)
        self.sent = []

    def read(self, n):
        return self.s.read(n)

    def write(self, data):
        self.sent.append(bytes(data))
        return self.s.write(data)

    def close(self):
        self.s.close()


def test_unauthenticated_change_refused_and_host_authenticates_transparently(board):
    w = Wire(board.port)
    try:
        kp = w.ask(cmd="get", name="pid.kp")["value"]
        r = w.ask(cmd="set", name="pid.kp", value=kp * 2, role="engineer")
        assert r["err"] == "E_AUTH" and "needs authentication" in r["msg"]
        r = w.ask(cmd="service", role="service")
        assert r["err"] == "E_AUTH"
        assert w.ask(cmd="get", name="pid.kp")["value"] == kp
    finally:
        w.close()
    creds = Credentials(pins={"engineer": ENGINEER_PIN}, ask=False)
    with Link(board.port, timeout=3, credentials=creds) as link:
        assert link.set("pid.kp", kp * 2, role="engineer") == kp * 2
        assert link.get("pid.kp") == kp * 2
    wrong = Credentials(pins={"engineer": "0000"}, ask=False)
    with Link(board.port, timeout=3, credentials=wrong) as link:
        with pytest.raises(LinkDenied, match="wrong credential for role engineer"):
            link.set("pid.kp", kp, role="engineer")


def test_captured_command_replayed_is_refused(board):
    rec = Recorder(board.port)
    creds = Credentials(pins={"engineer": ENGINEER_PIN}, ask=False)
    with Link(rec, timeout=3, credentials=creds) as link:
        kp = link.get("pid.kp")
        assert link.set("pid.kp", kp * 2, role="engineer") == kp * 2
        link.set("pid.kp", kp, role="engineer")
    captured = [f for f in rec.sent if b'"auth":' in f]
    assert len(captured) == 2
    w = Wire(board.port)
    try:
        for frame in captured:  # the change to 2*kp, then back: replay both
            rid = json.loads(frame[: frame.rindex(b"*")])["id"]
            w.write(frame)
            r = w.reply(rid)
            assert r["ok"] is False and r["err"] == "E_AUTH", r
            assert "no open challenge" in r["msg"]
        # and against a fresh challenge the old MAC is worthless
        w.ask(cmd="challenge", role="engineer")
        w.write(captured[0])
        r = w.reply(json.loads(captured[0][: captured[0].rindex(b"*")])["id"])
        assert r["err"] == "E_AUTH" and "wrong credential" in r["msg"]
        assert w.ask(cmd="get", name="pid.kp")["value"] == kp
    finally:
        w.close()


def test_hundred_pin_guesses_refused_backoff_grows_and_survives_power_cycle(
    board, tmp_path, monkeypatch
):
    w = Wire(board.port)
    seen = []
    try:
        for guess in range(100):
            pin = "%04d" % guess
            assert pin != ENGINEER_PIN
            ch = w.ask(cmd="challenge", role="engineer")
            creds = Credentials(pins={"engineer": pin}, ask=False)
            if ch["ok"]:
                key, nonce = creds.key(ch), ch["nonce"]
            else:
                assert ch["err"] == "E_LOCKED"
                key, nonce = b"k" * 32, "00" * 16  # try anyway
            r = w.send_signed(
                {"cmd": "set", "name": "pid.kp", "value": 1.0, "role": "engineer"}, key, nonce
            )
            assert r["ok"] is False and r["err"] in ("E_AUTH", "E_LOCKED"), r
            seen.append((r["err"], r.get("retry_s"), r.get("fails")))
        kp = w.ask(cmd="get", name="pid.kp")["value"]
    finally:
        w.close()
    assert kp != 1.0
    assert [e for e, _, _ in seen[:3]] == ["E_AUTH"] * 3  # typing errors are free
    locked = [(s, f) for e, s, f in seen if e == "E_LOCKED"]
    assert len(locked) >= 90  # the rest refused without looking at the PIN
    waits = [s for s, _ in locked]
    assert waits == sorted(waits)  # never shrinks
    assert waits[0] <= 4 and max(waits) >= 850  # 1 s ... 15 min
    assert [f for _, f in locked][-1] == 100

    # power cycle: a new process on the same flash image; the count and the wait survive
    board.stop()
    again = ControllerSim(tmp_path)
    try:
        assert again.hello["auth"] is True
        w = Wire(again.port)
        try:
            ch = w.ask(cmd="challenge", role="engineer")
            assert ch["err"] == "E_LOCKED" and ch["retry_s"] >= 850 and ch["fails"] == 100, ch
            # even the right PIN is refused until the wait ends, and counts
            creds = Credentials(pins={"engineer": ENGINEER_PIN}, ask=False)
            fake = {"role": "engineer", "salt": "00", "iter": 1}
            r = w.send_signed({"cmd": "save", "role": "engineer"}, creds.key(fake), "00" * 16)
            assert r["err"] == "E_LOCKED" and r["fails"] == 101
        finally:
            w.close()
    finally:
        again.stop()


def test_clinical_hard_limits_out_of_reach_of_the_service_role(board):
    # the highest role, authenticated with the manufacturer's key ($CRYO_KEYS)
    with Link(board.port, timeout=3) as link:
        floor = link.get("limits.floor_c")
        with pytest.raises(LinkInvalid, match="no role can widen it"):
            link.set("limits.floor_c", floor - 20, role="service")
        assert link.get("limits.floor_c") == floor
