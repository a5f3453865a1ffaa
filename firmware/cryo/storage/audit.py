"""Audit trail: append-only, hash-chained (21 CFR Part 11 practice).

One entry per line, a JSON array::

    [n, time_s, kind, role, subject, old, new, prev]

``n`` counts entries from 1 without gaps; ``time_s`` is the RTC time
(seconds since 2000-01-01 UTC); ``kind`` is ``"config"`` (subject = field),
``"deploy"`` (subject = firmware version, old/new = image hashes),
``"ack"`` (subject = fault or alarm), ``"pin"`` (subject = role whose PIN
changed; no secret is logged), ``"note"``, or any kind the core passes to
``append(dict)``; ``prev`` is the SHA-256 (hex)
of the previous line's bytes (64 zeros for the first entry). A line is
committed when ``append`` returns (written and flushed; littlefs keeps it
across power loss).

``verify()`` walks the chain and reports: unparseable or torn lines,
numbering gaps, broken links (an edited or removed entry changes the hash
the next entry carries) and - against an anchor ``(n, hash)`` the host
recorded at its last pull, or the ``<path>.head`` file written after each
append - truncation. Without a device key this is tamper-*evident* against
partial edits, not against someone rewriting the whole file and head; the
host's anchor is what makes truncation of pulled history visible.
"""

import hashlib
import json
import os
from binascii import hexlify

from cryo.app.hmac256 import hmac_sha256

GENESIS = "0" * 64
PROVISION = "provision"  # kind of the first keyed entry; subject = device id
_MAC_TAIL = 68  # ',"' + 64 hex digits + '"]'


def entry_mac(key, body):
    """Hex (bytes) of the MAC of an entry's 8-element text ``body``."""
    return hexlify(hmac_sha256(key, body))


class Keying:
    """What a verifier knows of the audit key: ``derive(device_id) -> key``
    (the manufacturer's derivation) and the device once a provisioning
    entry named it (kept across incremental verifications)."""

    def __init__(self, derive, device=None):
        self.derive = derive
        self.device = device
        self.key = None if device is None else derive(device)

    def provisioned(self, device):
        self.device = device
        self.key = self.derive(device)


def line_hash(line):
    """SHA-256 hex of one entry line (bytes, without the newline)."""
    return hexlify(hashlib.sha256(line).digest()).decode()


def _encode(entry):
    parts = []
    for v in entry:
        if isinstance(v, bool):
            parts.append("true" if v else "false")
        elif isinstance(v, float):
            parts.append(repr(v))
        else:
            parts.append(json.dumps(v))
    return ("[" + ",".join(parts) + "]").encode()


class AuditTrail:
    """Hash-chained append-only trail in the file ``path``."""

    def __init__(self, path, rtc=None, key=None):
        self.path = path
        self._rtc = rtc  # callable -> seconds since 2000-01-01 (for append())
        self._key = key  # audit key of a provisioned device (keyed entries)
        self.count = 0
        self.head = GENESIS
        self.damaged = None  # message if the tail was found damaged at open
        self._scan()

    def _scan(self):
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return
        lines = data.split(b"\n")
        tail = lines.pop()  # after the last newline: empty unless torn
        if tail:
            self.damaged = "torn entry after line %d (%d bytes, never committed)" % (
                len(lines),
                len(tail),
            )
        for line in lines:
            try:
                n = json.loads(line)[0]
            except (ValueError, IndexError, TypeError):
                continue
            if isinstance(n, int):
                self.count = n
                self.head = line_hash(line)

    def _append(self, kind, time_s, role, subject, old, new):
        entry = [self.count + 1, time_s, kind, role, subject, old, new, self.head]
        line = _encode(entry)
        if self._key is not None:
            line = line[:-1] + b',"' + entry_mac(self._key, line) + b'"]'
        with open(self.path, "ab") as f:
            if self.damaged:
                f.write(b"\n")  # keep a torn tail on its own line
                self.damaged = None
            f.write(line + b"\n")
            f.flush()
        self.count += 1
        self.head = line_hash(line)
        try:
            tmp = self.path + ".head.tmp"
            with open(tmp, "wb") as f:
                f.write(("%d %s\n" % (self.count, self.head)).encode())
            os.rename(tmp, self.path + ".head")
        except OSError:
            pass  # the head file is a convenience anchor; the trail is committed
        return self.count

    def append(self, entry):
        """Generic append from a dict (the core's form); returns the entry number.

        Keys: ``kind`` (or ``what``), ``role``, optional ``time_s`` (else the
        constructor's ``rtc()``, else 0), ``field``/``name``/``subject``,
        ``old``, ``new``; any other keys go into the subject as a dict.
        """
        e = dict(entry)
        kind = e.pop("kind", None) or e.pop("what", None) or "note"
        e.pop("what", None)
        role = e.pop("role", None)
        t = e.pop("time_s", None)
        if t is None:
            t = self._rtc() if self._rtc is not None else 0
        subject = e.pop("field", None) or e.pop("name", None) or e.pop("subject", None)
        old = e.pop("old", None)
        new = e.pop("new", None)
        if e:
            extra = {}
            for k in sorted(e):
                extra[k] = e[k]
            subject = extra if subject is None else [subject, extra]
        return self._append(kind, t, role, subject, old, new)

    def config_change(self, time_s, role, field, old, new):
        return self._append("config", time_s, role, field, old, new)

    def firmware_deploy(self, time_s, role, version, old_hash, new_hash):
        return self._append("deploy", time_s, role, version, old_hash, new_hash)

    def fault_ack(self, time_s, role, fault, detail=None):
        return self._append("ack", time_s, role, fault, None, detail)

    def pin_change(self, time_s, role, target_role):
        return self._append("pin", time_s, role, target_role, None, None)

    def note(self, time_s, role, text):
        return self._append("note", time_s, role, text, None, None)

    def entries(self):
        """Every parseable entry (lists), for display and export."""
        out = []
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return out
        for line in data.split(b"\n"):
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def verify(self, anchor=None):
        """Problems found (list of messages; empty = chain intact).

        ``anchor``: ``(n, hash)`` recorded earlier (by the host); the trail
        must still contain entry n with that hash. Without an anchor the
        ``.head`` file is used when present.
        """
        return verify_bytes(self._data(), anchor if anchor else self._head_anchor())

    def _data(self):
        try:
            with open(self.path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def _head_anchor(self):
        try:
            with open(self.path + ".head", "rb") as f:
                parts = f.read().decode().split()
            return int(parts[0]), parts[1]
        except (OSError, ValueError, IndexError):
            return None


def verify_bytes(data, anchor=None, start=None, keying=None):
    """Verify a trail's bytes (device or host copy); list of problems, the
    first tampered entry first.

    ``start``: ``(n, hash)`` of the entry just before ``data`` when ``data``
    is the rest of a trail whose beginning was verified before (the host
    checks only what a pull added); the anchor must then lie in ``data``.
    ``keying``: a :class:`Keying` to check the MACs of keyed entries (without
    it they are only chain-checked).
    """
    problems = []
    lines = data.split(b"\n")
    tail = lines.pop()
    if tail:
        problems.append("torn or unterminated entry at the end (%d bytes)" % len(tail))
    prev = GENESIS if start is None else start[1]
    expect = 1 if start is None else start[0] + 1
    hashes = {} if start is None else {start[0]: start[1]}
    for i, line in enumerate(lines):
        lineno = i + 1
        try:
            e = json.loads(line)
            ok = isinstance(e, list) and len(e) in (8, 9) and isinstance(e[0], int)
        except ValueError:
            ok = False
        if not ok:
            problems.append("line %d: not an audit entry (tampered or torn)" % lineno)
            prev = None
            continue
        n = e[0]
        if n != expect:
            problems.append(
                "line %d: entry %d where %d was expected (gap or reorder)" % (lineno, n, expect)
            )
        if prev is not None and e[7] != prev:
            problems.append(
                "line %d: entry %d does not chain to the previous entry (edited, removed or inserted)"
                % (lineno, n)
            )
        if keying is not None:
            _check_key(problems, keying, lineno, e, line)
        prev = line_hash(line)
        hashes[n] = prev
        expect = n + 1
    if anchor is not None:
        an, ah = anchor
        if an not in hashes:
            problems.append(
                "truncated: anchor entry %d is missing (trail ends at %d)" % (an, expect - 1)
            )
        elif hashes[an] != ah:
            problems.append("entry %d does not match the anchor hash (rewritten history)" % an)
    return problems


def _check_key(problems, keying, lineno, e, line):
    n = e[0]
    if len(e) == 8:
        if keying.device is not None:
            problems.append(
                "line %d: entry %d has no MAC in a keyed trail (written without the device key)"
                % (lineno, n)
            )
        return
    if e[2] == PROVISION and isinstance(e[4], str):
        keying.provisioned(e[4])
    if keying.key is None:
        problems.append(
            "line %d: entry %d is keyed but no provisioning entry names its device" % (lineno, n)
        )
    elif entry_mac(keying.key, line[:-_MAC_TAIL] + b"]").decode() != e[8]:
        problems.append(
            "line %d: entry %d MAC does not match (rewritten without the device key)" % (lineno, n)
        )
