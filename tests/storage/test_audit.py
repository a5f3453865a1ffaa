"""Audit trail: hash chain detects tampering, truncation and gaps."""

import pytest

from cryo.storage.audit import GENESIS, AuditTrail, line_hash, verify_bytes


@pytest.fixture
def trail(tmp_path):
    a = AuditTrail(str(tmp_path / "audit.log"))
    a.config_change(100, "service", "limits.floor_c", -60.0, -70.0)
    a.firmware_deploy(200, "service", "0.1.0", "aa" * 32, "bb" * 32)
    a.fault_ack(300, "operator", "OVERFREEZE", "tissue -71 degC")
    a.config_change(400, "operator", "protocol.cycles", 2, 3)
    return a


def _lines(a):
    with open(a.path, "rb") as f:
        return f.read().split(b"\n")[:-1]


def _write(a, lines):
    with open(a.path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")


def test_intact_chain_verifies_and_links(trail):
    assert trail.verify() == []
    lines = _lines(trail)
    assert len(lines) == 4
    assert lines[0].endswith(('"%s"]' % GENESIS).encode())
    assert lines[1].endswith(('"%s"]' % line_hash(lines[0])).encode())
    e = trail.entries()
    assert e[0][:7] == [1, 100, "config", "service", "limits.floor_c", -60.0, -70.0]
    assert e[2][2:5] == ["ack", "operator", "OVERFREEZE"]


def test_reopen_continues_the_chain(trail):
    again = AuditTrail(trail.path)
    assert again.count == 4
    again.note(500, "engineer", "valve replaced")
    assert again.verify() == [] and len(_lines(again)) == 5


def test_edited_entry_is_detected(trail):
    lines = _lines(trail)
    lines[1] = lines[1].replace(b"0.1.0", b"0.1.9")
    _write(trail, lines)
    assert trail.verify() == [
        "line 3: entry 3 does not chain to the previous entry (edited, removed or inserted)"
    ]


def test_removed_entry_is_a_gap(trail):
    lines = _lines(trail)
    del lines[1]
    _write(trail, lines)
    probs = trail.verify()
    assert "line 2: entry 3 where 2 was expected (gap or reorder)" in probs
    assert any("does not chain" in p for p in probs)


def test_truncation_is_detected_against_the_anchor(trail):
    anchor = (trail.count, trail.head)
    _write(trail, _lines(trail)[:2])
    probs = trail.verify(anchor)
    assert probs == ["truncated: anchor entry 4 is missing (trail ends at 2)"]
    # the .head file written at each append catches it too
    assert trail.verify() == ["truncated: anchor entry 4 is missing (trail ends at 2)"]


def test_garbage_and_torn_tail_are_reported(trail):
    data = open(trail.path, "rb").read()
    assert verify_bytes(data + b'[5,500,"no') == [
        "torn or unterminated entry at the end (10 bytes)"
    ]
    lines = _lines(trail)
    lines.insert(2, b"not json")
    assert "line 3: not an audit entry (tampered or torn)" in verify_bytes(
        b"\n".join(lines) + b"\n"
    )


def test_same_chain_on_micropython(mpy, tmp_path):
    path = str(tmp_path / "mp_audit.log")
    n = mpy.run(
        """
from cryo.storage.audit import AuditTrail
a = AuditTrail(%r)
a.config_change(100, 'service', 'limits.floor_c', -60.0, -70.0)
a.fault_ack(300, 'operator', 'OVERFREEZE', None)
result([a.count, a.head, a.verify()])
"""
        % path
    )
    host = AuditTrail(path)
    assert n == [2, host.head, []]
    assert host.verify() == []


def test_generic_append_from_the_core(tmp_path):
    a = AuditTrail(str(tmp_path / "audit.log"), rtc=lambda: 777)
    a.append({"what": "set", "role": "operator", "name": "protocol.cycles", "old": 2, "new": 3})
    a.append({"what": "ack", "role": "service", "cleared": ["OVERFREEZE"], "still": []})
    a.append({"kind": "service_mode", "role": "service", "time_s": 5})
    e = a.entries()
    assert e[0][:7] == [1, 777, "set", "operator", "protocol.cycles", 2, 3]
    assert e[1][:7] == [
        2,
        777,
        "ack",
        "service",
        {"cleared": ["OVERFREEZE"], "still": []},
        None,
        None,
    ]
    assert e[2][:5] == [3, 5, "service_mode", "service", None]
    assert a.verify() == []
