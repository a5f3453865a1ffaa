"""Alarm signals in the style of IEC 60601-1-8 (alarm systems in medical electrical equipment).

Priorities map to auditory bursts and LED colour/flash rate:

=========  ======================================  =======================
priority   buzzer (pulse fundamental 150-1000 Hz)   LED
=========  ======================================  =======================
HIGH       10-pulse burst (3+2, 3+2), every 5 s     alarm LED flashing 2 Hz 50 %
MEDIUM     3-pulse burst, every 8 s                 yellow (or alarm) LED 0.5 Hz
LOW        2-pulse burst, every 20 s                yellow (or alarm) LED steady
=========  ======================================  =======================

The highest active priority is signalled. Audio pause (operator) silences
the buzzer for ``AUDIO_PAUSE_MS`` (LEDs keep flashing) and is returned to the
caller to be logged (IEC 60601-1-8 6.12: inactivation states are logged).
A new alarm condition of a higher priority ends the pause.

``service(now)`` is integer-only: it recomputes the buzzer and LED levels
from the time since the alarm started and writes the outputs only on a
change. ``buzzer`` follows machine.PWM (``freq``, ``duty_u16``); ``leds`` is
a dict name→Pin: the alarm indicator is "alarm" (or "red"; medium/low use
"yellow" when fitted, else the alarm LED at their own flash rate), "power"
(or "green") is lit while no alarm is pending; missing ones are skipped.
"""

from micropython import const

from cryo.interlock import conditions as C

AUDIO_PAUSE_MS = const(120000)
_DUTY_ON = const(32768)

# Burst patterns: pulse start offsets (ms) within the burst, pulse length,
# repeat period, tone (Hz). HIGH: 3 + 2 pulses, pause, 3 + 2 pulses. The
# buzzer is switched from the tick, so pulses and gaps are whole 100 ms
# ticks (IEC 60601-1-8 pulse widths are 75-200 ms).
_HIGH_STARTS = (0, 200, 400, 800, 1000, 2000, 2200, 2400, 2800, 3000)
_MED_STARTS = (0, 200, 400)
_LOW_STARTS = (0, 200)
_PATTERN = (
    None,
    (_LOW_STARTS, 100, 20000, 440),
    (_MED_STARTS, 100, 8000, 523),
    (_HIGH_STARTS, 100, 5000, 659),
)
_FLASH_MS = (0, 0, 2000, 500)  # flash period per priority (0 = steady)


class Alarms:
    def __init__(self, clock, buzzer=None, leds=None):
        self._clock = clock
        self._buzzer = buzzer
        self._leds = leds or {}
        self.priority = 0
        self.mask = 0  # conditions alarming (active or latched)
        self._t0 = clock.ticks_ms()
        self._paused_until = None
        self._pause_pr = 0
        self._tone = -1
        leds = self._leds
        self._alarm = leds.get("alarm", leds.get("red"))
        self._yellow = leds.get("yellow")
        self._power = leds.get("power", leds.get("green"))
        self._led_state = [-1, -1, -1]
        self._apply_tone(False, 0)
        self.service(clock.ticks_ms())

    def update(self, mask, now):
        """Set the alarming conditions (called when the interlock mask changes)."""
        pr = C.highest_priority(mask)
        if pr > self.priority or (mask & ~self.mask and pr >= self.priority):
            self._t0 = now  # a new condition restarts the burst
            if self._paused_until is not None and pr > self._paused_priority():
                self._paused_until = None
        self.mask = mask
        self.priority = pr

    def _paused_priority(self):
        return self._pause_pr

    def pause_audio(self, now):
        """Operator audio pause; returns the event dict to log."""
        self._paused_until = self._clock.add(now, AUDIO_PAUSE_MS)
        self._pause_pr = self.priority
        return {
            "event": "audio_pause",
            "priority": C.PRIORITY_NAMES[self.priority],
            "ms": AUDIO_PAUSE_MS,
        }

    @property
    def audio_paused(self):
        return self._paused_until is not None

    def service(self, now):
        """Drive buzzer and LEDs for ``now`` (integer-only)."""
        pr = self.priority
        if self._paused_until is not None and self._clock.diff(now, self._paused_until) >= 0:
            self._paused_until = None
        t = self._clock.diff(now, self._t0)
        sound = False
        if pr and self._paused_until is None:
            starts, length, period, _ = _PATTERN[pr]
            ph = t % period
            i = 0
            n = len(starts)
            while i < n:
                s = starts[i]
                if s <= ph < s + length:
                    sound = True
                    break
                i += 1
        self._apply_tone(sound, pr)
        # LEDs: the alarm colour steady or flashing; the power LED when quiet.
        lit = 0
        if pr:
            fl = _FLASH_MS[pr]
            lit = 1 if fl == 0 or (t % fl) < (fl >> 1) else 0
        if self._yellow is not None and pr and pr < C.HIGH:
            self._set(self._yellow, 1, lit)
            self._set(self._alarm, 0, 0)
        else:
            self._set(self._yellow, 1, 0)
            self._set(self._alarm, 0, lit)
        self._set(self._power, 2, 0 if pr else 1)
        return sound

    def _apply_tone(self, on, pr):
        b = self._buzzer
        if b is None:
            return
        want = _PATTERN[pr][3] if on else 0
        if want == self._tone:
            return
        self._tone = want
        if want:
            b.freq(want)
            b.duty_u16(_DUTY_ON)
        else:
            b.duty_u16(0)

    def _set(self, pin, slot, v):
        if pin is None or self._led_state[slot] == v:
            return
        self._led_state[slot] = v
        pin.value(v)
