"""Role levels and the refusals the link maps to its error codes.

Roles are asserted by the host (docs/safety.md, "Where roles are
enforced"); the controller compares levels (``cryo.storage.schema.ROLES``)
and refuses with ``Denied`` (role too low) or ``NotNow`` (not in this
state) from ``cryo.link.errors``.
"""

from cryo.link.errors import Denied, NotNow
from cryo.link.messages import ROLES
from cryo.storage.schema import ROLES as _LEVELS


def role_level(role):
    """1 operator, 2 engineer, 3 service; ValueError for an unknown role."""
    if role in ROLES:
        return _LEVELS[role]
    raise ValueError("unknown role %r; allowed: %s" % (role, ", ".join(ROLES)))


def denied(msg):
    return Denied(msg)


def not_now(msg):
    return NotNow(msg)
