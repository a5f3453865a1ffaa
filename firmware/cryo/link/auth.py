"""Challenge-response authentication of state-changing link commands.

The wire format is defined here once; the host (``host_tools/auth.py``)
builds its frames with :func:`sign_payload`, the device checks them with
:meth:`Authenticator.verify`.

1. The host asks ``{"cmd":"challenge","role":R}``; the device answers a
   fresh random ``nonce`` (16 bytes, hex), its ``device`` id and, for a
   PIN role, the ``salt`` and ``iter`` of that role's stored verifier.
2. The host sends the command with ``"auth"`` as the *last* field of the
   JSON text: ``HMAC-SHA256(key, nonce || text)`` in hex, where ``text`` is
   the frame's JSON without that field (``{...}``). The MAC covers the
   exact bytes the device parses (id, command, role, every value), so no
   canonical re-encoding is needed on either side.
3. The device consumes the nonce at the first attempt, whatever its
   outcome (a captured frame replayed finds no nonce), and refuses a nonce
   older than ``NONCE_MS``.

A read session (``messages.SESSION``) lets one challenge authenticate a
run of the read-only log commands (``messages.SESSION_COMMANDS``), so a
pull costs one round trip per KiB instead of two. The challenge asks
``"session": true`` (a role that may read the logs); each command then
carries ``"seq": k``, k = 1, 2, 3, ..., and its MAC as in step 2 over the
text holding that seq: the device accepts it when the MAC is right and k
is exactly one more than the last accepted. A replayed or reordered frame
carries a used seq, so it is refused like a wrong MAC. The session ends
at the first failed check (MAC, seq, role), at any authenticated command
that is not a sequenced read (``pulled``, ``set``, ...: those need their
own single-use challenge), at a new challenge, after ``NONCE_MS`` without
use, and at a reset (RAM only).

Keys: operator and engineer use the verifier ``cryo.storage.roles`` keeps
for their PIN (salted, iterated SHA-256; the device never needs the PIN,
the host derives the verifier from what the user types). The service key
is per device, :func:`service_key` of the manufacturer's master secret and
the device id, written at provisioning into ``paths.AUTH_PATH``. A device
without that file is a development device: nothing is enforced (the
channel is built without an Authenticator).

Failed attempts back off exponentially across resets
(:mod:`cryo.link.backoff`). Runs in the channel's poll, never in the
control tick.
"""

import os
from binascii import hexlify, unhexlify

from micropython import const

from cryo.app.hmac256 import equal, hmac_sha256, new
from cryo.link import messages as m
from cryo.link.backoff import Backoff
from cryo.link.errors import AuthFailed, Denied, Locked
from cryo.storage import roles as role_store

MAGIC = "cryo-auth 1"
NONCE_BYTES = const(16)
NONCE_MS = const(30000)  # a challenge must be answered within 30 s
MAC_HEX = const(64)
FIELD_HEAD = b',"auth":"'  # the auth field, last in the JSON text
_TAIL = const(2)  # '"}' after the hex digits
SUFFIX_LEN = const(75)  # len(FIELD_HEAD) + MAC_HEX + _TAIL
SERVICE_ROLE = "service"
_SERVICE_LABEL = b"cryo-service-key-v1:"
_AUDIT_LABEL = b"cryo-audit-key-v1:"
_SINGLE = const(-1)  # the open nonce serves one command (no read session)


def service_key(master, device_id):
    """The per-device service key: HMAC-SHA256 of the id under the master secret."""
    return hmac_sha256(master, _SERVICE_LABEL + device_id.encode())


def audit_key(master, device_id):
    """The per-device audit-trail key (``cryo.storage.audit``), derived like the service key."""
    return hmac_sha256(master, _AUDIT_LABEL + device_id.encode())


def mac_hex(key, nonce, text):
    """Hex (bytes) of HMAC-SHA256(key, nonce || text)."""
    h = new(key, nonce)
    h.update(text)
    return hexlify(h.digest())


def sign_payload(payload, key, nonce):
    """The JSON text ``payload`` (bytes ``{...}``) with its auth field appended."""
    return payload[:-1] + FIELD_HEAD + mac_hex(key, nonce, payload) + b'"}'


def provisioning_text(device_id, skey, akey):
    """The ``paths.AUTH_PATH`` file: device id, service key, audit key."""
    return "%s\ndevice %s\nservice %s\naudit %s\n" % (
        MAGIC,
        device_id,
        hexlify(skey).decode(),
        hexlify(akey).decode(),
    )


def parse_provisioning(text):
    """``(device_id, service key, audit key)`` from the file's text; ValueError naming the problem."""
    lines = text.split("\n")
    if lines[0].strip() != MAGIC:
        raise ValueError("%s: first line must be %r" % ("auth file", MAGIC))
    got = {}
    for line in lines[1:]:
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("device", "service", "audit"):
            got[parts[0]] = parts[1]
        elif parts:
            raise ValueError("auth file: line %r not understood" % line)
    for name in ("device", "service", "audit"):
        if name not in got:
            raise ValueError("auth file: needs a %r line" % name)
        if name != "device":
            got[name] = unhexlify(got[name])
            if len(got[name]) != 32:
                raise ValueError("auth file: %s key must be 32 bytes (64 hex digits)" % name)
    return got["device"], got["service"], got["audit"]


def load_audit_key(auth_path):
    """The audit key of a provisioned device (None: development device or unreadable file)."""
    try:
        with open(auth_path, "rb") as f:
            return parse_provisioning(f.read().decode())[2]
    except (OSError, ValueError, UnicodeError):
        return None


def load(clock, auth_path, roles_path, fails_path):
    """The Authenticator of a provisioned device, or None (development device).

    A provisioning file that exists but cannot be read still enforces
    authentication (deny by default): the PIN roles keep working, the
    service role has no key until the device is provisioned again.
    """
    try:
        with open(auth_path, "rb") as f:
            text = f.read().decode()
    except OSError:
        return None
    try:
        dev, skey, _ = parse_provisioning(text)
        problem = None
    except (ValueError, UnicodeError) as e:
        dev, skey, problem = "unknown", None, str(e)
    a = Authenticator(dev, skey, roles_path, Backoff(fails_path, clock), clock)
    a.problem = problem
    return a


class Authenticator:
    def __init__(self, device_id, skey, roles_path, backoff, clock):
        self.device_id = device_id
        self._skey = skey
        self._roles = roles_path
        self.backoff = backoff
        self._clock = clock
        self._nonce = None
        self._issued = 0  # ticks of the challenge, or of the session's last use
        self._last = _SINGLE  # a read session: the last seq accepted (0: none yet)
        self._session_role = None
        self.problem = None
        self.accepted = 0
        self.refused = 0

    def _key(self, role):
        if role == SERVICE_ROLE:
            return self._skey
        e = role_store.entry(self._roles, role)
        return None if e is None else e[2]

    def challenge(self, role, session=False):
        """A fresh nonce (replacing any open one, session or not) and what
        the host needs to derive its key; ``session``: a read session."""
        self._nonce = None
        if session and not m.role_allows(role, m.SESSION_ROLE):
            raise Denied(
                "a read session needs role %s or higher (got %s): it serves the log reads"
                % (m.SESSION_ROLE, role)
            )
        wait = self.backoff.wait_ms()
        if wait:
            raise self._locked(wait)
        out = {"device": self.device_id, "role": role}
        if role != SERVICE_ROLE:
            e = role_store.entry(self._roles, role)
            if e is None:
                raise AuthFailed(
                    "no PIN is set for role %s on this device (a service engineer sets it)" % role
                )
            out["iter"] = e[0]
            out["salt"] = hexlify(e[1]).decode()
        elif self._skey is None:
            raise AuthFailed("this device has no service key: provision it again (cryo keys)")
        self._nonce = os.urandom(NONCE_BYTES)
        self._issued = self._clock.ticks_ms()
        self._last = 0 if session else _SINGLE
        self._session_role = role
        out["nonce"] = hexlify(self._nonce).decode()
        out["ttl_s"] = NONCE_MS // 1000
        return out

    def _locked(self, wait):
        s = (wait + 999) // 1000
        fails = self.backoff.fails
        return Locked(
            "authentication locked for %d s after %d failed attempts (every attempt "
            "before then is refused and lengthens the wait)" % (s, fails),
            s,
            fails,
        )

    def verify(self, line, plen, cmd, role, seq=None):
        """Check the auth field of the frame ``line[:plen]`` for ``role``
        (``seq``: its place in a read session, None outside one).

        Raises AuthFailed / Locked; returns None when the command may run.
        """
        nonce = self._nonce
        self._nonce = None  # single use, whatever happens next (a session read puts it back)
        last = self._last
        start = plen - SUFFIX_LEN
        mv = memoryview(line)
        text = bytes(mv[0:plen])
        if b'"auth":' not in text:
            raise AuthFailed(
                "%s needs authentication: ask 'challenge' for a nonce and send "
                "the command with its auth field" % cmd,
                True,
            )
        if start < 1 or text[start : start + 9] != FIELD_HEAD or text[plen - _TAIL :] != b'"}':
            raise AuthFailed(
                "%s: the auth field must be the last field, %d hex digits" % (cmd, MAC_HEX)
            )
        if self.backoff.wait_ms():
            self.backoff.count()
            self.backoff.failed()
            self.refused += 1
            raise self._locked(self.backoff.wait_ms())
        # A read riding on a session whose first read proved the key: the
        # count stored by that success is 0 and stays so on success, and a
        # failure (which ends the session) is counted at once below. Counting
        # it on flash before the MAC as well would cost two littlefs writes
        # per KiB pulled for no guess it could stop.
        riding = nonce is not None and seq is not None and last > 0
        if not riding:
            self.backoff.count()  # on flash before the MAC is evaluated
        why = None
        key = self._key(role)
        if nonce is None:
            why = "no open challenge (used, replaced or never issued): ask for a new one"
        elif self._clock.diff(self._clock.ticks_ms(), self._issued) > NONCE_MS:
            why = "the challenge expired (answer within %d s)" % (NONCE_MS // 1000)
        elif key is None:
            why = "no credential for role %s on this device" % role
        elif last != _SINGLE or seq is not None:
            why = self._session_problem(cmd, role, seq, last)
        if why is None:
            h = new(key, nonce)
            h.update(mv[0:start])
            h.update(b"}")
            want = hexlify(h.digest())
            if not equal(want, text[start + 9 : start + 9 + MAC_HEX]):
                why = "wrong credential for role %s" % role
        if why is not None:
            if riding:
                self.backoff.count()
            self.backoff.failed()
            self.refused += 1
            raise AuthFailed("%s: authentication failed: %s" % (cmd, why))
        if not riding:
            self.backoff.succeeded()
        self.accepted += 1
        if seq is not None:  # the session goes on from this read, idle time from now
            self._nonce = nonce
            self._last = seq
            self._issued = self._clock.ticks_ms()

    def _session_problem(self, cmd, role, seq, last):
        """Why a read session cannot serve this command (None: it can, MAC aside)."""
        if last == _SINGLE:
            return "'%s' belongs to a read session: ask 'challenge' with '%s' true" % (
                m.SEQ,
                m.SESSION,
            )
        if seq is None or cmd not in m.SESSION_COMMANDS:
            return (
                "the open challenge is a read session: it serves only %s, each with '%s'; "
                "%s needs its own challenge" % (", ".join(m.SESSION_COMMANDS), m.SEQ, cmd)
            )
        if role != self._session_role:
            return "the read session was opened for role %s, not %s" % (self._session_role, role)
        if seq != last + 1:
            return "%s %d out of order: the read session expects %d" % (m.SEQ, seq, last + 1)
        return None
