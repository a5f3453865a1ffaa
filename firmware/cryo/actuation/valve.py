"""Fail-safe cryogen valve drivers: solenoid, proportional, master shut-off.

All valves are **normally closed**: the constructor drives the output closed
before anything else, and every path that is not an explicit, permitted,
fresh open command leaves them closed.

Safety path (integer-only, allocation-free, ``assert_no_alloc`` proven):
``service(now_ms)``, ``force_closed()``, ``refresh(now_ms)`` and the
``MasterValve`` methods. Only ``request(demand)`` uses floats (control path):
it converts the demand into integer milliseconds per window once.

Three independent conditions must hold for a valve to open (permit,
dead-man and demand, as Klipper's heater output with ``max_duration``):

1. ``permit`` is true. Only the interlock sets it; it starts false.
2. The dead-man is alive: ``refresh(now_ms)`` was called less than
   ``max_open_ms`` ago (Klipper ``max_duration``: a stalled tick, an
   exception that skips the refresh, or a lost host closes the valve on the
   next ``service``, which a timer/ISR can keep calling).
3. The demand asks for it.

A fault path calls ``force_closed()`` first (de-energise in the same tick),
then alarms and logs; ``force_closed`` also disarms the dead-man so the
valve stays closed until the next explicit ``refresh``.
"""

from micropython import const

_U16 = const(65535)
# Counters saturate below 2**30: on 32-bit boards larger ints are heap
# objects, and the safety path must never allocate (~12 days of open time).
_SAT = const((1 << 30) - 1)


class SolenoidValve:
    """On/off solenoid driven by time-proportioning.

    The demand (0..1) becomes an on-time per ``window_ms`` (PID_v1's relay
    example), with at most one pulse per window, so ``cycles`` never exceeds
    one per window (a predictable valve-life budget). Process heaters use
    1-5 s windows, but the skin surface
    under the spray answers a pulse within a fraction of a second, so the
    window sets the temperature ripple: on the default plant 2 s gives
    ~0.9 °C RMS, 200 ms (the default) ~0.43 °C at five cycles per second
    while holding (docs/control.md has the table).

    The valve opens at the start of the window for ``on_ms`` and then
    closes. The demand may change at any ``service`` call: the valve closes
    as soon as the on-time is used up, and opens later in the window if the
    demand grows before the window's pulse was given; what one window could
    not deliver is carried.

    Minimum times (a solenoid needs tens of ms to open; short pulses do not
    deliver cryogen and wear the valve): a pulse is never shorter than
    ``min_on_ms`` and a gap never shorter than ``min_off_ms`` (except that a
    closing command for safety is always immediate). On-times below
    ``min_on_ms`` are not lost: the shortfall is carried to the next window
    (bounded, reset when the demand is 0), so small demands come out as
    occasional minimum pulses with the right average. A demand of exactly 0
    never opens the valve; a demand of 1 keeps it open without cycling.

    ``cycles`` counts closed->open transitions (valve life budget);
    ``open_ms`` accumulates open time (cryogen use). ``pin`` follows
    ``machine.Pin`` (``value(v)``, 1 = energised = open).
    """

    def __init__(self, pin, clock, window_ms=200, min_on_ms=30, min_off_ms=30, max_open_ms=3000):
        pin.value(0)  # normally closed: de-energise before anything else
        self._pin = pin
        self._clock = clock
        self._timing(window_ms, min_on_ms, min_off_ms, max_open_ms)
        self.permit = False  # granted only by the interlock
        self.is_open = False
        self.cycles = 0
        self.open_ms = 0
        self.expired = 0  # dead-man expiries (an armed valve lost its refresh)
        self._req_ms = 0  # requested on-time per window (ints from here on)
        self._carry = 0
        self._armed = False
        self._deadline = 0
        self._win_start = 0
        self._win_on = 0  # ms open so far in this window
        self._in_window = False
        self._pulsed = False  # this window's pulse has been given
        self._last = clock.ticks_ms()
        # last open/close edge; the valve has been closed "long enough" at boot
        self._changed = clock.add(self._last, -min_off_ms)

    def _timing(self, window_ms, min_on_ms, min_off_ms, max_open_ms):
        for name, v, lo in (
            ("window_ms", window_ms, 20),
            ("min_on_ms", min_on_ms, 0),
            ("min_off_ms", min_off_ms, 0),
            ("max_open_ms", max_open_ms, 1),
        ):
            if not isinstance(v, int) or v < lo or v >= (1 << 28):
                raise ValueError("%s must be an integer >= %d ms, got %r" % (name, lo, v))
        if min_on_ms + min_off_ms > window_ms:
            raise ValueError(
                "min_on_ms + min_off_ms (%d) must fit in window_ms (%d)"
                % (min_on_ms + min_off_ms, window_ms)
            )
        self.window_ms = window_ms
        self.min_on_ms = min_on_ms
        self.min_off_ms = min_off_ms
        self.max_open_ms = max_open_ms

    def retime(self, window_ms, min_on_ms, min_off_ms, max_open_ms):
        """New timing (a configuration change outside a treatment): the
        valve closes first, then takes it."""
        self.force_closed()
        self._timing(window_ms, min_on_ms, min_off_ms, max_open_ms)

    # -- control path (float) -------------------------------------------

    def request(self, demand):
        """Set the demand (0..1, 1 = full cooling); out-of-range is an error."""
        if not (0.0 <= demand <= 1.0):
            raise ValueError("valve demand must be within 0..1, got %r" % (demand,))
        on = int(demand * self.window_ms + 0.5)
        if demand > 0.0 and on == 0:
            on = 1  # keep "some cooling" distinct from "none" for the carry
        self._req_ms = on

    # -- safety path (integer-only, allocation-free) ---------------------

    def set_permit(self, on):
        """The interlock grants (``True``) or withdraws the permit; only it
        calls this. Withdrawing does not close by itself: the caller's
        ``force_closed`` or the next ``service`` does."""
        self.permit = on

    def refresh(self, now_ms):
        """Keep the dead-man alive until ``now_ms + max_open_ms``."""
        self._deadline = self._clock.add(now_ms, self.max_open_ms)
        self._armed = True

    def force_closed(self):
        """Close now, drop the window and the carry, disarm the dead-man."""
        self._pin.value(0)
        if self.is_open:
            self.is_open = False
            self._changed = self._clock.ticks_ms()
        self._armed = False
        self._in_window = False
        self._carry = 0

    def _close(self, now_ms):
        self._pin.value(0)
        if self.is_open:
            self.is_open = False
            self._changed = now_ms

    def service(self, now_ms):
        """Apply permit, dead-man and time-proportioning at ``now_ms``.

        Call it every tick (or from a timer); the on/off resolution is the
        call period.
        """
        clock = self._clock  # call its methods directly: no bound-method objects
        step = clock.diff(now_ms, self._last)
        self._last = now_ms
        # Age the last edge on every call, permitted or not: after half the
        # tick period (6.2 days of ms ticks on a 32-bit board) ``diff``
        # would turn negative and the minimum off-time would refuse to open
        # the valve. Once a minimum time is met only "met" matters, so the
        # edge is kept within reach.
        hold = self.min_on_ms if self.is_open else self.min_off_ms
        if clock.diff(now_ms, self._changed) > hold:
            self._changed = clock.add(now_ms, -hold)
        if self.is_open and step > 0:
            self.open_ms = self.open_ms + step if self.open_ms < _SAT - step else _SAT
            self._win_on += step
        if not self.permit:
            self._close(now_ms)
            self._in_window = False
            self._carry = 0
            return False
        if not self._armed or clock.diff(now_ms, self._deadline) >= 0:
            if self._armed:
                if self.expired < _SAT:
                    self.expired += 1
                self._armed = False
            self._close(now_ms)
            self._in_window = False
            self._carry = 0
            return False
        req = self._req_ms
        win = self.window_ms
        if not self._in_window:
            self._in_window = True
            self._win_start = now_ms
            self._win_on = 0
            self._pulsed = False
        elif clock.diff(now_ms, self._win_start) >= win:
            # Window rollover: carry what the valve could not deliver.
            if req == 0:
                self._carry = 0
            else:
                c = self._carry + req - self._win_on
                lim = self.min_on_ms + self.min_off_ms
                if c > lim:
                    c = lim
                elif c < -lim:
                    c = -lim
                self._carry = c
            self._win_start = now_ms
            self._win_on = 0
            self._pulsed = False
        want = req + self._carry if req > 0 else 0
        if want < self.min_on_ms:
            want = 0 if want < (self.min_on_ms >> 1) or req == 0 else self.min_on_ms
        if want > win - self.min_off_ms:
            want = win
        if req >= win:
            want = win
        open_now = self._win_on < want
        since = clock.diff(now_ms, self._changed)
        if self.is_open:
            if not open_now and since < self.min_on_ms:
                open_now = True  # honour the minimum on-time
        elif open_now:
            if self._pulsed:
                open_now = False  # one pulse per window: a bounded cycle budget
            elif since < self.min_off_ms:
                open_now = False  # honour the minimum off-time
            elif want - self._win_on < self.min_on_ms and want < win:
                open_now = False  # remaining slice too short to be a pulse
        if open_now:
            if not self.is_open:
                self.is_open = True
                self._changed = now_ms
                if self.cycles < _SAT:
                    self.cycles += 1
            self._pin.value(1)
        else:
            if self.is_open:
                self._pulsed = True
            self._close(now_ms)
        return self.is_open


class ProportionalValve:
    """Proportional (PWM-driven) valve, same permit and dead-man as above.

    ``pwm`` follows ``machine.PWM`` (``duty_u16(v)``). The demand maps to a
    16-bit duty; demands below ``min_demand`` (the valve's cracking point)
    give 0 (closed). ``cycles`` counts closed->open transitions.
    """

    def __init__(self, pwm, clock, max_open_ms=3000, min_demand=0.0):
        pwm.duty_u16(0)  # normally closed
        self._pwm = pwm
        self._clock = clock
        if not isinstance(max_open_ms, int) or max_open_ms < 1:
            raise ValueError("max_open_ms must be an integer >= 1 ms, got %r" % (max_open_ms,))
        if not (0.0 <= min_demand < 1.0):
            raise ValueError("min_demand must be within 0..1, got %r" % (min_demand,))
        self.max_open_ms = max_open_ms
        self._min_duty = int(min_demand * _U16)
        self.permit = False
        self.is_open = False
        self.cycles = 0
        self.expired = 0
        self._duty = 0
        self._armed = False
        self._deadline = 0

    def retime(self, window_ms, min_on_ms, min_off_ms, max_open_ms):
        """New valve settings (a configuration change outside a treatment):
        the valve closes first. Only the dead-man's ``max_open_ms`` applies;
        the window and minimum times are the solenoid's."""
        if not isinstance(max_open_ms, int) or max_open_ms < 1:
            raise ValueError("max_open_ms must be an integer >= 1 ms, got %r" % (max_open_ms,))
        self.force_closed()
        self.max_open_ms = max_open_ms

    def request(self, demand):
        if not (0.0 <= demand <= 1.0):
            raise ValueError("valve demand must be within 0..1, got %r" % (demand,))
        d = int(demand * _U16 + 0.5)
        self._duty = d if d >= self._min_duty and d > 0 else 0

    def set_permit(self, on):
        """The interlock grants (``True``) or withdraws the permit; only it
        calls this. Withdrawing does not close by itself: the caller's
        ``force_closed`` or the next ``service`` does."""
        self.permit = on

    def refresh(self, now_ms):
        self._deadline = self._clock.add(now_ms, self.max_open_ms)
        self._armed = True

    def force_closed(self):
        self._pwm.duty_u16(0)
        self.is_open = False
        self._armed = False

    def service(self, now_ms):
        duty = self._duty
        if not self.permit:
            duty = 0
        elif not self._armed or self._clock.diff(now_ms, self._deadline) >= 0:
            if self._armed:
                if self.expired < _SAT:
                    self.expired += 1
                self._armed = False
            duty = 0
        self._pwm.duty_u16(duty)
        if duty > 0:
            if not self.is_open and self.cycles < _SAT:
                self.cycles += 1
            self.is_open = True
        else:
            self.is_open = False
        return self.is_open


class MasterValve:
    """Normally closed master shut-off valve in series with the control valve.

    Commanded by the interlock, never by the PID. ``open()`` holds it open
    (PRECOOL, FREEZE: the solenoid alone modulates, the master is the second
    barrier for when the loop closes it). ``open(pulsed=True)`` lets it open
    only with the solenoid's pulses (``track``, called after every solenoid
    service): in an open-loop experiment nothing drives the demand to 0
    around a solenoid that sticks open or leaks, so its window's off-time
    is made a master off-time too and the failed solenoid delivers exactly
    the commanded pulses. ``close()`` always rewrites the pin, so it can be
    repeated from a fault path. Integer-only and allocation-free.
    """

    def __init__(self, pin):
        pin.value(0)
        self._pin = pin
        self.is_open = False
        self._allowed = False
        self._pulsed = False

    def open(self, pulsed=False):
        """Allow the flow: held open, or (``pulsed``) opened by ``track``."""
        self._allowed = True
        self._pulsed = pulsed
        if not pulsed:
            self._pin.value(1)
            self.is_open = True

    def track(self, solenoid_open):
        """Follow the solenoid in pulsed mode (no effect otherwise)."""
        if self._allowed and self._pulsed:
            self._pin.value(1 if solenoid_open else 0)
            self.is_open = solenoid_open

    def close(self):
        self._allowed = False
        self._pulsed = False
        self._pin.value(0)
        self.is_open = False
