"""The app manifest: one line per file with its SHA-256, authenticated by HMAC.

Shared by the device (boot verification) and the host (``cryo flash``), so
the format is defined once. Text, because it is parsed at boot on a board
with no json guarantees and read by people during service::

    cryo-manifest 1
    version 0.1.0
    mpy 6
    arch -
    board sim
    file cryo/__init__.mpy <sha256 hex> <size>
    ...
    hmac <HMAC-SHA256 hex of every byte above this line>

Files are sorted by path, so the same firmware always yields the same
manifest and an unchanged redeploy is recognised by comparing manifests.
"""

import hashlib

from cryo.app.hmac256 import equal, hexlify, new

MAGIC = "cryo-manifest 1"
_META_KEYS = ("version", "mpy", "arch", "board")


def body(meta, files):
    """Canonical manifest text without the hmac line.

    ``meta``: dict with version/mpy/arch/board; ``files``: dict path →
    (sha256 hex, size).
    """
    out = [MAGIC]
    for k in _META_KEYS:
        v = meta.get(k)
        out.append("%s %s" % (k, "-" if v is None else v))
    for path in sorted(files):
        sha, size = files[path]
        if " " in path or "\n" in path:
            raise ValueError("file name %r contains a space or newline" % path)
        out.append("file %s %s %d" % (path, sha, size))
    return "\n".join(out) + "\n"


def mac(key, text):
    """HMAC-SHA256 hex of the manifest body ``text`` under ``key``."""
    if isinstance(text, str):
        text = text.encode()
    return hexlify(new(key, text).digest())


def sign(key, meta, files):
    """The full manifest text: body plus its hmac line."""
    b = body(meta, files)
    return b + "hmac " + mac(key, b) + "\n"


def parse(text):
    """Split a manifest into (meta, files, body, hmac hex).

    Raises ValueError naming the first malformed line.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode()
    if not text.startswith(MAGIC + "\n"):
        raise ValueError("not a cryo manifest (first line must be %r)" % MAGIC)
    cut = text.rfind("hmac ")
    if cut < 0 or (cut > 0 and text[cut - 1] != "\n"):
        raise ValueError("manifest has no hmac line")
    b = text[:cut]
    mac_hex = text[cut + 5 :].strip()
    meta = {}
    files = {}
    lineno = 1
    for line in b.split("\n")[1:]:
        lineno += 1
        if not line:
            continue
        parts = line.split(" ")
        if parts[0] == "file" and len(parts) == 4:
            files[parts[1]] = (parts[2], int(parts[3]))
        elif parts[0] in _META_KEYS and len(parts) == 2:
            meta[parts[0]] = None if parts[1] == "-" else parts[1]
        else:
            raise ValueError("manifest line %d not understood: %r" % (lineno, line))
    return meta, files, b, mac_hex


def authentic(key, text):
    """True if the manifest's hmac line matches its body under ``key``."""
    try:
        _, _, b, mac_hex = parse(text)
    except ValueError:
        return False
    return equal(mac(key, b).encode(), mac_hex.encode())


def file_sha256(path, buf=None):
    """SHA-256 hex of a file, read in small chunks (bounded RAM on a board)."""
    h = hashlib.sha256()
    if buf is None:
        buf = bytearray(512)
    mv = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
    return hexlify(h.digest())
