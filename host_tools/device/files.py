"""Where a log pull reads a board's files: the raw REPL or the command link.

``host_tools.archive.pull`` asks a source for five things: the board's
name (``serial``), the log folder's listing (``ls``), the size and tail
hash of each file it holds (``chk``), the bytes from an offset
(``fetch``) and the "pulled up to" mark (``mark_pulled``).

* :class:`ReplFiles`: an open board (development, or during a service
  unlock) through the raw REPL and the ``_cry_*`` helpers
  (``host_tools.device.snippets``, ``host_tools.device.transfer``).
* :class:`LinkFiles`: a locked board through its running controller's
  read-only commands (``cryo.link.files``), every frame CRC-checked by the
  link and, on a provisioned board, authenticated for the engineer (PIN)
  or service (key) role: the reads in one read session
  (``host_tools.device.readsession``), the ``pulled`` mark with its own
  challenge. The controller keeps running; no REPL opens.

:func:`pull_source` picks one for ``cryo logs pull``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.errors import AccessDenied, DeviceError

# isort: split
from cryo.link import files as wire
from cryo.link import messages as msg
from cryo.storage.segments import PULLED

SMALL_MAX = 16384  # state files hashed whole (larger: fetched whenever listed)
ATTEMPTS = 6


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ReplFiles:
    """A board at its raw REPL (``host_tools.device.connect.Session``)."""

    def __init__(self, session):
        from host_tools.device.snippets import PULL_HELPERS

        self.session = session
        self.port = session.port
        session.exec(PULL_HELPERS)

    @property
    def retries(self):
        return self.session.retries

    def serial(self):
        from host_tools.device.probe import device_serial, probe

        return device_serial(probe(self.session))

    def ls(self, root, since):
        return self.session.query(f"_cry_ls({root!r}, {since or ''!r})")

    def chk(self, grow, small):
        return self.session.query(f"_cry_chk({grow!r}, {small!r})")

    def fetch(self, path, offset, sink, progress=None):
        from host_tools.device import transfer

        return transfer.fetch(self.session, path, offset, sink, progress)

    def mark_pulled(self, root, data: bytes, upto: int):
        s = self.session
        s.write_file(f"{root}/{PULLED}.tmp", data)
        s.exec(f"os.rename('{root}/{PULLED}.tmp', '{root}/{PULLED}')")


class LinkFiles:
    """A running controller's read path (``cryo.link.files``) over a ``Link``."""

    def __init__(self, link, role="engineer", hello=None):
        from host_tools.device.readsession import ReadSession

        self.link = link
        self.port = link.port
        self.role = role
        self.retries = 0
        self.session = ReadSession(link, role)
        self._hello = hello or link.hello()
        self._small = {}  # small files read whole by chk(): fetch() reuses them

    def _ask(self, cmd, **fields):
        """One authenticated request, asked again if the line lost it: the
        reads in the read session, ``pulled`` (it changes state) with its
        own single-use challenge (which ends the session)."""
        from host_tools.device.link import LinkError

        tries = 0
        while True:
            try:
                if cmd in msg.SESSION_COMMANDS:
                    return self.session.request(cmd, **fields)
                self.session.end()
                return self.link.authenticated(cmd, role=self.role, **fields)
            except LinkError as e:  # a refusal has a code; a lost frame has none
                tries += 1
                if e.code is not None or tries >= ATTEMPTS:
                    raise
                self.retries += 1

    def serial(self):
        return self._hello.get("serial")

    def _read(self, path, offset, n=wire.READ_MAX):
        r = self._ask("read", path=path, offset=offset, n=n)
        return r["size"], base64.b64decode(r["data"])

    def ls(self, root, since):
        names, after = [], ""
        while True:
            r = self._ask("list", path=root, **({"after": after} if after else {}))
            names += [tuple(x) for x in r["names"]]
            if not r["more"] or not r["names"]:
                break
            after = r["names"][-1][0]
        # as the REPL's listing: from the newest verified segment on
        return [(n, z) for n, z in names if not since or n >= since or n[:3] != "seg"]

    def chk(self, grow, small):
        g = {}
        for p, have in grow:
            size, tail = self._read(p, max(0, have - 64), min(have, 64) or 1)
            g[p] = (size, _sha(tail[: min(have, 64)]) if 0 < have < size else None)
        s = {}
        for p in small:
            data = bytearray()
            size = self._fetch(p, 0, data.extend)
            s[p] = (size, _sha(bytes(data)) if 0 <= size <= SMALL_MAX else None)
            self._small[p] = bytes(data)
        return g, s

    def _fetch(self, path, offset, sink, progress=None):
        """Bytes from ``offset`` to the end into ``sink``; the size (-1: no file)."""
        size = 0
        while True:
            size, data = self._read(path, offset)
            if size < 0 or not data:
                return size if size < 0 else offset
            sink(data)
            if progress:
                progress(len(data))
            offset += len(data)

    def fetch(self, path, offset, sink, progress=None):
        held = self._small.pop(path, None)
        if held is not None and offset == 0:
            sink(held)
            if progress:
                progress(len(held))
            return len(held)
        end = self._fetch(path, offset, sink, progress)
        if end < 0:
            raise DeviceError(f"{path} vanished from the device during the pull")
        return end

    def mark_pulled(self, root, data: bytes, upto: int):
        self._ask("pulled", upto=upto)


NO_CREDENTIAL = (
    "the device is locked (provisioned): pulling its logs needs the engineer's PIN "
    "(--pin or $CRYO_PIN) or the manufacturer's service key ($CRYO_KEYS)"
)


@contextlib.contextmanager
def pull_source(port: str, pin: str | None = None):
    """The source ``cryo logs pull`` reads: the command link of a locked
    board (engineer PIN, else the service key when this host holds it),
    otherwise the raw REPL as always (``Session`` stops the controller
    safely first)."""
    import os

    from host_tools.auth import ENV_PIN, Credentials
    from host_tools.device.connect import Session
    from host_tools.device.link import Link, LinkError

    pin = pin if pin is not None else os.environ.get(ENV_PIN)
    creds = Credentials(pins={} if pin is None else {"engineer": pin}, ask=False)
    try:
        link = Link(port, timeout=3, credentials=creds)
    except LinkError:
        link = None  # the port cannot be opened: the REPL path says why
    if link is not None:
        with link:
            try:
                hello = link.await_controller(repl_ok=True)
            except LinkError:
                hello = None  # no controller answering: the REPL path says why
            if hello and hello.get("auth"):
                yield LinkFiles(link, _pull_role(pin), hello)
                return
    with Session(port) as s:
        yield ReplFiles(s)


def _pull_role(pin):
    """The engineer with a PIN, else service when this host holds the
    manufacturer's secret; AccessDenied naming both otherwise."""
    if pin is not None:
        return "engineer"
    from host_tools import keys
    from host_tools.errors import CryoError

    try:
        keys.load_master()
    except CryoError:
        raise AccessDenied(NO_CREDENTIAL) from None
    return "service"
