"""Pin-level stand-ins for machine.Pin / machine.PWM used by the valve tests.

They record what the driver wrote (level, number of writes, edges) and
allocate nothing in ``value``/``duty_u16`` so ``assert_no_alloc`` can run the
real driver through them. Runs on MicroPython and CPython.
"""


class RecordingPin:
    def __init__(self, level=1):
        self.level = level  # starts energised to prove the driver closes it
        self.writes = 0
        self.rises = 0

    def value(self, v=None):
        if v is None:
            return self.level
        if v and not self.level:
            self.rises += 1
        self.level = 1 if v else 0
        self.writes += 1
        return None

    def opening(self):
        """Open fraction the plant sees (0 or 1)."""
        return 1.0 if self.level else 0.0


class RecordingPWM:
    def __init__(self, duty=65535):
        self.duty = duty
        self.writes = 0

    def duty_u16(self, v=None):
        if v is None:
            return self.duty
        self.duty = v
        self.writes += 1
        return None

    def opening(self):
        return self.duty / 65535.0
