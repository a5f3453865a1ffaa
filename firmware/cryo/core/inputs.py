"""Every signal the interlock watches, and its limits in the signals' own codes.

``Inputs(board, clock, interlock, params, calibrations, sensors=None)``
owns the thermocouple drivers (``board.sensor``), their supervision
channels (``cryo.supervision.Channel``), the supply-pressure ADC, the pin
levels that mean pressed/held/loop closed, and the last converted
temperatures. The tick calls it twice:

* ``read(now)`` — safety path: each driver is polled without blocking, a
  new sample is classified by its channel on raw codes (range, rate, stuck
  frame, cold junction) and handed to the interlock as raw code and fault
  bits (an implausible sample counts as a bad one: the interlock debounces
  and tracks staleness, the channel only classifies); one ADC read for the
  supply pressure. Returns the mask of channels with a new sample.
* ``convert(now, fresh)`` — control path: °C (calibrated) for the fresh
  samples in ``temps`` and the cold junction in ``cj_c``; a channel without
  a good sample for the interlock's stale time reads None.

``limits(params, setpoint_c)`` turns the °C / s / kPa limits into the
interlock's raw limit block at the present cold junction (the MAX31855's
codes move with it); ``resync(params, setpoint_c)`` redoes that at the idle
point once the cold junction moved ``CJ_RESYNC_C``. Limits are true
temperatures: with a calibration the codes are those of the *measured*
value that calibrates to the limit.
"""

from micropython import const

from cryo.board import CHANNELS
from cryo.interlock import block as B
from cryo.interlock import limits as LIM
from cryo.sensing.faults import FAULT_IMPLAUSIBLE
from cryo.supervision.channel import Channel

_ST_SUSPECT = const(2)  # cryo.supervision.channel: statuses above this are faults
_AUX = const(2)
_ROOM_C = 24.0  # cold junction assumed until the first reading


class CalibratedCodes:
    """A driver seen through its channel's calibration: ``code_for(true_c)``
    is the code of the reading that calibrates to ``true_c``
    (``Calibration.invert``). Control path only."""

    def __init__(self, drv, cal):
        self._drv = drv
        self._cal = cal

    def code_for(self, temp_c, cj_c=None, keep=False):
        return self._drv.code_for(self._cal.invert(temp_c), cj_c, keep)


class Inputs:
    def __init__(self, board, clock, interlock, params, calibrations, sensors=None):
        self._board = board
        self._clock = clock
        self._il = interlock
        if sensors is None:
            sensors = {}
            for name in CHANNELS:
                if name in board.cs:
                    sensors[name] = board.sensor(name)
        if "tissue" not in sensors:
            raise ValueError("the board has no 'tissue' thermocouple channel (required)")
        self.sensors = sensors
        drv = [sensors.get(n) for n in CHANNELS]
        self._drv = drv
        self._lim_drv = [
            CalibratedCodes(d, c) if (d is not None and c is not None) else d
            for d, c in zip(drv, calibrations)
        ]
        self._sup = [
            self._channel(i, params, calibrations[i]) if drv[i] is not None else None
            for i in range(B.NCH)
        ]
        self._adc = board.pressure_adc
        self._p_code = board.pressure_code if self._adc is not None else None
        self._levels = (
            board.active_level("footswitch"),
            board.active_level("handpiece"),
            board.active_level("estop"),
        )
        self.temps = [None] * B.NCH
        self.cj_c = None
        self._cj_limits = None
        fitted = 1
        if drv[1] is not None:
            fitted |= 1 << B.TISSUE2
        if drv[2] is not None:
            fitted |= 1 << B.AUX
        if drv[3] is not None:
            fitted |= 1 << B.TISSUE3
        interlock.fit(fitted, self._adc is not None)

    def _channel(self, i, p, cal):
        """Supervision of channel ``i``: it classifies every sample on its
        own (``debounce=1``, ``recover=1``) and its stale timer is left long,
        because debounce and staleness belong to the interlock (one place,
        one setting)."""
        return Channel(
            CHANNELS[i],
            self._drv[i],
            self._clock,
            debounce=1,
            recover=1,
            t_min_c=p["tc_min_c"],
            t_max_c=p["tc_max_c"],
            cj_min_c=p["cj_min_c"],
            cj_max_c=p["cj_max_c"],
            max_rate_c_s=p["max_rate_c_s"],
            rate_noise_c=p["rate_noise_c"],
            stuck_ms=int(p["stuck_s"] * 1000),
            stale_ms=60000,
            calibration=cal,
            expect_change=False,  # until a cooling phase (expect_change)
        )

    def fitted(self, ch):
        return self._drv[ch] is not None

    def read(self, now):
        """Raw codes into the interlock (safety path, allocation-free)."""
        il = self._il
        drv = self._drv
        sup = self._sup
        ch = 0
        fresh = 0
        while ch < B.NCH:
            sv = sup[ch]
            if sv is not None:
                n0 = sv.samples
                st = sv.update(now)
                if sv.samples != n0:
                    d = drv[ch]
                    f = d.faults
                    if f == 0 and st > _ST_SUSPECT:
                        f = FAULT_IMPLAUSIBLE
                    il.record(ch, d.tc_code, f, now)
                    fresh |= 1 << ch
            ch += 1
        if self._adc is not None:
            il.set_pressure(self._adc.read_u16())
        return fresh

    def convert(self, now, fresh):
        """°C for the channels in ``fresh`` (control path)."""
        il = self._il
        stale = il.lim[B.L_STALE_MS]
        ch = 0
        while ch < B.NCH:
            if fresh & (1 << ch):
                t, cj, _st = self._sup[ch].convert()  # None unless plausible
                self.temps[ch] = t
                if ch == 0 and cj is not None:
                    self.cj_c = cj
            elif self._clock.diff(now, il.good_t[ch]) > stale:
                self.temps[ch] = None
            ch += 1

    def expect_change(self, cooling):
        """A frame that does not change is a stuck converter only while the
        tissue is being cooled: a probe resting at room temperature may read
        the same code for minutes (0.25 degC steps on a MAX31855)."""
        for sv in self._sup:
            if sv is not None:
                sv.expect_change(cooling)

    def pedal(self):
        """The footswitch pressed (True when the board has none)."""
        pin = self._board.footswitch
        return pin is None or pin.value() == self._levels[0]

    def in_hand(self):
        """The handpiece out of its holder (True when the board has no holder switch)."""
        pin = self._board.handpiece
        return pin is None or pin.value() == self._levels[1]

    def limits(self, params, setpoint_c):
        """°C limits → the interlock's raw limit block at the cold junction
        in force (control path: allocates the block)."""
        cj = self.cj_c if self.cj_c is not None else _ROOM_C
        ld = self._lim_drv
        block = LIM.build(
            params, ld[0], ld[1], cj, setpoint_c, self._levels, self._p_code, ld[_AUX], ld[3]
        )
        self._il.load_limits(block)
        self._cj_limits = cj

    def resync(self, params, setpoint_c):
        """At the idle point: the limits again once the cold junction moved."""
        cj = self.cj_c
        if cj is None:
            return
        if self._cj_limits is None or abs(cj - self._cj_limits) >= LIM.CJ_RESYNC_C:
            self.limits(params, setpoint_c)
