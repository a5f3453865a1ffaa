"""Exceptions a controller raises to give the host a precise error code.

The channel maps: ``ValueError`` -> ``E_INVALID``, :class:`Denied` ->
``E_DENIED``, :class:`NotNow` -> ``E_STATE``; any other exception ->
``E_INTERNAL`` (counted, never propagated into the control loop). The
message is sent to the host verbatim, so it must name what was wrong and
what is allowed.
"""


class Denied(Exception):
    """The caller's role may not do this."""


class NotNow(Exception):
    """Not allowed in the controller's current state (e.g. service while freezing)."""
