"""Power cut at every flash operation during config writes and audit appends.

Real MicroPython, emulated NOR flash, littlefs; clean and torn cuts.
"""

from pathlib import Path

HERE = str(Path(__file__).resolve().parent)

COMMON = """
from storage_rig import *
from cryo.storage import config as C, schema as S
from cryo.storage.audit import AuditTrail
P = '/flash/config'
OLD = S.defaults()
NEW = S.defaults()
NEW['protocol.target_c'] = -45.0
NEW['pid.kp'] = 0.07
"""


def _run(mpy, body):
    return mpy.run(COMMON + body, extra_path=[HERE], timeout=300)


def test_power_cut_at_every_op_of_config_save_gives_old_or_new(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
C.save(OLD, P)
C.load(P)                      # booted once: last known good = OLD
base = snapshot(dev)

def action(state):
    C.save(NEW, P)
    state['saved'] = True

def check(state, cut, tear, died):
    cfg, fault = C.load(P)
    if fault is not None:
        return 'fault after cut: %s' % fault
    if state.get('saved') and cfg != NEW:
        return 'saved config lost'
    if cfg != OLD and cfg != NEW:
        return 'neither old nor new'
    outcome[0 if cfg == OLD else 1] += 1
    C.save(OLD, P)             # still writable
    cfg2, f2 = C.load(P)
    if cfg2 != OLD or f2 is not None:
        return 'not writable after reboot'
    return None

outcome = [0, 0]
n, _ = count_ops(base, action)
tried, failures = cut_sweep(base, action, check, n)
result([n, tried, failures, outcome])
""",
    )
    n, tried, failures, outcome = r
    assert failures == []
    assert n >= 3 and tried == 2 * (n + 1)
    assert outcome[0] > 0 and outcome[1] > 0  # both sides of the rename were cut


def test_power_cut_while_boot_refreshes_last_known_good(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
C.save(OLD, P)
C.load(P)
C.save(NEW, P)                 # new primary; LKG still OLD until the next boot
base = snapshot(dev)

def action(state):
    state['cfg'] = C.load(P)

def check(state, cut, tear, died):
    cfg, fault = C.load(P)
    if fault is not None or cfg != NEW:
        return 'boot after cut: %r %s' % (cfg == OLD, fault)
    lkg, _ = C.decode(open(P + '.lkg', 'rb').read())
    if lkg != NEW:
        return 'lkg not refreshed'
    return None

n, _ = count_ops(base, action)
tried, failures = cut_sweep(base, action, check, n)
result([n, tried, failures])
""",
    )
    n, tried, failures = r
    assert failures == [] and n >= 2


def test_corrupt_config_on_flash_falls_back_with_fault(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
C.save(OLD, P)
C.load(P)
with open(P, 'r+b') as f:      # a flipped bit in the stored body
    f.seek(40)
    b = f.read(1)
    f.seek(40)
    f.write(bytes([b[0] ^ 4]))
cfg, fault = C.load(P)
result([cfg == OLD, fault.code, fault.messages])
""",
    )
    same, code, msgs = r
    assert same and code == 1 and "CRC mismatch" in msgs[0]


def test_power_cut_at_every_op_of_audit_append(mpy):
    r = _run(
        mpy,
        """
A = '/flash/audit.log'
dev = fresh()
a = AuditTrail(A)
a.config_change(1, 'service', 'limits.floor_c', -60.0, -70.0)
a.firmware_deploy(2, 'service', '0.1.0', 'aa', 'bb')
base = snapshot(dev)

def action(state):
    a = AuditTrail(A)
    state['n'] = a.count
    a.fault_ack(3, 'operator', 'OVERFREEZE', 'x')
    state['n'] = a.count
    a.config_change(4, 'operator', 'protocol.cycles', 2, 3)
    state['n'] = a.count
    a.note(5, 'engineer', 'probe swapped')
    state['n'] = a.count

n, _ = count_ops(base, action)
restore(base)
action({})
REF = AuditTrail(A).entries()
unmount()

def check(state, cut, tear, died):
    a = AuditTrail(A)
    probs = a.verify()
    if probs:
        return 'verify: %r' % probs
    got = a.entries()
    committed = state.get('n', 2)
    if got != REF[:len(got)]:
        return 'entries differ from what was written'
    if len(got) < committed:
        return 'committed entry lost (%d < %d)' % (len(got), committed)
    a.note(9, 'service', 'after reboot')
    if AuditTrail(A).verify() != [] or AuditTrail(A).count != len(got) + 1:
        return 'not appendable after reboot'
    return None

tried, failures = cut_sweep(base, action, check, n)
result([n, tried, failures, len(REF)])
""",
    )
    n, tried, failures, nref = r
    assert failures == []
    assert nref == 5 and n >= 6 and tried == 2 * (n + 1)
