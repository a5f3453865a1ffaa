"""Deploying the firmware app to a board over an open ``Session`` (``cryo flash``).

In order:

1. probe the board: MicroPython version, ``.mpy`` ABI, device serial, key,
   active slot; refuse a version/ABI mismatch before touching anything;
2. compile ``firmware/`` (and ``boards/<name>/``) with mpy-cross for the
   board's architecture (cached by source hash, so an unchanged rebuild is
   free) and write a manifest: SHA-256 and size of every file, HMAC-SHA256
   under the per-device key (provisioned on first flash, kept in the host
   keystore ``$CRYO_KEYSTORE`` or ``~/.config/cryo/keys/<serial>.key``);
3. if the active slot already holds exactly this manifest and verifies:
   "up to date", nothing written (the ≤ 1 s redeploy);
4. otherwise fill the *inactive* slot: files already right there are kept,
   files the active slot has right are copied on the device, only the rest
   crosses the link; stale files are removed; the manifest is written last;
5. the device verifies the new slot with the same code boot uses
   (``cryo.app.slots.verify_slot``: HMAC + every SHA-256);
6. ``app/active`` is replaced by rename (the atomic switch: before it the
   previous firmware boots, after it the new one), the deploy is appended
   to the audit trail, and the board is reset.

Compiling is ``host_tools.build``, the device itself
``host_tools.device.probe``; the command is ``host_tools.commands.flash``.
"""

from __future__ import annotations

import ast
import hashlib
import os
import secrets
import time
from pathlib import Path

from host_tools import (
    FIRMWARE_DIR,
    fwimport,  # noqa: F401  (firmware/ importable, micropython shim)
)
from host_tools.build import build, check_abi, manifest_files
from host_tools.device.probe import device_serial, probe, record_audit, reset_board, rtc_now
from host_tools.errors import AccessDenied, DeviceError

# isort: split
from cryo import paths


# -- keys ----------------------------------------------------------------
def keystore() -> Path:
    env = os.environ.get("CRYO_KEYSTORE")
    return Path(env) if env else Path.home() / ".config" / "cryo" / "keys"


def load_key(serial: str) -> bytes | None:
    p = keystore() / f"{serial}.key"
    return p.read_bytes() if p.exists() else None


def save_key(serial: str, key: bytes):
    d = keystore()
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{serial}.key"
    tmp = p.with_suffix(".tmp")
    tmp.write_bytes(key)
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


# -- deploy --------------------------------------------------------------
class Plan:
    """What a deploy will do (also what ``--dry-run`` prints)."""

    def __init__(self):
        self.slot = None
        self.transfer: list[str] = []
        self.local: list[str] = []
        self.keep: list[str] = []
        self.remove: list[str] = []
        self.root: list[str] = []
        self.up_to_date = False
        self.provision = False

    def as_dict(self):
        return {
            "slot": self.slot,
            "transfer": self.transfer,
            "local_copy": self.local,
            "unchanged": len(self.keep),
            "remove": self.remove,
            "boot_layer": self.root,
            "up_to_date": self.up_to_date,
            "provision_key": self.provision,
        }


def _slot_path(slot, rel):
    return f"{paths.slot_dir(slot)}/{rel}"


def deploy(
    session,
    board: str = "sim",
    *,
    firmware_dir: Path = FIRMWARE_DIR,
    dry_run: bool = False,
    progress=None,
    reset: bool = True,
    audit: bool = True,
    build_result: dict | None = None,
    log=print,
    signer=None,
) -> dict:
    """Deploy the app over an open :class:`host_tools.device.connect.Session`."""
    from cryo.app import manifest

    last = [time.monotonic()]

    def keepalive():
        # compiling takes seconds on a cold cache: keep the board's watchdog fed
        if time.monotonic() - last[0] > 0.5:
            session.exec("pass")
            last[0] = time.monotonic()

    b = build_result or build(board, firmware_dir, keepalive)
    info = probe(session)
    check_abi(info, b["meta"], b["profile"])
    plan = Plan()

    serial = device_serial(info)
    if serial is None:
        serial = "SIM-" + secrets.token_hex(4).upper()
        if not dry_run:
            session.exec(
                f"_cry_mk({paths.APP_DIR!r})\nf=open({paths.APP_SERIAL!r},'w')\n"
                f"f.write({serial!r})\nf.close()"
            )
    host_key = load_key(serial)
    if info.get("key_fp") is None:
        plan.provision = True
        key = host_key or secrets.token_bytes(32)
    else:
        if host_key is None:
            raise AccessDenied(
                f"device {serial} was provisioned with a key this host does not hold: copy "
                f"its key file into {keystore()} (as {serial}.key) to deploy to it"
            )
        if key_fingerprint(host_key) != info["key_fp"]:
            raise AccessDenied(
                f"the key for device {serial} in {keystore()} does not match the device's key"
            )
        key = host_key

    files = manifest_files(b["slot"])
    text = manifest.sign(key, b["meta"], files)
    # a device holding a release key installs only signed, not older releases
    from host_tools.keys import sign_release

    sig = sign_release(info, text, signer)
    active = (info.get("active") or "").strip() or None
    if active not in ("a", "b"):
        active = None

    # Unchanged redeploy: the active slot already holds this exact manifest.
    old_text = None
    if active:
        try:
            current = session.read_file(_slot_path(active, "manifest"))  # streamed: bounded RAM
            old_text = current.decode(errors="replace")
        except DeviceError:
            current = None
    if active and not plan.provision:
        if current == text.encode():
            shas = session.eval(f"_cry_shas({[_slot_path(active, p) for p in sorted(files)]!r})")
            if all(shas[_slot_path(active, p)] == files[p][0] for p in files):
                plan.up_to_date = True
                plan.slot = active
                plan.keep = sorted(files)
    if not plan.up_to_date:
        target = "b" if active == "a" else "a"
        plan.slot = target
        want_t = [_slot_path(target, p) for p in sorted(files)]
        have_t = session.eval(f"_cry_shas({want_t!r})")
        have_a = (
            session.eval(f"_cry_shas({[_slot_path(active, p) for p in sorted(files)]!r})")
            if active
            else {}
        )
        for p in sorted(files):
            sha = files[p][0]
            if have_t.get(_slot_path(target, p)) == sha:
                plan.keep.append(p)
            elif active and have_a.get(_slot_path(active, p)) == sha:
                plan.local.append(p)
            else:
                plan.transfer.append(p)
        existing = session.eval(f"_cry_walk({paths.slot_dir(target)!r})")
        plan.remove = sorted(
            p for p in existing if p not in files and p != "manifest" and not p.endswith(".tmp")
        )
    root_shas = session.eval(f"_cry_shas({sorted(b['root'])!r})")
    plan.root = sorted(
        p for p, data in b["root"].items() if root_shas.get(p) != hashlib.sha256(data).hexdigest()
    )
    result = plan.as_dict()
    result.update(
        serial=serial,
        version=b["meta"]["version"],
        previous_slot=active,
        bytes=sum(len(b["slot"][p]) for p in plan.transfer)
        + sum(len(b["root"][p]) for p in plan.root),
    )
    if dry_run:
        result["dry_run"] = True
        return result
    if plan.up_to_date and not plan.root:
        return result

    if progress is not None and hasattr(progress, "start"):
        progress.start(result["bytes"])  # the bar's total, now that the plan is known
    if plan.provision:
        import base64

        tmp = paths.APP_KEY + ".tmp"
        session.exec(f"_cry_mk({paths.APP_DIR!r})")
        session.exec(
            f"import binascii\nf=open({tmp!r},'wb')\n"
            f"f.write(binascii.a2b_base64({base64.b64encode(key).decode()!r}))\nf.close()\n"
            f"os.rename({tmp!r},{paths.APP_KEY!r})"
        )
        save_key(serial, key)
    # Boot layer first (each file replaced by rename); it must verify the slot.
    for p in plan.root:
        session.write_file(p + ".tmp", b["root"][p], progress=progress)
        session.exec(f"os.rename({p + '.tmp'!r}, {p!r})")
    if not plan.up_to_date:
        t = plan.slot
        mf = _slot_path(t, "manifest")
        session.makedirs(paths.slot_dir(t))
        session.exec(f"_cry_rm({mf!r})")  # slot is unauthentic until done
        for p in plan.remove:
            session.exec(f"_cry_rm({_slot_path(t, p)!r})")
        for p in plan.local:
            d = _slot_path(t, p).rsplit("/", 1)[0]
            session.exec(
                f"_cry_mk({d!r})\n_cry_cp({_slot_path(active, p)!r}, {_slot_path(t, p)!r})"
            )
            if progress:
                progress(0)
        for p in plan.transfer:
            session.write_file(_slot_path(t, p), b["slot"][p], progress=progress)
        if sig is not None:
            session.write_file(_slot_path(t, "manifest.sig"), sig.encode())
        session.write_file(mf + ".tmp", text.encode())
        session.exec(f"os.rename({mf + '.tmp'!r}, {mf!r})")
        problems = session.eval(
            f"__import__('cryo.app.slots').app.slots.verify_slot('', {t!r}, "
            "__import__('cryo.app.slots').app.slots.device_key(''))"
        )
        if problems:
            raise DeviceError(
                "the new app did not verify on the device (previous firmware kept): "
                + "; ".join(problems[:3])
            )
        if info.get("release"):  # the boot layer's check, before the switch
            code = f"print(repr(__import__('cryo.app.release').app.release.install('', {t!r})))"
            problems = ast.literal_eval(session.exec(code, timeout=120).decode().strip())
            if problems:
                raise AccessDenied(
                    "the device refused the release (previous firmware kept): "
                    + "; ".join(problems[:3])
                )
        tmp = paths.APP_ACTIVE + ".tmp"
        session.exec(
            f"f=open({tmp!r},'w')\nf.write({t!r})\nf.close()\n"
            f"os.rename({tmp!r},{paths.APP_ACTIVE!r})"
        )
        result["switched"] = True
    if audit:
        result["audit"] = record_deploy(session, plan.slot, b["meta"], text, old_text)
    if reset:
        result["reset"] = reset_board(session)
    return result


def record_deploy(session, slot: str, meta: dict, text: str, old_text: str | None = None) -> str:
    """Append the deploy to the device's audit trail (cryo.storage.audit.AuditTrail).

    Entry: kind "deploy", role service, subject = firmware version, old/new
    = SHA-256 of the previous and the new manifest.
    """
    new_hash = hashlib.sha256(text.encode()).hexdigest()
    old_hash = hashlib.sha256(old_text.encode()).hexdigest() if old_text else None
    call = (
        f"_t.firmware_deploy({rtc_now()}, 'service', {meta['version']!r}, "
        f"{old_hash!r}, {new_hash!r})"
    )
    try:
        recorded = record_audit(session, [call], slot)
    except DeviceError as e:
        return f"failed: {e}"
    return "recorded" if recorded else "audit trail not available in this firmware"
