"""The keyed audit trail: MACs under the device's audit key.

Under real MicroPython (the firmware's own AuditTrail and verifier): an
entry rewritten by someone without the key - even with the whole chain
re-hashed consistently - is reported, the first tampered entry first; a
trail continued without the key (a downgrade) is reported too.
"""

PRELUDE = """
import json, hashlib
from binascii import hexlify
from cryo.link import auth
from cryo.storage.audit import AuditTrail, Keying, verify_bytes, line_hash
P = %r
MASTER = b"m" * 32
def derive(dev):
    return auth.audit_key(MASTER, dev)
t = AuditTrail(P)
t.note(1, "service", "before provisioning")
t = AuditTrail(P, key=derive("dev-7"))
t.append({"kind": "provision", "role": "service", "subject": "dev-7"})
for i in range(5):
    t.config_change(10 + i, "engineer", "pid.kp", i, i + 1)
data = open(P, "rb").read()
def rechain(lines):
    # what an attacker without the key can do: fix every prev hash
    out = []
    prev = "0" * 64
    for ln in lines:
        e = json.loads(ln)
        e[7] = prev
        ln = json.dumps(e).replace(", ", ",").encode()
        out.append(ln)
        prev = line_hash(ln)
    return b"\\n".join(out) + b"\\n"
"""


def test_intact_keyed_trail_verifies(mpy, tmp_path):
    r = mpy.run(
        PRELUDE % str(tmp_path / "audit.log")
        + """
k = Keying(derive)
result([verify_bytes(data, None, None, k), k.device, len(json.loads(data.split(b"\\n")[2])),
        verify_bytes(data, None, None, Keying(lambda d: auth.audit_key(b"x" * 32, d)))[:1]])
"""
    )
    problems, device, width, wrong_master = r
    assert problems == [] and device == "dev-7"
    assert width == 9  # keyed entries carry their MAC
    assert "entry 2 MAC does not match" in wrong_master[0]


def test_rewritten_entry_reported_first_even_when_rechained(mpy, tmp_path):
    r = mpy.run(
        PRELUDE % str(tmp_path / "audit.log")
        + """
lines = data.split(b"\\n")[:-1]
e = json.loads(lines[3])           # entry 4: pid.kp 1 -> 2
e[6] = 9
lines[3] = json.dumps(e).replace(", ", ",").encode()
forged = rechain(lines)
plain = verify_bytes(forged)       # the chain alone: consistent
keyed = verify_bytes(forged, None, None, Keying(derive))
result([plain, keyed])
"""
    )
    plain, keyed = r
    assert plain == []  # without a key a consistent rewrite goes unseen
    assert keyed and keyed[0].startswith("line 4: entry 4 MAC does not match"), keyed


def test_trail_continued_without_the_key_is_reported(mpy, tmp_path):
    r = mpy.run(
        PRELUDE % str(tmp_path / "audit.log")
        + """
AuditTrail(P).note(99, "engineer", "written without the key")
forged = open(P, "rb").read()
lines = forged.split(b"\\n")[:-1]
# and the provisioning entry stripped of its MAC, everything rechained
stripped = []
for ln in lines:
    e = json.loads(ln)
    stripped.append(json.dumps(e[:8]).replace(", ", ",").encode())
result([verify_bytes(forged, None, None, Keying(derive)),
        verify_bytes(rechain(stripped), None, None, Keying(derive, "dev-7"))])
"""
    )
    appended, downgraded = r
    assert len(appended) == 1 and "entry 8 has no MAC in a keyed trail" in appended[0]
    assert downgraded[0].startswith("line 1: entry 1 has no MAC in a keyed trail")
