"""Alarm signals in the style of IEC 60601-1-8 (clinical-safety.md §3.3).

Priorities map to auditory bursts and LED colour/flash rate:

=========  ======================================  =======================
priority   buzzer (pulse fundamental 150-1000 Hz)   LED
=========  ======================================  =======================
HIGH       10-pulse burst (3+2 / 3+2), every 5 s    red, flashing 2 Hz 50 %
MEDIUM     3-pulse burst, every 8 s                 yellow, flashing 0.5 Hz
LOW        2-pulse burst, every 20 s                yellow, steady
=========  ======================================  =======================

The highest active priority is signalled. Audio pause (operator) silences
the buzzer for ``AUDIO_PAUSE_MS`` (LEDs keep flashing) and is returned to the
caller to be logged (IEC 60601-1-8 6.12: inactivation states are logged).
A new alarm condition of a higher priority ends the pause.

``service(now)`` is integer-only: it recomputes the buzzer and LED levels
from the time since the alarm started and writes the outputs only on a
change. ``buzzer`` follows machine.PWM (``freq``, ``duty_u16``); ``leds`` is
a dict name→Pin ("red", "yellow", "green"; missing ones are skipped).
"""

from micropython import const

from cryo.interlock import conditions as C

AUDIO_PAUSE_MS = const(120000)
_DUTY_ON = const(32768)

# Burst patterns: pulse start offsets (ms) within the burst, pulse length,
# repeat period, tone (Hz). HIGH: 3 + 2 pulses, pause, 3 + 2 pulses.
_HIGH_STARTS = (0, 200, 400, 1000, 1200, 2000, 2200, 2400, 3000, 3200)
_MED_STARTS = (0, 250, 500)
_LOW_STARTS = (0, 250)
_PATTERN = (
    None,
    (_LOW_STARTS, 150, 20000, 440),
    (_MED_STARTS, 175, 8000, 523),
    (_HIGH_STARTS, 150, 5000, 659),
)
_LED_OF = (None, "yellow", "yellow", "red")
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
        self.pauses = 0
        self._tone = -1
        self._led_state = {}
        self._apply_tone(False, 0)
        for name in self._leds:
            self._set_led(name, 0)

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
        self.pauses += 1
        return {"event": "audio_pause", "priority": C.PRIORITY_NAMES[self.priority], "ms": AUDIO_PAUSE_MS}

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
        # LEDs: the alarm colour steady or flashing; green when quiet.
        red = 0
        yellow = 0
        if pr:
            fl = _FLASH_MS[pr]
            lit = 1 if fl == 0 or (t % fl) < (fl >> 1) else 0
            if _LED_OF[pr] == "red":
                red = lit
            else:
                yellow = lit
        self._set_led("red", red)
        self._set_led("yellow", yellow)
        self._set_led("green", 0 if pr else 1)
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

    def _set_led(self, name, v):
        pin = self._leds.get(name)
        if pin is None:
            return
        if self._led_state.get(name) != v:
            self._led_state[name] = v
            pin.value(v)
