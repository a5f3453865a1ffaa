"""The configuration file's MAC under the device key (cryo.storage.config).

Under real MicroPython (the firmware's own loader): a file the device
sealed loads; one edited outside the firmware - body changed and CRC
redone, or written without a MAC - is refused as tampered, and the loader
does not fall back to the last known good copy (nor to defaults); a plain
accident (CRC) still falls back as before. A development device (no key)
reads sealed and unsealed files alike.
"""

PRELUDE = """
from cryo.storage import config as C, schema as S
from cryo.link import auth
KEY = auth.audit_key(b"m" * 32, "dev-7")
P = %r
cfg = S.defaults()
def write(path, data):
    f = open(path, "wb"); f.write(data); f.close()
def forged(data):
    # what someone without the key can do: change a value, redo the CRC,
    # keep (or drop) the MAC field
    head, body = data.split(b"\\n", 1)
    c = C.decode(data)[0]
    c["pid.kp"] = c["pid.kp"] * 2
    out = C.encode(c)
    h = out.split(b"\\n", 1)[0]
    mac = head.split(b" ")[4:]
    return b" ".join([h] + mac) + b"\\n" + out.split(b"\\n", 1)[1]
def outcome(r):
    c, fault = r
    return [c is not None, None if fault is None else fault.code,
            None if fault is None else fault.messages]
"""


def _run(mpy, tmp_path, body):
    return mpy.run(PRELUDE % str(tmp_path / "config.json") + "sealed = C.encode(cfg, KEY)\n" + body)


def test_sealed_file_loads_and_forgeries_are_refused_without_fallback(mpy, tmp_path):
    r = _run(
        mpy,
        tmp_path,
        """
write(P, sealed); write(P + ".lkg", sealed)
ok = outcome(C.load(P, key=KEY))
write(P, forged(sealed))
edited = outcome(C.load(P, key=KEY))
write(P, C.encode(cfg))
unsealed = outcome(C.load(P, key=KEY))
write(P, sealed)  # sealed by another device's key
wrong = outcome(C.load(P, key=auth.audit_key(b"x" * 32, "dev-7")))
write(P, sealed[:-3] + b"999")  # an accident: CRC mismatch, the sealed copy is used
accident = outcome(C.load(P, key=KEY))
write(P, sealed); write(P + ".lkg", C.encode(cfg))
bad_lkg_unused = outcome(C.load(P, key=KEY))
lkg_resealed = open(P + ".lkg", "rb").read() == sealed
write(P, sealed)
dev = [outcome(C.load(P)), C.decode(forged(sealed))[0]["pid.kp"] == 2 * cfg["pid.kp"]]
result([ok, edited, unsealed, wrong, accident, bad_lkg_unused, lkg_resealed, dev,
        len(sealed.split(b"\\n")[0].split(b" "))])
""",
    )
    ok, edited, unsealed, wrong, accident, bad_lkg_unused, lkg_resealed, dev, fields = r
    assert ok == [True, None, None] and fields == 5
    for got, why in (
        (edited, "MAC does not verify"),
        (unsealed, "no MAC"),
        (wrong, "MAC does not"),
    ):
        assert got[:2] == [False, 2], got  # unusable: no config at all, no fallback
        assert len(got[2]) == 1 and why in got[2][0] and "authenticated save" in got[2][0], got
    assert accident[:2] == [True, 1] and "CRC mismatch" in accident[2][0]
    # a valid primary rewrites an unsealed last-known-good copy with the MAC
    assert bad_lkg_unused == [True, None, None] and lkg_resealed
    assert dev == [[True, None, None], True]


def test_fallback_copy_is_checked_too(mpy, tmp_path):
    r = _run(
        mpy,
        tmp_path,
        """
write(P, b"CRYOCFG junk")
write(P + ".lkg", forged(sealed))
result(outcome(C.load(P, key=KEY)))
""",
    )
    assert r[:2] == [False, 2] and "config.json.lkg: refused" in r[2][0], r


def test_save_seals_with_the_key(mpy, tmp_path):
    r = _run(
        mpy,
        tmp_path,
        """
C.save(cfg, P, KEY)
a = outcome(C.load(P, key=KEY))
C.save(cfg, P)
b = outcome(C.load(P, key=KEY))
result([a, b[:2]])
""",
    )
    assert r == [[True, None, None], [False, 2]]
