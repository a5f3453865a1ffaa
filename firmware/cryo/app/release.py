"""Signed releases and anti-rollback, checked on the device at update time.

A release is signed once by the manufacturer's Ed25519 key (host:
``host_tools/keys.py``, ``cryptography``); a device that holds the public
half (``paths.APP_RELEASE_PUB``, written at provisioning) refuses to switch
to a slot whose ``manifest.sig`` is missing, does not verify, or names a
version older than the one it accepted last (``paths.APP_COUNTER``). Signed
message::

    b"cryo-release-v1" || SHA-256(manifest body) || version code (4 bytes, big-endian)

The manifest body (``cryo.app.manifest.body``: version, board, every file's
SHA-256) is the same on every device, so one signature serves a release;
the per-device HMAC line below it keeps authenticating the slot at each boot
(fast). The Ed25519 check (``cryo.app.ed25519``, about a second on a
Cortex-M, ``make bench``) runs here only, never at boot or in the control
path. ``manifest.sig`` text::

    version <code>
    sig <128 hex digits>
"""

import hashlib
from binascii import hexlify, unhexlify

from cryo import paths
from cryo.app import ed25519, manifest
from cryo.app.slots import _read, join, write_atomic

_LABEL = b"cryo-release-v1"
SIG_NAME = "manifest.sig"


def version_code(version):
    """``"1.2.3"`` -> 1002003: the number anti-rollback compares (ValueError if malformed)."""
    parts = str(version).split(".")
    if len(parts) != 3:
        raise ValueError("version %r must be MAJOR.MINOR.PATCH" % (version,))
    major, minor, patch = (int(p) for p in parts)
    if not (0 <= minor < 1000 and 0 <= patch < 1000 and 0 <= major < 2000):
        raise ValueError("version %r out of range (0..1999.0..999.0..999)" % (version,))
    return major * 1000000 + minor * 1000 + patch


def message(body_text, code):
    if isinstance(body_text, str):
        body_text = body_text.encode()
    return _LABEL + hashlib.sha256(body_text).digest() + code.to_bytes(4, "big")


def sig_text(code, signature):
    return "version %d\nsig %s\n" % (code, hexlify(signature).decode())


def public_key(root=""):
    """The release key this device trusts (32 bytes), or None (development device)."""
    t = _read(join(root, paths.APP_RELEASE_PUB))
    if t is None:
        return None
    try:
        k = unhexlify(t.strip())
    except ValueError:
        return b""  # present but damaged: nothing verifies
    return k


def installed_code(root=""):
    t = _read(join(root, paths.APP_COUNTER))
    try:
        return int(t.strip()) if t else 0
    except ValueError:
        return 1 << 30  # damaged counter: refuse everything rather than allow a downgrade


def check(root, slot):
    """Problems with installing ``slot`` (empty: signed, current, may switch).

    A device without a release key accepts any slot (development)."""
    pub = public_key(root)
    if pub is None:
        return []
    d = join(root, paths.slot_dir(slot))
    text = _read(join(d, "manifest"))
    sig = _read(join(d, SIG_NAME))
    if text is None:
        return ["slot %s has no manifest" % slot]
    if sig is None:
        return ["slot %s is unsigned (no %s): refused" % (slot, SIG_NAME)]
    try:
        meta, _, body, _ = manifest.parse(text)
        fields = {}
        for line in sig.split("\n"):
            parts = line.split()
            if len(parts) == 2:
                fields[parts[0]] = parts[1]
        code = int(fields["version"])
        signature = unhexlify(fields["sig"])
        want = version_code(meta.get("version"))
    except (ValueError, KeyError) as e:
        return ["slot %s: release signature unreadable (%s): refused" % (slot, e)]
    if code != want:
        return ["slot %s: signed version code %d is not its manifest's %d" % (slot, code, want)]
    if not ed25519.verify(pub, message(body, code), signature):
        return [
            "slot %s: release signature does not verify (modified, or not signed with the "
            "release key)" % slot
        ]
    have = installed_code(root)
    if code < have:
        return [
            "slot %s: version %s (%d) is older than the installed %d: downgrade refused"
            % (slot, meta.get("version"), code, have)
        ]
    return []


def accept(root, slot):
    """Record the version of ``slot`` (checked by :func:`check`) as the lowest accepted."""
    if public_key(root) is None:
        return
    text = _read(join(root, paths.slot_dir(slot), "manifest"))
    code = version_code(manifest.parse(text)[0].get("version"))
    if code > installed_code(root):
        write_atomic(join(root, paths.APP_COUNTER), "%d\n" % code)


def install(root, slot):
    """Check and accept ``slot`` in one call (the deploy's last step before the switch)."""
    problems = check(root, slot)
    if not problems:
        accept(root, slot)
    return problems
