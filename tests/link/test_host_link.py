"""host_tools.device.link.Link against scripted device output (CPython, no device).

A pipe pair stands in for the serial port: the test plays the device,
answering requests with hand-made lines, so noise, echoes, bad frames,
version mismatches and silence are all exercised.
"""

import os
import threading

import pytest

from cryo.link.framing import decode, encode
from host_tools.device.link import (
    Link,
    LinkDenied,
    LinkError,
    LinkInvalid,
    LinkMismatch,
)
from host_tools.device.serialport import FdSerial
from host_tools.errors import EXIT_DENIED, EXIT_INVALID, EXIT_MISMATCH


class Device:
    """Reads requests from the host, answers with ``respond(req) -> bytes``."""

    def __init__(self, respond):
        self.h2d_r, self.h2d_w = os.pipe()
        self.d2h_r, self.d2h_w = os.pipe()
        self.respond = respond
        self.requests = []
        threading.Thread(target=self._run, daemon=True).start()

    def port(self):
        return FdSerial(self.d2h_r, self.h2d_w)

    def _run(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.h2d_r, 4096)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = decode(line)
                self.requests.append(req)
                os.write(self.d2h_w, self.respond(req))


def reply(req, **fields):
    fields.update(id=req["id"], ok=True)
    return encode(fields)


def test_noise_echo_and_telemetry_are_sorted_out():
    def respond(req):
        return (
            b"MicroPython v1.29 banner\r\n"  # REPL noise
            + encode(dict(req))  # tty echo of the request itself
            + b'{"v":1,"id":99,"ok":true}*00000000\n'  # corrupted frame
            + encode({"tel": 1, "t_ms": 100, "phase": "IDLE"})
            + reply(req, fw="0.1.0", proto=1, max_line=512)
        )

    dev = Device(respond)
    with Link(dev.port(), timeout=2) as link:
        assert link.hello()["fw"] == "0.1.0"
        assert link.next_telemetry(1.0)["phase"] == "IDLE"
        assert link.noise_lines == 2 and link.bad_frames == 1


@pytest.mark.parametrize(
    "err, cls, code",
    [
        ("E_DENIED", LinkDenied, EXIT_DENIED),
        ("E_INVALID", LinkInvalid, EXIT_INVALID),
        ("E_ARGS", LinkInvalid, EXIT_INVALID),
        ("E_VERSION", LinkMismatch, EXIT_MISMATCH),
        ("E_STATE", LinkError, 3),
        ("E_INTERNAL", LinkError, 3),
    ],
)
def test_error_replies_map_to_exit_codes(err, cls, code):
    dev = Device(lambda req: encode({"id": req["id"], "ok": False, "err": err, "msg": "why"}))
    with Link(dev.port(), timeout=2) as link, pytest.raises(cls) as e:
        link.status()
    assert e.value.exit_code == code and e.value.code == err
    assert str(e.value) == f"device: why ({err})"


def test_old_firmware_protocol_is_a_mismatch():
    dev = Device(lambda req: reply(req, fw="0.0.1", proto=0, max_line=512))
    with Link(dev.port(), timeout=2) as link, pytest.raises(LinkMismatch, match="protocol 0"):
        link.hello()


def test_silence_is_a_clear_timeout():
    dev = Device(lambda req: b"")
    with (
        Link(dev.port(), timeout=0.3) as link,
        pytest.raises(LinkError, match="no reply to 'status'"),
    ):
        link.status()


def test_requests_are_framed_and_too_long_ones_refused():
    dev = Device(lambda req: reply(req, name=req["name"], value=1))
    with Link(dev.port(), timeout=2) as link:
        assert link.get("pid.kp") == 1
        with pytest.raises(LinkInvalid, match="request too long"):
            link.get("x" * 600)
    assert dev.requests == [{"v": 1, "id": 1, "cmd": "get", "name": "pid.kp"}]
