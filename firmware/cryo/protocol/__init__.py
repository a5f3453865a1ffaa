"""Treatment protocol: phases, parameters with hard clinical limits, sequencer."""
