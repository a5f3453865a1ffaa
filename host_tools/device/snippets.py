"""Code the host runs on the device (MicroPython source sent over the raw REPL).

Kept apart from the host code that calls it, like mpremote's device-side
helpers: ``DEVICE_HELPERS`` is injected once per session
(``host_tools.device.connect.Session``), ``PROBE`` asks a board about itself
(``host_tools.device.probe``), ``THERMOCOUPLES`` what its board definition
wires, ``PULL_HELPERS`` lists and checks the log
files a pull reads (``host_tools.archive.pull``). Each stays within what
every port has (os, binascii, hashlib) and bounded RAM.
"""

from host_tools import fwimport  # noqa: F401  (firmware/ importable, micropython shim)
from host_tools.device import transfer

# isort: split
from cryo import paths
from cryo.storage.segments import PULLED, seg_name

# Injected once per session: tiny helpers the host calls by name.
DEVICE_HELPERS = """
import os, binascii, hashlib
_cry_wdt = None
def _cry_feed():
    # Keep an already armed watchdog fed while the service tools hold the
    # REPL (the control loop that fed it is stopped). Never arms one: the
    # controller grants service mode only while its WDT is not armed, so on
    # a board this finds nothing; the virtual board says whether its runs.
    global _cry_wdt
    if _cry_wdt is None:
        _cry_wdt = False
        try:
            import vboard
            ms = vboard.get().wdt_timeout_ms
            if ms > 0:
                import machine
                _cry_wdt = machine.WDT(0, ms)
        except Exception:
            _cry_wdt = False
    if _cry_wdt:
        _cry_wdt.feed()
_cry_feed()
def _cry_mk(p):
    q = ''
    for s in p.split('/'):
        if not s:
            q = '/' if not q else q
            continue
        q = q + s if (not q or q.endswith('/')) else q + '/' + s
        try:
            os.mkdir(q)
        except OSError:
            pass
def _cry_open(p):
    global _cry_f
    _cry_f = open(p, 'wb')
def _cry_close():
    _cry_f.close()
def _cry_sha(p):
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
def _cry_shas(ps):
    out = {}
    for p in ps:
        _cry_feed()
        out[p] = _cry_sha(p)
    return out
def _cry_cp(a, b):
    with open(a, 'rb') as fa:
        with open(b, 'wb') as fb:
            buf = bytearray(1024)
            while True:
                _cry_feed()
                n = fa.readinto(buf)
                if not n:
                    break
                fb.write(buf[:n] if n < len(buf) else buf)
def _cry_rm(p):
    try:
        os.remove(p)
    except OSError:
        pass
def _cry_walk(d, pre=''):
    out = []
    try:
        it = list(os.ilistdir(d))
    except OSError:
        return out
    for e in it:
        n = e[0]
        full = d + '/' + n if d else n
        if e[1] & 0x4000:
            out.extend(_cry_walk(full, pre + n + '/'))
        else:
            out.append(pre + n)
    return out
def _cry_purge():
    import sys
    for m in [m for m in sys.modules if m == 'cryo' or m.startswith('cryo.')]:
        del sys.modules[m]
def _cry_size(p):
    try:
        return os.stat(p)[6]
    except OSError:
        return -1
def _cry_read(p, off, n):
    with open(p, 'rb') as f:
        f.seek(off)
        return f.read(n)
"""
DEVICE_HELPERS += transfer.DEVICE_CODE

PROBE = f"""
def _cry_probe():
    import sys
    d = {{'version': list(sys.implementation.version[:3]), 'mpy': getattr(sys.implementation, '_mpy', 0),
         'platform': sys.platform}}
    try:
        import machine
        d['uid'] = binascii.hexlify(machine.unique_id()).decode()
    except Exception:
        d['uid'] = None
    def rd(p, m='r'):
        try:
            with open(p, m) as f:
                return f.read()
        except OSError:
            return None
    d['serial'] = rd({paths.APP_SERIAL!r})
    d['active'] = rd({paths.APP_ACTIVE!r})
    k = rd({paths.APP_KEY!r}, 'rb')
    d['key_fp'] = binascii.hexlify(hashlib.sha256(k).digest()).decode()[:16] if k else None
    d['fault'] = rd({paths.APP_FAULT!r})
    d['release'] = rd({paths.APP_RELEASE_PUB!r})
    return d
print(repr(_cry_probe()))
"""

# The thermocouples of the board definition the firmware runs with: the
# firmware's own lookup (``cryo.board.load_definition``, in the boot layer).
# Prints JSON (null: none, or a board without the firmware).
THERMOCOUPLES = """
import json
try:
    from cryo.board import load_definition
    _d = load_definition()
except Exception:
    _d = None
print(json.dumps(_d.get('thermocouples') if isinstance(_d, dict) else None))
del _d
"""

# Pull helpers: one listing with sizes (segments are numbered in order and
# only the oldest are ever deleted, so from the newest one the archive
# verified the device stats that one and its successors instead of listing
# the whole folder: O(new segments), not O(history)), then one check of what the archive
# already holds (the SHA-256 of the last bytes of each growing file, of the
# whole of each small state file) - O(1) round trips and device work per
# pull, whatever the history. Not a CRC: these files are sequences of
# records that each end in their own CRC-32, and CRC-32 over such a
# sequence is the same constant whatever the records hold (the CRC residue).
PULL_HELPERS = """
def _cry_ls(d, since):
    if since and _cry_size(d + '/' + since) >= 0:
        out = [(%(pulled)r, _cry_size(d + '/' + %(pulled)r))]
        k = int(since[%(pre)d:-%(suf)d])
        while True:
            n = %(first)r[:%(pre)d] + ('%%08d' %% k) + %(first)r[-%(suf)d:]
            z = _cry_size(d + '/' + n)
            if z < 0:
                return [e for e in out if e[1] >= 0]
            out.append((n, z))
            k += 1
    return [(n, _cry_size(d + '/' + n)) for n in _cry_walk(d) if n >= since or n[:3] != 'seg']
def _cry_hashn(p, a, b):
    h = hashlib.sha256()
    buf = bytearray(256)
    try:
        with open(p, 'rb') as f:
            f.seek(a)
            while a < b:
                n = f.readinto(buf)
                if not n:
                    break
                n = min(n, b - a)
                h.update(memoryview(buf)[:n])
                a += n
    except OSError:
        return None
    return binascii.hexlify(h.digest()).decode()
def _cry_chk(grow, small):
    g = {}
    for p, have in grow:
        _cry_feed()
        n = _cry_size(p)
        g[p] = (n, _cry_hashn(p, max(0, have - 64), have) if 0 < have < n else None)
    s = {}
    for p in small:
        n = _cry_size(p)
        s[p] = (n, _cry_hashn(p, 0, n) if 0 <= n <= 16384 else None)
    return g, s
""" % {
    "pulled": PULLED,
    "first": seg_name(0),  # segment names: prefix, 8 digits, suffix
    "pre": seg_name(0).index("0"),
    "suf": len(seg_name(0)) - seg_name(0).index("0") - 8,
}


def app_code(body: str, slot: str | None, missing: str) -> str:
    """Run ``body`` (indented 4 spaces) with ``cryo`` imported from app slot
    ``slot`` (default: the active one), not from /lib's boot layer; prints
    ``missing`` when that firmware lacks a module ``body`` imports."""
    return f"""
import sys
_slot = {paths.slot_dir(slot) if slot else None!r}
if _slot is None:
    try:
        _slot = {paths.APP_DIR + "/"!r} + open({paths.APP_ACTIVE!r}).read().strip()
    except OSError:
        pass
if _slot:
    sys.path.insert(0, _slot)
_cry_purge()
try:
{body}
except ImportError:
    print({missing!r})
finally:
    if _slot:
        sys.path.remove(_slot)
    _cry_purge()
"""


def audit_code(calls: list[str], slot: str | None) -> str:
    """Append to the audit trail with ``cryo`` imported from app slot ``slot``
    (default: the active one); prints ``recorded`` or ``no-audit``."""
    body = "\n    ".join(calls)
    return app_code(
        f"""    from cryo.storage.audit import AuditTrail
    try:  # a provisioned device keys its entries (cryo.link.auth)
        from cryo.link.auth import load_audit_key
        _k = load_audit_key({paths.AUTH_PATH!r})
    except ImportError:
        _k = None
    _t = AuditTrail({paths.AUDIT_PATH!r}, key=_k) if _k else AuditTrail({paths.AUDIT_PATH!r})
    {body}
    print('recorded')""",
        slot,
        "no-audit",
    )


def pin_backoff_code(action: str) -> str:
    """The device's count of failed PIN attempts (``cryo.link.backoff``, the
    file the authenticated link counts in): ``wait`` prints ``fails wait_ms``,
    ``count`` records an attempt on flash before it is evaluated,
    ``succeeded`` clears the count. ``_cry_bo`` lives for the session."""
    return app_code(
        f"""    if {action!r} == 'wait':
        from cryo.clock import BoardClock
        from cryo.link.backoff import Backoff
        _cry_bo = Backoff({paths.AUTH_FAILS_PATH!r}, BoardClock())
        print(_cry_bo.fails, _cry_bo.wait_ms())
    elif {action!r} == 'count':
        _cry_bo.count()
    else:
        _cry_bo.succeeded()""",
        None,
        "no-backoff",
    )
