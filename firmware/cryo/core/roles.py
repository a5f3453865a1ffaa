"""Role levels and the refusals the link maps to its error codes.

Roles are asserted by the host (docs/safety.md, "Where roles are
enforced"); the controller compares levels and refuses with ``Denied``
(role too low) or ``NotNow`` (not in this state) from ``cryo.link.errors``
— plain PermissionError/RuntimeError on a build without the link.
"""

ROLES = ("operator", "engineer", "service")


def role_level(role):
    """1 operator, 2 engineer, 3 service; ValueError for an unknown role."""
    i = 0
    while i < len(ROLES):
        if ROLES[i] == role:
            return i + 1
        i += 1
    raise ValueError("unknown role %r; allowed: %s" % (role, ", ".join(ROLES)))


def denied(msg):
    try:
        from cryo.link.errors import Denied

        return Denied(msg)
    except ImportError:
        return PermissionError(msg)


def not_now(msg):
    try:
        from cryo.link.errors import NotNow

        return NotNow(msg)
    except ImportError:
        return RuntimeError(msg)
