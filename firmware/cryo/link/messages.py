"""Command-channel protocol: the one definition of every message.

Imported by the firmware (``cryo.link.channel``) and by the host client
(``host_tools/device/link.py``), so both sides agree on names, fields and error
codes by construction. Runs on MicroPython and CPython: plain dicts and
tuples only. Role names and levels come from the configuration schema.

A frame is one line of ASCII JSON followed by ``*`` and the CRC-32 of the
JSON bytes as 8 lower-case hex digits::

    {"v":1,"id":7,"cmd":"get","name":"pid.kp"}*5c1d0a9e\\n

Every frame carries the protocol version ``v``. Requests carry ``id`` (an
int the host chooses, echoed in the reply) and ``cmd``. Replies carry ``ok``
and either the result fields or ``err`` (a code below) and ``msg`` (one line
naming what was wrong and what is allowed). Telemetry frames carry ``tel``
(a sequence number) instead of ``id``.
"""

from cryo.storage.schema import ROLE_NAMES
from cryo.storage.schema import ROLES as _LEVELS

VERSION = 1  # protocol version, bumped on any incompatible change

MAX_LINE = 512  # bytes per request frame including "*crc" (newline excluded)
MAX_REPLY = 2048  # bytes per reply/telemetry frame (the device's output ring)
CRC_SEP = 0x2A  # "*"
NEWLINE = 0x0A

# Role names, lowest to highest privilege: the configuration schema's levels
# (it names the role each field needs; a higher role may do what a lower one may).
ROLES = tuple(ROLE_NAMES[lvl] for lvl in sorted(ROLE_NAMES))

# Telemetry rate bounds: the monitor needs >= 5 Hz; above 50 Hz the frames
# (~350 B) would fill a 115200-baud UART (11.5 kB/s) on their own.
TEL_MIN_HZ = 0.2
TEL_MAX_HZ = 50

# Error codes: (code, meaning). The host maps them to exit codes.
E_FRAME = "E_FRAME"  # line is not JSON*crc8
E_CRC = "E_CRC"  # checksum mismatch
E_TOO_LONG = "E_TOO_LONG"  # line longer than MAX_LINE
E_JSON = "E_JSON"  # payload is not a JSON object
E_VERSION = "E_VERSION"  # "v" missing or not VERSION
E_UNKNOWN = "E_UNKNOWN"  # unknown command
E_ARGS = "E_ARGS"  # missing / wrongly typed / unexpected field
E_INVALID = "E_INVALID"  # value rejected by the configuration schema
E_DENIED = "E_DENIED"  # role too low for this action
E_STATE = "E_STATE"  # not allowed in the controller's current state
E_UNSUPPORTED = "E_UNSUPPORTED"  # the controller does not offer this
E_INTERNAL = "E_INTERNAL"  # unexpected exception in a handler (caught)
E_AUTH = "E_AUTH"  # authentication missing or wrong (provisioned device)
E_LOCKED = "E_LOCKED"  # too many failed authentications: wait retry_s

ERRORS = (
    E_FRAME,
    E_CRC,
    E_TOO_LONG,
    E_JSON,
    E_VERSION,
    E_UNKNOWN,
    E_ARGS,
    E_INVALID,
    E_DENIED,
    E_STATE,
    E_UNSUPPORTED,
    E_INTERNAL,
    E_AUTH,
    E_LOCKED,
)

# Field type tags used in COMMANDS.
T_INT = "int"
T_NUM = "num"  # int or float, finite
T_STR = "str"
T_ANY = "any"  # a JSON scalar (config values: int, float, bool, str)
T_ROLE = "role"
T_BOOL = "bool"

# The authentication field (cryo.link.auth): HMAC hex, last in the JSON text.
AUTH = "auth"
_A = (AUTH, T_STR)

# A read session (cryo.link.auth): ``challenge`` with ``"session": true``
# opens it; each sequenced command carries ``"seq": k`` (1, 2, 3, ...),
# covered by its MAC. Only the read-only log commands may run in one.
SESSION = "session"
SEQ = "seq"
SESSION_COMMANDS = ("list", "read")
_S = (SEQ, T_INT)

# Commands: name -> (required fields, optional fields), each a tuple of
# (field, type). "v", "id" and "cmd" are implicit. Anything else is E_ARGS.
COMMANDS = {
    "hello": ((), ()),
    "status": ((), ()),
    "telemetry": ((), (("rate_hz", T_NUM),)),  # rate 0 = off
    "get": ((("name", T_STR),), ()),
    "set": ((("name", T_STR), ("value", T_ANY), ("role", T_ROLE)), (_A,)),
    "save": ((("role", T_ROLE),), (_A,)),
    "autotune": (
        (("action", T_STR),),
        (
            ("role", T_ROLE),
            ("setpoint_c", T_NUM),
            ("amplitude", T_NUM),
            ("hysteresis_c", T_NUM),
            _A,
        ),
    ),
    "step": (
        (("action", T_STR),),
        (("role", T_ROLE), ("demand", T_NUM), ("duration_s", T_NUM), _A),
    ),
    "ack": ((("role", T_ROLE),), (_A,)),
    "service": ((("role", T_ROLE),), (("unlock_s", T_INT), _A)),
    "reset": ((("role", T_ROLE),), (_A,)),
    "stats": ((), ()),
    # a nonce for one authenticated command, or for a read session
    "challenge": ((("role", T_ROLE),), ((SESSION, T_BOOL),)),
    # the log pull's read path (cryo.link.files)
    "list": ((("path", T_STR), ("role", T_ROLE)), (("after", T_STR), _S, _A)),
    "read": ((("path", T_STR), ("offset", T_INT), ("role", T_ROLE)), (("n", T_INT), _S, _A)),
    "pulled": ((("upto", T_INT), ("role", T_ROLE)), (_A,)),
}
FILE_COMMANDS = ("list", "read", "pulled")

# A provisioned (locked) device opens its REPL only to the service role, for
# unlock_s seconds (then it resets; any reset ends the unlock).
UNLOCK_ROLE = "service"
UNLOCK_S = (10, 1800, 14400)  # min, default, max

# Actions accepted by "autotune" and "step".
RUN_ACTIONS = ("start", "stop", "status")

# Telemetry / status fields (all optional except t_ms and phase; numbers are
# rounded, non-finite values sent as null).
TELEMETRY_FIELDS = (
    ("t_ms", "controller tick time, ms (wraps)"),
    ("phase", "treatment phase name"),
    ("setpoint_c", "active setpoint, degC"),
    ("temps", "dict channel -> degC (tissue, tissue2, aux, tissue3: the fitted ones)"),
    ("cj_c", "cold-junction temperature, degC"),
    ("demand", "PID demand 0..1 (1 = full cooling)"),
    ("valve", "valve open now (bool)"),
    ("p", "PID proportional term"),
    ("i", "PID integral term"),
    ("d", "PID derivative term"),
    ("faults", "list of active fault names"),
    ("alarms", "list of active alarm names"),
    ("mode", "auto / manual / autotune / step / service"),
    ("overruns", "tick overrun counter"),
)

# Role each command needs (the role field is asserted by the host; "set"
# uses the role the configuration schema gives the field).
ACTION_ROLE = {
    "save": "engineer",
    "autotune": "engineer",  # start/stop; "status" needs no role
    "step": "engineer",
    "ack": "operator",
    "service": "engineer",  # the controller may require more
    "reset": "engineer",  # outside a treatment only (the controller checks)
    # logs hold patient data: read by engineer or service only, authenticated
    "list": "engineer",
    "read": "engineer",
    "pulled": "engineer",
}
# The roles that may open a read session: those that may read the logs.
SESSION_ROLE = ACTION_ROLE["read"]


def role_allows(role, needed):
    """True if ``role`` is at least ``needed`` in ROLES order."""
    if role not in ROLES or needed not in ROLES:
        return False
    return _LEVELS[role] >= _LEVELS[needed]


def needs_auth(cmd, args):
    """True for the commands a provisioned device authenticates: every one
    that changes state (``set`` and ``ACTION_ROLE``) and the log reads,
    except the read-only ``status`` action of autotune/step."""
    if cmd != "set" and cmd not in ACTION_ROLE:
        return False
    return args.get("action") != "status"
