"""Host side of the authenticated command link (``cryo.link.auth``).

``Credentials.key(challenge)`` turns the device's challenge into the HMAC
key of the requested role: for a PIN role the verifier
(``cryo.storage.roles.verifier``) of the PIN the user types (``--pin``,
``$CRYO_PIN`` or a prompt; asked once per command), for the service role
the per-device key derived from the manufacturer's master secret
(``host_tools.keys``). ``signed_frame`` builds the frame with the device's
own format (``cryo.link.auth.sign_payload``). ``host_tools.device.link.Link``
calls both when a provisioned device answers ``E_AUTH`` (required): the
``cryo`` commands need no change.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from binascii import unhexlify

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.errors import AccessDenied, InvalidInput

# isort: split
from cryo.link import auth as wire
from cryo.link import framing
from cryo.link import messages as msg
from cryo.storage import roles as role_store

ENV_PIN = "CRYO_PIN"


class Credentials:
    """Where the keys of each role come from, for one `cryo` command."""

    def __init__(self, pins: dict | None = None, keys_dir: str | None = None, ask=True):
        self._pins = dict(pins or {})
        self._keys_dir = keys_dir
        self._ask = ask

    def pin(self, role: str) -> str:
        if role in self._pins:
            return self._pins[role]
        pin = os.environ.get(ENV_PIN)
        if pin is None:
            if not (self._ask and sys.stdin.isatty()):
                raise AccessDenied(
                    f"the device authenticates role {role}: pass its PIN (--pin or ${ENV_PIN})"
                )
            pin = getpass.getpass(f"PIN for {role}: ")
        self._pins[role] = pin
        return pin

    def key(self, challenge: dict) -> bytes:
        role = challenge.get("role")
        if role == wire.SERVICE_ROLE:
            from host_tools import keys

            return wire.service_key(keys.load_master(self._keys_dir), challenge["device"])
        try:
            salt = unhexlify(challenge["salt"])
            rounds = int(challenge["iter"])
        except (KeyError, ValueError, TypeError):
            raise InvalidInput(f"device challenge for {role} lacks a valid salt/iter") from None
        return role_store.verifier(salt, self.pin(role), rounds)


def signed_frame(obj: dict, key: bytes, nonce_hex: str) -> bytes:
    """The request ``obj`` as a frame carrying its auth field (last)."""
    obj = dict(obj)
    obj["v"] = msg.VERSION
    payload = json.dumps(obj, separators=(",", ":")).encode()
    signed = wire.sign_payload(payload, key, unhexlify(nonce_hex))
    return signed + (b"*%08x\n" % framing.crc32(signed))


def audit_keying(device: str | None = None):
    """A ``cryo.storage.audit.Keying`` deriving the audit key from the
    manufacturer's master secret (``host_tools.keys``), or None when this
    host does not hold it (MACs then unchecked, the chain still checked)."""
    from cryo.storage.audit import Keying
    from host_tools import keys
    from host_tools.errors import CryoError

    try:
        master = keys.load_master()
    except CryoError:
        return None
    return Keying(lambda dev: wire.audit_key(master, dev), device)
