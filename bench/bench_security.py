"""Device security: authentication per command, signature check per update.

Figures, under each MicroPython build at hand (the venv's unix port and the
32-bit float32 build, ``$MICROPYTHON32``): the time for the channel to
execute one ``set`` from frame to reply on a development channel (no
authentication: the peer), and on a provisioned channel the ``challenge``
plus the authenticated ``set`` (nonce from ``os.urandom``, HMAC-SHA256 over
the frame, the back-off count written to and cleared on the filesystem
before and after: two small file writes, here on the host's filesystem,
not littlefs). Printed as the ratio against the peer in the same run. The
host side (deriving the PIN verifier, 2000 SHA-256 rounds, CPython) is
measured beside it.

The Ed25519 check of a release signature (``cryo/app/ed25519.py``, pure
MicroPython: SHA-512 and curve arithmetic on big integers) on the unix
builds, and on the emulated Cortex-M3 (boards/qemu-mps2, ``-icount
shift=0``: 1 ns per instruction, so µs x 1000 = instructions), converted to
each real board's clock at one instruction per cycle (a lower bound, as in
bench_qemu). The peer is the same signature's SHA-256 of a 64 KiB image
(``hashlib``, C) measured in the same run.
"""

import os
import tempfile
import time
from pathlib import Path

import mpyrun

HERE = Path(__file__).resolve().parent
LINK = HERE.parent / "tests" / "link"

_SNIPPET = """
import json
from binascii import unhexlify
from cryo.clock import ManualClock
from cryo.link import auth
from cryo.link.channel import CommandChannel
from cryo.link.framing import encode, decode, crc32
from cryo.storage import roles
from link_fakes import FakeController, ScriptStream, SinkStream
D = %r
roles.set_pin(D + "/roles.txt", "engineer", "4711", salt=b"s" * 16)
with open(D + "/auth.txt", "w") as f:
    f.write(auth.provisioning_text("b", b"k" * 32, b"a" * 32))
clock = ManualClock(0)
ctl = FakeController(clock)
sin = ScriptStream()
sout = SinkStream()
dev = CommandChannel(ctl, sin, sout)
a = auth.load(clock, D + "/auth.txt", D + "/roles.txt", D + "/auth.fails")
prov = CommandChannel(ctl, sin, sout, auth=a)
key = roles.verifier(b"s" * 16, "4711", roles.ITERATIONS)
plain = encode({"id": 1, "cmd": "set", "name": "pid.kp", "value": 0.5, "role": "engineer"})
chal = encode({"id": 2, "cmd": "challenge", "role": "engineer"})
def run(ch, frame):
    sin.feed(frame)
    while not ch.poll():
        pass
    while ch.poll():
        pass
    return decode(sout.lines()[-1], None, 2048)
def unauth():
    run(dev, plain)
def authed():
    c = run(prov, chal)
    body = json.dumps({"id": 3, "cmd": "set", "name": "pid.kp", "value": 0.5,
                       "role": "engineer", "v": 1}).encode()
    s = auth.sign_payload(body, key, unhexlify(c["nonce"]))
    r = run(prov, s + (b"*%%08x\\n" %% crc32(s)))
    assert r["ok"], r
t_plain = time_us(unauth, 200)
t_auth = time_us(authed, 200)
result({"plain": t_plain[len(t_plain) // 2], "auth": t_auth[len(t_auth) // 2],
        "auth_p99": t_auth[len(t_auth) * 99 // 100], "accepted": a.accepted})
"""


_SIG_SNIPPET = """
import hashlib, time
from binascii import unhexlify
PUB = unhexlify(%r)
SIG = unhexlify(%r)
MSG = unhexlify(%r)
t = []
for _ in range(%d):
    t0 = time.ticks_us()
    ok = verify(PUB, MSG, SIG)
    t.append(time.ticks_diff(time.ticks_us(), t0))
img = bytes(1024)
t0 = time.ticks_us()
h = hashlib.sha256()
for _ in range(64):
    h.update(img)
h.digest()
peer = time.ticks_diff(time.ticks_us(), t0)
t.sort()
print("@@SIG@@", ok and not verify(PUB, MSG + b"x", SIG), t[len(t) // 2], peer)
"""


def _signature():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = Ed25519PrivateKey.generate()
    pub = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    msg = bytes(range(32))  # a manifest's SHA-256 is what gets signed
    return pub.hex(), k.sign(msg).hex(), msg.hex()


def _parse_sig(out):
    line = next(ln for ln in out.splitlines() if ln.startswith("@@SIG@@"))
    ok, med, peer = line.split()[1:]
    return ok == "True", int(med), int(peer)


def _sig_unix(exe, sig):
    old = os.environ.get("MICROPYTHON")
    os.environ["MICROPYTHON"] = exe
    try:
        code = "from cryo.app.ed25519 import verify\n" + _SIG_SNIPPET % (*sig, 5)
        proc = mpyrun.run_raw(code, timeout=300)
        return _parse_sig(proc.stdout)
    finally:
        if old is None:
            os.environ.pop("MICROPYTHON", None)
        else:
            os.environ["MICROPYTHON"] = old


def _sig_qemu(sig):
    import sys

    sys.path.insert(0, str(HERE.parent / "tests" / "boards"))
    import qemu_board as Q

    src = (HERE.parent / "firmware" / "cryo" / "app" / "ed25519.py").read_text()
    with Q.QemuBoard() as b:
        return _parse_sig(b.exec(src + _SIG_SNIPPET % (*sig, 1), timeout=600))


def _device(exe):
    old = os.environ.get("MICROPYTHON")
    os.environ["MICROPYTHON"] = exe
    try:
        with tempfile.TemporaryDirectory() as d:
            return mpyrun.run(_SNIPPET % d, extra_path=[LINK], timeout=300)
    finally:
        if old is None:
            os.environ.pop("MICROPYTHON", None)
        else:
            os.environ["MICROPYTHON"] = old


def _host_verifier_ms():
    from host_tools import fwimport  # noqa: F401  (firmware/ importable)

    # isort: split
    from cryo.storage import roles

    t0 = time.perf_counter()
    for _ in range(20):
        roles.verifier(b"s" * 16, "4711", roles.ITERATIONS)
    return (time.perf_counter() - t0) / 20 * 1000


def run():
    rows = []
    builds = [("unix port", mpyrun.micropython_exe())]
    b32 = os.environ.get("MICROPYTHON32")
    if b32 and Path(b32).exists():
        builds.append(("32-bit float32 build", b32))
    for name, exe in builds:
        r = _device(exe)
        rows.append((f"{name}: set, development channel (peer), median", f"{r['plain']} µs"))
        rows.append(
            (
                f"{name}: challenge + authenticated set, median / p99",
                f"{r['auth']} / {r['auth_p99']} µs ({r['auth'] / r['plain']:.1f}× the peer)",
            )
        )
    rows.append(
        ("host: PIN verifier (2000 SHA-256 rounds, CPython)", f"{_host_verifier_ms():.2f} ms")
    )
    sig = _signature()
    for name, exe in builds:
        ok, med, peer = _sig_unix(exe, sig)
        rows.append(
            (
                f"{name}: Ed25519 signature check, median",
                f"{med / 1000:.1f} ms ({med / peer:.0f}× SHA-256 of 64 KiB; correct: {ok})",
            )
        )
    try:
        ok, us, peer = _sig_qemu(sig)
    except (RuntimeError, OSError) as e:
        rows.append(("emulated Cortex-M3: Ed25519 signature check", f"not measured: {e}"))
        return rows
    instr = us * 1000
    rows.append(
        (
            "emulated Cortex-M3: Ed25519 signature check",
            f"{instr / 1e6:.0f} M instructions ({us / peer:.0f}× SHA-256 of 64 KiB; correct: {ok})",
        )
    )
    from bench_qemu import CLOCKS_MHZ

    for board, mhz in CLOCKS_MHZ:
        rows.append((f"  at {board} clock, lower bound", f"{instr / mhz / 1e6:.2f} s"))
    return rows


if __name__ == "__main__":
    for k, v in run():
        print(f"{k:<60} {v}")
