"""The controller's parts that are not a layer of their own; each owns its
state, ``cryo.controller.Controller`` builds them and calls their methods.

- ``settings``: the configuration in force, checked (``Settings``).
- ``inputs``: every signal the interlock watches and its limits in raw
  codes (``Inputs``).
- ``tick``: one control tick and the reactions to it (``Tick``).
- ``loop``: the asyncio schedule on hardware (``Loop``).
- ``journal``: treatment log session, audit, recent events (``Journal``).
- ``memory``: latches, dose and device events on flash (``SafetyMemory``).
- ``site``: the treatment site, frozen or thawed, same or new (``Site``).
- ``watchdog``: the hardware watchdog, armed before a valve may open.
- ``roles``: role levels and the link's refusals.
"""
