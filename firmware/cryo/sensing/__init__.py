"""Thermocouple chip drivers (MAX31855, MAX31856).

Each driver reads its chip into preallocated buffers and decodes raw integer
codes and fault flags without allocating (the safety path), and converts to
°C on demand (floats: the control path). Fault bits share one namespace
(:mod:`cryo.sensing.faults`) so supervision treats both chips alike.
"""
