"""The controller's parts, one purpose per module; ``cryo.controller.Controller``
puts them together (the tick and the safety path stay in cryo/controller.py).

- ``roles``: role levels and the link's refusal exceptions.
- ``hardware``: drivers and codes from the board definition (thermocouple
  drivers, pressure kPa → ADC code, input active levels, calibrated limit
  codes, firmware identity).
- ``settings``: regulator/valve values (``EXTRAS``), calibrations, gain
  bands; ``get_param``/``set_param``/``save_config``.
- ``tuning``: the TUNE phase (relay autotune, open-loop step test).
- ``session``: the treatment log session, events, samples, audit, storage room.
- ``commands``: operator/host commands (start, begin, stop, ack, service
  mode) and ``status()``.
- ``loop``: ``run()`` — the asyncio loop with ``ticks_add`` deadlines, link
  polls and valve sub-ticks between ticks.

The mixins hold methods only; every attribute lives on the Controller
(built in ``Controller.__init__``), so a part can be read on its own.
"""
