"""Read-only access to the log files over the command link.

A locked (provisioned) device opens no REPL without a service unlock, yet a
clinic must pull its treatment logs and audit trail. These commands give
the host's pull (``host_tools.device.files.LinkFiles``) what it reads
through the raw REPL on an open device, as link frames (JSON, CRC-32 per
frame: ``cryo.link.framing``) and, on a provisioned device, each one
authenticated like every other command (``cryo.link.auth``: role engineer
or higher, so a visitor with a cable reads no patient data):

* ``list``: the names and sizes in ``paths.LOG_ROOT``, sorted, ``LIST_MAX``
  per frame after the name ``after``;
* ``read``: up to ``READ_MAX`` bytes of one file from ``offset``, base64,
  with the file's size (-1: no such file);
* ``pulled``: the host holds every session up to ``upto``
  (``TreatmentLog.mark_pulled``): the only change, so rotation may recycle.

Only the files :func:`readable` names can be read: the log folder and the
pull's state files (``paths.PULL_FILES``), never ``auth.txt``, the PIN
verifiers or the app. Runs in the channel's poll, between ticks.
"""

import os
from binascii import b2a_base64

from micropython import const

from cryo import paths

READ_MAX = const(1024)  # bytes per read reply: 1368 base64 characters < MAX_REPLY
LIST_MAX = const(40)  # names per list reply


def readable(name):
    """True for the files a log pull reads, and nothing else."""
    if name in paths.PULL_FILES:
        return True
    pre = paths.LOG_ROOT + "/"
    rest = name[len(pre) :] if name.startswith(pre) else ""
    return rest != "" and "/" not in rest and rest[0] != "."


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def read(name, offset, n):
    if not readable(name):
        raise ValueError(
            "read %r: only the log folder %s/ and %s may be read over the link"
            % (name, paths.LOG_ROOT, ", ".join(paths.PULL_FILES))
        )
    if offset < 0 or not 0 < n <= READ_MAX:
        raise ValueError("read: offset >= 0 and n 1..%d" % READ_MAX)
    path = paths.on_flash(name)
    size = _size(path)
    data = b""
    if 0 <= offset < size:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(n)
    return {
        "path": name,
        "offset": offset,
        "size": size,
        "data": b2a_base64(data).decode().strip(),
    }


def listing(root, after):
    if root != paths.LOG_ROOT:
        raise ValueError("list %r: only the log folder %s may be listed" % (root, paths.LOG_ROOT))
    d = paths.on_flash(root)
    try:
        names = sorted(os.listdir(d))
    except OSError:
        names = []
    out = []
    more = False
    for name in names:
        if name <= after:
            continue
        if len(out) == LIST_MAX:
            more = True
            break
        out.append([name, _size(d + "/" + name)])
    return {"names": out, "more": more}


def serial():
    """The name the host files this device's archive under: the chip's
    unique id, else the serial ``cryo flash`` gave it
    (``host_tools.device.probe.device_serial``, the same rule)."""
    from cryo import board

    uid = board.unique_id()
    if uid:
        return uid
    try:
        with open(paths.on_flash(paths.APP_SERIAL)) as f:
            return f.read().strip() or None
    except OSError:
        return None


def mark_pulled(log, upto):
    if log is None:
        raise ValueError("pulled: this controller keeps no treatment log")
    log.mark_pulled(upto)
    return {"pulled": log.pulled_upto()}
