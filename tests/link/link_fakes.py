"""Test-only stand-ins for the controller and the streams, importable under
MicroPython and CPython.

``FakeController`` implements the controller interface documented in
docs/link.md with a tiny configuration table (``SCHEMA``), answers at once
and holds still, so the channel (the real thing) can be tested
independently of the real controller; the closed loops (a stand-in of real
parts, the real controller) are link_rigs.py's. ``ScriptStream`` feeds
bytes to the channel; ``SinkStream`` and ``CheckingSink`` collect output;
``RecordingPin`` records a valve pin's edges.
"""

from cryo.link.errors import Denied, NotNow
from cryo.link.messages import role_allows

# What one poll that did work costs in the rigs' virtual time: a fixed figure,
# several times the measured median on the unix port (bench_link prints it).
POLL_CHARGE_MS = 1

# The parameters the stand-ins offer: name -> (lo, hi, role).
SCHEMA = {
    "pid.kp": (0.0, 10.0, "engineer"),
    "pid.ki": (0.0, 1.0, "engineer"),
    "pid.kd": (0.0, 50.0, "engineer"),
    "freeze.setpoint_c": (-60.0, 0.0, "operator"),
}


def check_param(name, value, role):
    """The test controllers' set_param checks: known name, role, range."""
    if name not in SCHEMA:
        raise ValueError("unknown parameter %r; known: %s" % (name, ", ".join(SCHEMA)))
    lo, hi, need = SCHEMA[name]
    if not role_allows(role, need):
        raise Denied("%s needs role %s or higher (got %s)" % (name, need, role))
    if type(value) not in (int, float) or not (lo <= value <= hi):
        raise ValueError("%s must be a number within %s..%s, got %r" % (name, lo, hi, value))


class FakeController:
    def __init__(self, clock):
        self.clock = clock
        self.config = {"pid.kp": 0.08, "pid.ki": 0.004, "pid.kd": 0.0, "freeze.setpoint_c": -30.0}
        self.valve_open = False
        self.demand = 0.0
        self.phase = "IDLE"
        self.faults = []
        self.audit = []
        self.applied = []
        self.at_state = {"state": "idle"}
        self.step_state = {"state": "idle"}
        self.service = False

    def status(self):
        return {
            "t_ms": self.clock.ticks_ms(),
            "phase": self.phase,
            "setpoint_c": self.config["freeze.setpoint_c"],
            "temps": {"tissue": 31.5, "tissue2": 31.25, "aux": 20.0},
            "cj_c": 24.0,
            "demand": self.demand,
            "valve": self.valve_open,
            "p": 0.0,
            "i": 0.0,
            "d": 0.0,
            "faults": list(self.faults),
            "alarms": [],
            "mode": "auto",
            "overruns": 0,
        }

    def get_param(self, name):
        if name not in self.config:
            raise ValueError("unknown parameter %r" % name)
        return self.config[name]

    def set_param(self, name, value, role):
        check_param(name, value, role)
        old = self.config[name]
        self.config[name] = value
        self.audit.append((name, old, value, role))
        self.applied.append(name)
        return value

    def save_config(self, role):
        return True

    def ack_fault(self, role):
        self.faults = []
        return {"faults": []}

    def request_service_mode(self, role):
        if self.phase != "IDLE":
            raise NotNow("service mode only when idle (phase %s)" % self.phase)
        self.service = True

    def start_autotune(self, params):
        if self.phase != "IDLE":
            raise NotNow("autotune only when idle")
        self.at_state = {"state": "running", "params": params}

    def stop_autotune(self, reason):
        self.at_state = {"state": "aborted", "reason": reason}

    def autotune_status(self):
        return self.at_state

    def start_step_test(self, params):
        self.step_state = {"state": "running", "params": params}

    def stop_step_test(self, reason):
        self.step_state = {"state": "aborted", "reason": reason}

    def step_test_status(self):
        return self.step_state


class ScriptStream:
    """Input stream: hands out ``data`` at most ``len(buf)`` bytes per call."""

    def __init__(self, data=b""):
        self.data = bytearray(data)
        self.pos = 0

    def feed(self, data):
        if self.pos >= len(self.data):
            self.data = bytearray(data)
            self.pos = 0
        else:
            self.data.extend(data)

    def readinto(self, buf):
        n = len(self.data) - self.pos
        if n <= 0:
            return 0
        if n > len(buf):
            n = len(buf)
        i = 0
        while i < n:
            buf[i] = self.data[self.pos + i]
            i += 1
        self.pos += n
        return n


class SinkStream:
    """Output stream that accepts everything (or ``limit`` bytes per call)."""

    def __init__(self, limit=0):
        self.buf = bytearray()
        self.limit = limit

    def write(self, mv):
        n = len(mv)
        if self.limit and n > self.limit:
            n = self.limit
        self.buf.extend(mv[0:n])
        return n

    def lines(self):
        out = bytes(self.buf).split(b"\n")
        self.buf = bytearray()
        return [ln for ln in out if ln]


class RecordingPin:
    """machine.Pin stand-in that records every level written."""

    def __init__(self):
        self.level = 0
        self.writes = 0
        self.highs = 0

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0
        self.writes += 1
        if v:
            self.highs += 1
        return None


class CheckingSink:
    """Output stream that decodes every frame it receives (bounded memory).

    Counts replies, error replies per code and telemetry frames; any
    undecodable output frame is counted in ``bad``.
    """

    def __init__(self):
        from cryo.link.framing import decode

        self._decode = decode
        self._line = bytearray()
        self.replies = 0
        self.errors = 0
        self.codes = {}
        self.telemetry = 0
        self.bad = 0
        self.last = None

    def write(self, mv):
        n = len(mv)
        i = 0
        line = self._line
        while i < n:
            c = mv[i]
            i += 1
            if c == 10:
                self._frame(bytes(line))
                line = bytearray()
            else:
                line.append(c)
        self._line = line
        return n

    def _frame(self, raw):
        try:
            obj = self._decode(raw, None, 2048)
        except Exception:
            self.bad += 1
            return
        self.last = obj
        if "tel" in obj:
            self.telemetry += 1
            return
        self.replies += 1
        if not obj.get("ok"):
            self.errors += 1
            code = obj.get("err")
            self.codes[code] = self.codes.get(code, 0) + 1
