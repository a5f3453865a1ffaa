"""The supply-pressure transducer on the board's ADC pin.

A ratiometric transducer: the code is ``zero_fraction`` of full scale at
0 kPa and rises by ``span_fraction`` of full scale up to the board's
``full_scale_kpa`` (the ``pressure_adc`` entry of board.json), clipped
there. The code is computed once per plant step, so a read is an
allocation-free int; ``offline`` plays a lost sensor (the ADC reads 0).
"""


class PressureTransducer:
    def __init__(self, board):
        adc = board.get("pressure_adc", {})
        self.pin = adc.get("pin")
        self._fs = float(adc.get("full_scale_kpa", 400.0))
        self._zero = float(adc.get("zero_fraction", 0.1))
        self._span = float(adc.get("span_fraction", 0.8))
        self.offline = False
        self._code = 0

    def update(self, plant):
        """Follow the plant's supply pressure (at each plant step)."""
        p = plant.supply_pressure_kpa / self._fs
        if p > 1.0:
            p = 1.0
        self._code = int(65535 * (self._zero + self._span * p))

    def read_u16(self):
        return 0 if self.offline else self._code
