"""Per-channel sensor supervision.

``channel.Channel`` turns a driver's samples into the supervised reading
``(temperature_c, cold_junction_c, status)``. Status codes are public
constants in :mod:`cryo.supervision.channel`.
"""
