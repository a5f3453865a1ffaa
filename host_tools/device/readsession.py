"""A read session on a locked board: one challenge for a run of log reads.

``ReadSession(link, role).request(cmd, **fields)`` sends the read-only
log commands (``cryo.link.messages.SESSION_COMMANDS``) numbered ``seq`` 1,
2, 3, ... under one nonce, each signed as any authenticated command
(``cryo.link.auth``): one round trip per request instead of two.

The device ends a session at its first refusal, at any other
authenticated command or a new challenge, after ``ttl_s`` without use and
at a reset. A session this host knows has idled out is renewed before it
is used (a slow pull costs no failed attempt); one the device ended
anyway (``E_AUTH``) is renewed once and that request asked again, once.
Any other failure, a lost reply included (the host cannot know whether
the device took that ``seq``), ends this side's session: the next request
opens a new one.
"""

from __future__ import annotations

import time

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.device.link_errors import LinkDenied, LinkError, LinkInvalid, LinkMismatch
from host_tools.device.session import DEFAULT_TIMEOUT

# isort: split
from cryo.link import messages as msg

RENEW_MARGIN_S = 1.0  # renewed this long before the device's idle expiry


class ReadSession:
    def __init__(self, link, role: str, clock=time.monotonic):
        self.link = link
        self.role = role
        self._clock = clock  # seconds, for the idle expiry
        self.opened = 0  # challenges asked (one for a pull nothing interrupted)
        self._auth = None  # (key, nonce hex) while a session is open
        self._seq = 0
        self._ttl = 0.0
        self._used = 0.0

    def end(self):
        self._auth = None

    def _open(self, wait: float):
        ch = self.link.request("challenge", wait, role=self.role, **{msg.SESSION: True})
        self._auth = (self.link.credentials.key(ch), ch["nonce"])
        self._seq = 0
        self._ttl = float(ch["ttl_s"])
        self._used = self._clock()
        self.opened += 1

    def request(self, cmd: str, **fields) -> dict:
        if cmd not in msg.SESSION_COMMANDS:
            raise ValueError(
                f"{cmd} cannot run in a read session (only {', '.join(msg.SESSION_COMMANDS)})"
            )
        wait = max(self.link.timeout, DEFAULT_TIMEOUT)
        if self._auth is not None and self._clock() - self._used > self._ttl - RENEW_MARGIN_S:
            self._auth = None  # idle: the device has ended it, or is about to
        renewed = False
        while True:
            if self._auth is None:
                self._open(wait)
                renewed = True
            self._seq += 1
            fields[msg.SEQ] = self._seq
            try:
                reply = self.link.signed(cmd, self._auth, wait, role=self.role, **fields)
            except (LinkError, LinkDenied, LinkInvalid, LinkMismatch) as e:
                self._auth = None
                if e.code == msg.E_AUTH and not renewed:
                    continue  # the device ended the session: a new one, this request again
                raise
            self._used = self._clock()
            return reply
