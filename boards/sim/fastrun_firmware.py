"""The firmware as the fast runner (fastrun.py) builds it: the Controller
with its flash logs, and the command channel on an in-memory serial line.

In fast virtual time there is no pty: the scenario's ``serial`` events are
bytes appended to the world's input buffer, and what the firmware answers
is collected in its output buffer for the run's summary.
"""


class SimStream:
    """Non-blocking byte stream: reads from ``buf`` (serial events), writes
    append to ``out`` (what the firmware answers)."""

    def __init__(self, buf, out=None):
        self.buf = buf
        self.out = out

    def readinto(self, b):
        n = len(self.buf)
        if n == 0:
            return None
        m = len(b)
        if m > n:
            m = n
        b[:m] = self.buf[:m]
        self.buf[:] = self.buf[m:]
        return m

    def write(self, b):
        self.out.extend(b)
        return len(b)


def serial_bytes(ev):
    """Bytes of a scenario ``serial`` event (``frame``: framed like the host)."""
    if "frame" in ev:
        from cryo.link.framing import encode

        return encode(ev["frame"])
    return ev["data"].encode()


def make_controller(board, opts, clock, world):
    """The firmware's Controller and its command channel (None when the
    link cannot be built: the reason goes in the world's log)."""
    from cryo import paths
    from cryo.controller import Controller

    log = None
    try:
        from cryo.storage.log import TreatmentLog

        log = TreatmentLog(clock=clock)  # under the flash root (cryo.paths)
    except Exception as e:  # noqa: BLE001 - the controller reports STORAGE
        world.log.append((clock.ticks_ms(), "log unavailable: %r" % (e,)))
    audit = None
    try:
        from cryo.storage.audit import AuditTrail

        audit = AuditTrail(paths.on_flash(paths.AUDIT_PATH))
    except Exception:  # noqa: BLE001 - optional
        audit = None
    from cryo.storage.events import DeviceEventLog
    from cryo.storage.safety_state import SafetyState

    link = None
    ctrl = Controller(
        board,
        opts.get("config"),
        log=log,
        audit=audit,
        state=SafetyState(),
        events=DeviceEventLog(),
    )
    try:
        from cryo.link.channel import CommandChannel

        stream = SimStream(world.serial_in, world.serial_out)
        link = CommandChannel(ctrl, stream, stream)
    except Exception as e:  # noqa: BLE001 - the link is optional here
        world.log.append((clock.ticks_ms(), "link unavailable: %r" % (e,)))
    return ctrl, link
