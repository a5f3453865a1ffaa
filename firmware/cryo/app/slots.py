"""A/B app slots on the board's flash and the boot-time selection.

Layout under the flash root::

    app/key        per-device HMAC key (32 bytes), written at first flash
    app/active     "a" or "b": the slot to boot, replaced by write+rename
    app/a/, app/b/ one complete firmware each, with its ``manifest``
    app/fault      why the last boot did not use the active slot (if so)

A deploy writes only into the slot that is *not* active and flips
``app/active`` last, with a rename (atomic on littlefs and POSIX). A power
cut at any point therefore leaves ``app/active`` naming a complete,
verified slot: the previous firmware, or the new one once the rename
happened.

At boot, :func:`select_app` authenticates the active slot's manifest with
the device key and checks the SHA-256 of every file. If anything does not
match it falls back to the other slot and reports a fault; if neither slot
is authentic it returns no slot and the caller keeps the valves closed.
"""

import os

from cryo import paths
from cryo.app import manifest

SLOTS = ("a", "b")
FAULT_NONE = 0
FAULT_FALLBACK = 1  # active slot failed verification; the other one booted
FAULT_NO_APP = 2  # no authentic slot at all: stay in the safe state


def join(*parts):
    """Path join that works on the device and on the host."""
    out = ""
    for p in parts:
        if not p:
            continue
        if out and not out.endswith("/"):
            out += "/"
        out += p
    return out


def _read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def active_slot(root=""):
    """The slot ``app/active`` names, or None (no app deployed / garbage)."""
    s = _read(join(root, paths.APP_ACTIVE))
    if s is None:
        return None
    s = s.strip()
    return s if s in SLOTS else None


def other(slot):
    return "b" if slot == "a" else "a"


def write_atomic(path, data):
    """Replace ``path`` with ``data`` by writing a temp file and renaming it."""
    tmp = path + ".tmp"
    with open(tmp, "wb" if isinstance(data, (bytes, bytearray)) else "w") as f:
        f.write(data)
    os.rename(tmp, path)


def set_active(root, slot):
    """Make ``slot`` the one to boot (the atomic switch of a deploy)."""
    if slot not in SLOTS:
        raise ValueError("slot must be 'a' or 'b', not %r" % (slot,))
    write_atomic(join(root, paths.APP_ACTIVE), slot)


def device_key(root=""):
    """The per-device manifest key, or None before the first flash."""
    k = _read(join(root, paths.APP_KEY), "rb")
    return k if k and len(k) >= 16 else None


def verify_slot(root, slot, key):
    """Problems with a slot (empty list = authentic and complete).

    Checks the manifest HMAC, then the SHA-256 and size of every file.
    """
    d = join(root, paths.slot_dir(slot))
    text = _read(join(d, "manifest"))
    if text is None:
        return ["slot %s has no manifest" % slot]
    if key is None:
        return ["no device key (app/key) to authenticate slot %s" % slot]
    if not manifest.authentic(key, text):
        return ["slot %s manifest is not authentic (HMAC mismatch or malformed)" % slot]
    _, files, _, _ = manifest.parse(text)
    problems = []
    buf = bytearray(512)
    for path in files:
        sha, size = files[path]
        p = join(d, path)
        try:
            got = manifest.file_sha256(p, buf)
        except OSError:
            problems.append("slot %s: %s is missing" % (slot, path))
            continue
        if got != sha:
            problems.append("slot %s: %s does not match its manifest hash" % (slot, path))
    return problems


def slot_version(root, slot):
    text = _read(join(root, paths.slot_dir(slot), "manifest"))
    if text is None:
        return None
    try:
        return manifest.parse(text)[0].get("version")
    except ValueError:
        return None


def select_app(root="", add_path=True):
    """Choose the slot to boot; called by boot.py after the valves are closed.

    Returns a dict ``{"slot", "path", "version", "manifest_sha256", "fault",
    "reason"}``; ``manifest_sha256`` identifies the running firmware (every
    file's hash is in the manifest), e.g. for the session header's fw_hash.
    ``slot``/``path`` are None when no app is deployed (``fault`` 0: the
    firmware runs from wherever sys.path already points, e.g. the source
    tree on the virtual board) or when no slot is authentic (``fault``
    FAULT_NO_APP: the caller must stay in the safe state). With
    ``add_path`` the chosen slot is put first on ``sys.path`` and cached
    ``cryo`` modules are dropped, so the next ``import cryo...`` loads the
    verified copy.
    """
    res = {
        "slot": None,
        "path": None,
        "version": None,
        "manifest_sha256": None,
        "fault": FAULT_NONE,
        "reason": "",
    }
    want = active_slot(root)
    if (
        want is None
        and not _exists(join(root, paths.slot_dir("a")))
        and not _exists(join(root, paths.slot_dir("b")))
    ):
        return res
    key = device_key(root)
    order = (want, other(want)) if want else SLOTS
    reasons = []
    for slot in order:
        problems = verify_slot(root, slot, key)
        if not problems:
            res["slot"] = slot
            res["path"] = join(root, paths.slot_dir(slot))
            res["version"] = slot_version(root, slot)
            # the firmware identity the log headers record
            res["manifest_sha256"] = manifest.file_sha256(
                join(root, paths.slot_dir(slot), "manifest")
            )
            break
        reasons.append(problems[0])
    if res["slot"] is None:
        res["fault"] = FAULT_NO_APP
        res["reason"] = "no authentic app slot: " + "; ".join(reasons)
    elif res["slot"] != want:
        res["fault"] = FAULT_FALLBACK
        res["reason"] = "; ".join(reasons) + "; booted slot %s instead" % res["slot"]
    fault_path = join(root, paths.APP_FAULT)
    if res["fault"]:
        try:
            write_atomic(fault_path, "%d %s\n" % (res["fault"], res["reason"]))
        except OSError:
            pass
    elif _exists(fault_path):
        try:
            os.remove(fault_path)
        except OSError:
            pass
    if add_path and res["path"]:
        _use(res["path"])
    return res


def _use(path):
    import sys

    if path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)
    for name in list(sys.modules):
        if name == "cryo" or name.startswith("cryo."):
            del sys.modules[name]
