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


class AuthFailed(Exception):
    """Authentication missing or wrong (``E_AUTH``).

    ``required`` is True when the command simply carried no ``auth`` field
    (the host should ask for a challenge and send it again); nothing was
    guessed, so it does not count as a failed attempt.
    """

    def __init__(self, msg, required=False):
        super().__init__(msg)
        self.required = required


class Locked(Exception):
    """Too many failed authentications: refused without evaluation (``E_LOCKED``)."""

    def __init__(self, msg, retry_s, fails):
        super().__init__(msg)
        self.retry_s = retry_s
        self.fails = fails
