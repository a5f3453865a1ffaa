"""Cryotherapy controller firmware (MicroPython).

Layers, in the order a control tick runs them:
sensing -> supervision -> control -> interlock -> actuation,
with storage and the host link beside them. Only ``cryo.board`` imports
``machine``; everything else receives hardware through constructors.
"""

VERSION = "0.1.0"
