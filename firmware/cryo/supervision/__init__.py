"""Per-channel sensor supervision and redundancy.

``channel.Channel`` turns a driver's samples into the supervised reading
``(temperature_c, cold_junction_c, status)``; ``redundancy.Redundancy``
combines two tissue channels. Status codes are public constants in
:mod:`cryo.supervision.channel`.
"""
