"""The errors of the command channel, one class per kind of answer.

Errors the device reports become CryoError subclasses carrying the code:
``E_DENIED``/``E_AUTH``/``E_LOCKED`` -> :class:`LinkDenied` (exit 4),
``E_INVALID``/``E_ARGS`` -> :class:`LinkInvalid` (exit 5), ``E_VERSION`` ->
:class:`LinkMismatch` (exit 6), everything else and timeouts ->
:class:`LinkError` (exit 3).
"""

from __future__ import annotations

from host_tools import fwimport  # noqa: F401  (firmware/ importable, micropython shim)
from host_tools.errors import AccessDenied, DeviceError, InvalidInput, Mismatch

# isort: split
from cryo.link import messages as msg


class LinkError(DeviceError):
    """The device refused or did not answer; ``code`` is the E_* code or None."""

    def __init__(self, message, code=None, reply=None):
        super().__init__(message)
        self.code = code
        self.reply = reply or {}

    @property
    def treatment_running(self):
        return self.code == msg.E_STATE and "treatment" in str(self).lower()


class LinkDenied(AccessDenied):
    def __init__(self, message, code=msg.E_DENIED, reply=None):
        super().__init__(message)
        self.code = code
        self.reply = reply or {}


class LinkInvalid(InvalidInput):
    def __init__(self, message, code=msg.E_INVALID, reply=None):
        super().__init__(message)
        self.code = code
        self.reply = reply or {}


class LinkMismatch(Mismatch):
    def __init__(self, message, code=msg.E_VERSION, reply=None):
        super().__init__(message)
        self.code = code
        self.reply = reply or {}


_ERROR_CLASS = {
    msg.E_DENIED: LinkDenied,
    msg.E_INVALID: LinkInvalid,
    msg.E_ARGS: LinkInvalid,
    msg.E_VERSION: LinkMismatch,
    msg.E_AUTH: LinkDenied,
    msg.E_LOCKED: LinkDenied,
}


def error_for(reply: dict):
    """The exception a failed reply maps to."""
    code = reply.get("err")
    cls = _ERROR_CLASS.get(code, LinkError)
    return cls("device: %s (%s)" % (reply.get("msg", "error"), code), code, reply)
