"""SafetyState (cryo.storage.safety_state): two CRC'd slots that survive power cuts.

Real MicroPython on the emulated NOR flash with littlefs for the
filesystem-level cuts; the byte-level tears write the torn file directly,
so they hold on a filesystem that does not make writes atomic.
"""

from pathlib import Path

HERE = str(Path(__file__).resolve().parent)

COMMON = """
from storage_rig import *
import storage_rig
from cryo.storage.safety_state import SafetyState, FLAG_TREATING, FLAG_SITE_FROZEN
from cryo.storage import records as R
from cryo.storage import device_records as D
from cryo.crc import crc32_into
P = '/flash/safety.bin'

def raw():
    return read_file(P)

def put(data):
    write_file(P, data)

def plain(d):
    # the dict as a sorted list: comparable, JSON-friendly
    return None if d is None else sorted(d.items())
"""


def _run(mpy, body):
    return mpy.run(COMMON + body, extra_path=[HERE], timeout=300)


def test_round_trip_alternate_slots_and_factory_new(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
s = SafetyState(P)
out = [s.load()]                               # factory new: no file
out.append(s.save(0x8005, -1234, FLAG_TREATING | FLAG_SITE_FROZEN, 7, D.RESET_WDT))
a1 = raw()
out.append(s.save(0x8005, -2000, FLAG_SITE_FROZEN))  # boots/last_reset kept
a2 = raw()
out.append(s.save(0, 0, 0))
a3 = raw()
remount()
got = SafetyState(P).load()
slots = []
for img in (a1, a2, a3):
    slots.append([D.safety_slot_problem(img, 0), D.safety_slot_problem(img, 28), len(img)])
seqs = [D.decode_safety_state(a3, 0)['seq'], D.decode_safety_state(a3, 28)['seq']]
result([out, plain(got), slots, seqs, a1[:28] == a2[:28], a2[28:] == a3[28:]])
""",
    )
    out, got, slots, seqs, a_kept, b_kept = r
    assert out == [None, True, True, True]
    assert dict(got) == {
        "latched": 0,
        "site_dose": 0,
        "flags": 0,
        "boots": 7,
        "last_reset": 3,
        "valve_cycles": 0,
        "seq": 3,
    }
    # 1st save: slot A (B erased); 2nd: B; 3rd: A again; the file stays 56 bytes
    assert slots == [[None, "erased", 56], [None, None, 56], [None, None, 56]]
    assert seqs == [3, 2]
    assert a_kept and b_kept  # each save left the other slot's bytes alone


def test_save_writes_one_slot_once_and_skips_unchanged_values(mpy):
    r = _run(
        mpy,
        """
class CountedState(SafetyState):
    def __init__(self, path):
        SafetyState.__init__(self, path)
        self.log = []
    def _open(self, path, mode):
        return CountedFile.open(path, mode, self.log)

dev = fresh()
s = CountedState(P)
s.save(1, 10, 0, 1, 1)
s.load()
s.log = []
before = raw()
ops = dev.ops
ok1 = s.save(3, 10, 0)
one = s.log
ops1 = dev.ops - ops
after = raw()
s.log = []
ops = dev.ops
ok2 = s.save(3, 10, 0)                         # nothing changed
ok3 = s.save(3, 10, 0, 1, 1)                   # same boots/reset given explicitly
result([ok1, one, ops1, ok2, ok3, s.log, dev.ops - ops, before[:28] == after[:28],
        before[28:] != after[28:]])
""",
    )
    ok1, one, ops1, ok2, ok3, log2, ops2, a_same, b_changed = r
    assert ok1 and ok2 and ok3
    assert one == [["open", "r+b"], ["seek", 28], ["write", 28], ["close"]]  # nothing else
    assert ops1 > 0 and a_same and b_changed
    assert log2 == [] and ops2 == 0  # unchanged values: no file access, no flash operation


def test_power_cut_at_every_flash_op_of_a_save_gives_old_or_new(mpy):
    r = _run(
        mpy,
        """
OLD = (0x1, 500, FLAG_TREATING, 4, D.RESET_POWER)
NEW = (0x9, 800, FLAG_TREATING | FLAG_SITE_FROZEN, 4, D.RESET_POWER)
NEWER = (0x0, 0, 0, 5, D.RESET_SOFT)

def vals(d):
    return (d['latched'], d['site_dose'], d['flags'], d['boots'], d['last_reset'])

outcome = [0, 0]
failures_all = []
for first in (False, True):
    dev = fresh()
    s = SafetyState(P)
    if not first:
        s.save(*OLD)
        s.save(*OLD[:2] + (0,))               # both slots in use
        s.save(*OLD)
    base = snapshot(dev)

    def action(state):
        s = SafetyState(P)
        s.load()
        state['ok'] = s.save(*NEW)
        state['ok2'] = s.save(*NEWER)

    def check(state, cut, tear, died):
        s = SafetyState(P)
        got = s.load()
        old = None if first else OLD
        if got is not None and got.get('lost'):
            return 'lost: %s' % s.problem
        v = None if got is None else vals(got)
        if state.get('ok2'):
            if v != NEWER:
                return 'committed NEWER not loaded: %r' % (v,)
        elif state.get('ok'):
            if v != NEW and v != NEWER:
                return 'committed NEW not loaded: %r' % (v,)
        elif v != old and v != NEW:
            return 'neither old nor new: %r' % (v,)
        outcome[0 if v == old else 1] += 1
        if not s.save(*OLD) or vals(SafetyState(P).load()) != OLD:
            return 'not writable after reboot'
        return None

    n, _ = count_ops(base, action)
    tried, failures = cut_sweep(base, action, check, n)
    failures_all += failures
result([tried, failures_all, outcome])
""",
    )
    tried, failures, outcome = r
    assert failures == []
    assert tried >= 6
    assert outcome[0] > 0 and outcome[1] > 0  # cuts before and after the commit both seen


def test_torn_write_at_every_byte_offset_loads_old_or_new(mpy):
    # A medium that tears a write: the first k bytes of the slot are new,
    # the rest still old (overwrite in place) or erased (erase, then
    # program). For every k and both slots the state loads as the old or
    # the new record - never garbage, never "lost".
    r = _run(
        mpy,
        """
dev = fresh()
s = SafetyState(P)
s.save(0x3, 111, FLAG_TREATING, 2, D.RESET_POWER)
s.save(0x3, 222, FLAG_TREATING, 2, D.RESET_POWER)
bad = []
seen = {}
for step in range(2):                          # the next save goes to slot A, then B
    s = SafetyState(P)
    old = plain(s.load())
    before = raw()
    s.save(0x7, 333 + step, FLAG_SITE_FROZEN, 2, D.RESET_HARD)
    after = raw()
    new = plain(SafetyState(P).load())
    slot = 0 if before[:28] != after[:28] else 28
    for rest in ('old', 'erased'):
        k = 0
        while k <= 28:
            img = bytearray(before)
            i = 0
            while i < 28:
                if i < k:
                    img[slot + i] = after[slot + i]
                elif rest == 'erased':
                    img[slot + i] = 0xFF
                i += 1
            put(img)
            got = plain(SafetyState(P).load())
            if got != old and got != new:
                bad.append([step, rest, k, got])
            seen[str(got == new)] = seen.get(str(got == new), 0) + 1
            k += 1
    put(after)
result([bad[:3], seen])
""",
    )
    bad, seen = r
    assert bad == []
    assert seen["True"] >= 2 and seen["False"] > 40  # the whole slot must land for "new"


def test_damaged_files_are_lost_never_clean(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
s = SafetyState(P)
s.save(0x10, 5, 0, 1, 1)
s.save(0x10, 6, 0, 1, 1)
good = raw()
out = {}
cases = {
    'empty': b'',
    'short': good[:10],
    'zeros': bytes(56),
    'erased': b'\\xff' * 56,
    'both_flipped': bytes([good[0] ^ 1]) + good[1:28] + bytes([good[28] ^ 1]) + good[29:],
    'crc_flipped': good[:24] + bytes([good[24] ^ 0x80]) + good[25:52] + bytes([good[52] ^ 1]) + good[53:],
}
for name in cases:
    put(cases[name])
    st = SafetyState(P)
    out[name] = [plain(st.load()), st.problem]
# one slot damaged: the other is used and the problem named
put(good[:28] + bytes([good[28] ^ 4]) + good[29:])
st = SafetyState(P)
one = [plain(st.load()), st.problem]
# a lost state is written again even with the default values
put(b'\\x00' * 7)
st = SafetyState(P)
st.load()
again = [st.save(0, 0, 0, 0, 0), plain(SafetyState(P).load())]
# a future layout version is not read as this one
img = bytearray(good)
img[15] = 3
img[43] = 3
crc32_into(img, 0, 24, 24)
crc32_into(img, 28, 24, 52)
put(img)
st = SafetyState(P)
ver = [plain(st.load()), st.problem]
result([out, one, again, ver])
""",
    )
    out, one, again, ver = r
    lost = [
        ["boots", 0],
        ["flags", 0],
        ["last_reset", 0],
        ["latched", 0],
        ["lost", True],
        ["seq", 0],
        ["site_dose", 0],
        ["valve_cycles", 0],
    ]
    for name, (state, problem) in out.items():
        assert state == lost, name
        assert "no valid slot" in problem, name
    assert "A: short, B: short" in out["short"][1] and "(0 bytes)" in out["empty"][1]
    assert "A: crc, B: crc" in out["both_flipped"][1]
    assert "A: erased, B: erased" in out["erased"][1]
    state, problem = one
    assert dict(state)["site_dose"] == 5 and dict(state)["seq"] == 1
    assert problem == "/flash/safety.bin: slot B crc, used slot A"
    assert again[0] is True and dict(again[1])["seq"] == 1 and "lost" not in dict(again[1])
    assert ver[1].endswith("(A: version 3, B: version 3)")


def test_save_never_raises_oserror_and_a_retry_keeps_the_good_slot(mpy):
    r = _run(
        mpy,
        """
dev = fresh()
s = SafetyState(P)
s.save(1, 1, 0, 1, 1)
s.save(2, 2, 0, 1, 1)                       # seq 2 in slot B; next save -> slot A
dev.cut_power_after(0)
failed = s.save(3, 3, 0)                    # PowerCut is an OSError: False, no raise
unmount()
dev = dev.reboot()
mount(dev)
# the same object, after power returns (the controller keeps running on a
# brown-out): the retry goes to the same slot A, never over slot B
retry = s.save(4, 4, 0)
got = plain(SafetyState(P).load())
img = raw()
os.remove(P)                                # removed behind its back: a new file
gone = [s.save(5, 5, 0), plain(SafetyState(P).load())]
nodir = SafetyState('/flash/no/such/dir/safety.bin')
result([failed, retry, got, D.decode_safety_state(img, 28)['seq'], nodir.save(1, 0, 0),
        nodir.problem is not None, nodir.load(), gone])
""",
    )
    failed, retry, got, b_seq, nodir_save, nodir_problem, nodir_load, gone = r
    assert gone[0] is True and dict(gone[1])["latched"] == 5 and dict(gone[1])["seq"] == 4
    assert failed is False and retry is True
    assert dict(got)["latched"] == 4 and dict(got)["seq"] == 3
    assert b_seq == 2  # the last good record was not touched by the failed save or its retry
    assert nodir_save is False and nodir_problem and nodir_load is None


def test_bad_arguments_are_named(tmp_path):
    import pytest

    from cryo.storage.safety_state import SafetyState

    s = SafetyState(str(tmp_path / "safety.bin"))
    with pytest.raises(ValueError, match=r"latched = -1: allowed integers 0\.\.4294967295"):
        s.save(-1, 0, 0)
    with pytest.raises(ValueError, match=r"flags = 65536: allowed integers 0\.\.65535"):
        s.save(0, 0, 0x10000)
    with pytest.raises(ValueError, match=r"last_reset = 256"):
        s.save(0, 0, 0, 1, 256)
    assert not (tmp_path / "safety.bin").exists()  # nothing written on a refused call
    assert s.save(0, 2**40, 0, 1, 1) is True  # the dose saturates (conservative)
    assert s.load()["site_dose"] == 2**31 - 1


def test_valve_cycles_round_trip_and_a_layout_1_file_is_read_then_rewritten(mpy):
    """A firmware update keeps the latches: a 48-byte layout-1 file (written
    before the valve-cycle count) loads with ``valve_cycles`` 0, and the next
    save replaces it with a layout-2 file atomically (tmp + rename)."""
    r = _run(
        mpy,
        """
import struct
dev = fresh()
# a layout-1 file as the previous firmware wrote it: slot A seq 4, slot B seq 5
img = bytearray(48)
for i, (lat, seq) in enumerate(((0x5, 4), (0x9, 5))):
    struct.pack_into(D.SAFETY_STATE_V1_FMT, img, i * 24, lat, -77, FLAG_SITE_FROZEN, 12,
                     D.RESET_WDT, 1, seq, 0)
    crc32_into(img, i * 24, 20, i * 24 + 20)
put(img)
s = SafetyState(P)
old = plain(s.load())
problem = s.problem
ok = s.save(0x9, -77, FLAG_SITE_FROZEN, valve_cycles=123456)
new = raw()
got = plain(SafetyState(P).load())
same = s.save(0x9, -77, FLAG_SITE_FROZEN, valve_cycles=123456)
result([old, problem, ok, len(new), D.safety_slot_problem(new, 0), got, same])
""",
    )
    old, problem, ok, size, slot_a, got, same = r
    old, got = dict(old), dict(got)
    assert old["latched"] == 0x9 and old["seq"] == 5 and old["valve_cycles"] == 0
    assert old["boots"] == 12 and old["site_dose"] == -77 and problem is None
    assert ok is True and size == 56 and slot_a is None
    assert got["latched"] == 0x9 and got["valve_cycles"] == 123456 and got["seq"] == 6
    assert got["boots"] == 12  # kept from the layout-1 record
    assert same is True


def test_valve_cycles_out_of_range_is_named(tmp_path):
    import pytest

    from cryo.storage.safety_state import SafetyState

    s = SafetyState(str(tmp_path / "safety.bin"))
    with pytest.raises(ValueError, match=r"valve_cycles = -1: allowed integers 0\.\.4294967295"):
        s.save(0, 0, 0, valve_cycles=-1)
