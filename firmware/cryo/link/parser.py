"""Request validation: a decoded frame becomes ``(id, cmd, args)`` or an error.

Every field is checked against ``messages.COMMANDS``: required fields present,
types exact (``bool`` is not a number, floats must be finite), no unknown
fields, strings bounded. Nothing is executed here, so whatever a fuzzer
sends, the worst outcome is a ``FrameError`` (turned into an error reply).
"""

from micropython import const

from cryo.link import messages as m
from cryo.link.framing import FrameError, decode

_MAX_STR = const(64)
_MAX_ID = const(0x3FFFFFFF)  # a small int on every port (no heap long int)
_INF = float("inf")


def _finite(x):
    return -_INF < x < _INF  # False for nan and +-inf


def check_type(field, value, kind):
    """Raise FrameError(E_ARGS) unless ``value`` is of type tag ``kind``."""
    t = type(value)
    ok = False
    if kind == m.T_INT:
        ok = t is int
    elif kind == m.T_NUM:
        ok = t is int or (t is float and _finite(value))
    elif kind == m.T_STR or kind == m.T_ROLE:
        ok = t is str and 0 < len(value) <= _MAX_STR
        if ok and kind == m.T_ROLE and value not in m.ROLES:
            raise FrameError(m.E_ARGS, "role %r unknown; allowed: %s" % (value, ", ".join(m.ROLES)))
    elif kind == m.T_BOOL:
        ok = t is bool
    elif kind == m.T_ANY:
        ok = t is int or t is bool or (t is float and _finite(value))
        ok = ok or (t is str and len(value) <= _MAX_STR)
    if not ok:
        raise FrameError(m.E_ARGS, "field %r must be %s" % (field, _KIND_TEXT.get(kind, kind)))


_KIND_TEXT = {
    m.T_INT: "an integer",
    m.T_NUM: "a finite number",
    m.T_STR: "a non-empty string of at most 64 characters",
    m.T_ROLE: "a role (%s)" % ", ".join(m.ROLES),
    m.T_ANY: "a finite number, boolean or short string",
    m.T_BOOL: "true or false",
}


def request_id(obj):
    """The request id if it is valid, else None (error replies echo it)."""
    rid = obj.get("id")
    if type(rid) is int and 0 <= rid <= _MAX_ID:
        return rid
    return None


def parse(line, n=None):
    """Decode and validate one request frame.

    Returns ``(rid, cmd, args)`` where args holds only declared fields.
    Raises FrameError; its ``rid`` attribute is the request id if known.
    """
    obj = decode(line, n)
    rid = request_id(obj)
    try:
        if rid is None:
            raise FrameError(m.E_ARGS, "field 'id' must be an integer 0..%d" % _MAX_ID)
        cmd = obj.get("cmd")
        spec = m.COMMANDS.get(cmd) if type(cmd) is str else None
        if spec is None:
            raise FrameError(
                m.E_UNKNOWN,
                "unknown command %r; allowed: %s" % (cmd, ", ".join(sorted(m.COMMANDS))),
            )
        required, optional = spec
        args = {}
        for field, kind in required:
            if field not in obj:
                raise FrameError(m.E_ARGS, "%s: missing field %r" % (cmd, field))
            check_type(field, obj[field], kind)
            args[field] = obj[field]
        for field, kind in optional:
            if field in obj:
                check_type(field, obj[field], kind)
                args[field] = obj[field]
        extra = len(obj) - 3 - len(args)  # v, id, cmd
        if extra:
            allowed = [f for f, _ in required] + [f for f, _ in optional]
            for key in obj:
                if key not in ("v", "id", "cmd") and key not in args:
                    raise FrameError(
                        m.E_ARGS,
                        "%s: unexpected field %r; allowed: %s"
                        % (cmd, key, ", ".join(allowed) or "none"),
                    )
        return rid, cmd, args
    except FrameError as e:
        e.rid = rid
        raise
