"""Thermocouple chip drivers (MAX31855, MAX31856).

Each driver reads its chip into preallocated buffers and decodes raw integer
codes and fault flags without allocating (the safety path), and converts to
°C on demand (floats: the control path). Fault bits share one namespace
(:mod:`cryo.sensing.faults`) so supervision treats both chips alike.
"""

# The thermocouple channels a board may fit, by name; the index is the
# interlock's channel number (0 tissue, required; 1 redundant tissue; 2 the
# line/nozzle). Board definitions, the controller and the host use these.
CHANNELS = ("tissue", "tissue2", "aux")
