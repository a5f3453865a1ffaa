"""Record layouts (cryo.storage.records): one definition, two interpreters."""

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryo.storage import records as R
from cryo.storage import scan

HDR = dict(
    session=3,
    rtc_s=815000000,
    rtc_ms=250,
    fw_version="0.1.0",
    fw_hash=b"\x01" * 32,
    config_hash=b"\x02" * 32,
    board_id="sim-1",
    target_cc=-4000,
    thaw_cc=0,
    freeze_ds=200,
    cycles=2,
    floor_cc=-6000,
    max_freeze_ds=600,
    min_thaw_ds=300,
    sample_hz=10,
)


def test_sample_is_16_bytes_with_crc32_matching_zlib():
    buf = bytearray(16)
    R.encode_sample(buf, 0, 70001, 123456, -4567, R.code12(-123), R.code12(-500), 55, 1, 4)
    assert R.SAMPLE_SIZE == 16
    assert struct.unpack_from("<I", buf, 12)[0] == zlib.crc32(bytes(buf[:12]))
    rec = R.decode_sample(buf)
    assert rec["tissue_c"] == -45.67 and rec["aux_c"] == -12.3 and rec["setpoint_c"] == -50.0
    assert (rec["demand_pct"], rec["valve"], rec["phase"], rec["t24"]) == (55, 1, 4, 123456)
    assert rec["seq16"] == 70001 & 0xFFFF


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(0, 2**32 - 1),
    t=st.integers(0, 2**24 - 1),
    tissue=st.integers(-32767, 32767),
    aux=st.integers(-2732, 1362),
    sp=st.integers(-2732, 1362),
    demand=st.integers(0, 100),
    valve=st.integers(0, 1),
    phase=st.integers(0, 15),
)
def test_sample_round_trip(seq, t, tissue, aux, sp, demand, valve, phase):
    buf = bytearray(16)
    R.encode_sample(buf, 0, seq, t, tissue, R.code12(aux), R.code12(sp), demand, valve, phase)
    recs, rejected = scan.parse(bytes(buf), prev_seq=seq - 1)
    assert rejected == 0 and len(recs) == 1
    r = recs[0]
    assert r["seq"] == seq and r["t24"] == t and r["phase"] == phase
    assert r["tissue_c"] == pytest.approx(tissue / 100)
    assert r["aux_c"] == pytest.approx(aux / 10) and r["setpoint_c"] == pytest.approx(sp / 10)
    assert (r["demand_pct"], r["valve"]) == (demand, valve)


def test_invalid_readings_and_clamping():
    buf = bytearray(16)
    R.encode_sample(buf, 0, 1, 0, R.NO_READING16, R.code12(None), R.code12(-5000), 250, 0, 1)
    r = R.decode_sample(buf)
    assert r["tissue_c"] is None and r["aux_c"] is None
    assert r["setpoint_c"] == -273.2  # clamped to the field's low end
    assert r["demand_pct"] == 100


def test_framed_records_round_trip_and_missing_field_named():
    data = (
        R.encode(R.TYPE_SESSION, 5, HDR)
        + R.encode(R.TYPE_EVENT, 6, dict(t_ms=5, code=R.EV_PHASE, arg=4, arg2=3))
        + R.encode(
            R.TYPE_SUMMARY,
            7,
            dict(
                session=3,
                duration_ms=1,
                min_cc=-4100,
                below_target_ms=2,
                valve_open_ms=3,
                cycles_done=2,
                outcome=0,
                samples=9,
                events=1,
            ),
        )
    )
    recs, rejected = scan.parse(data)
    assert rejected == 0
    assert [r["type"] for r in recs] == ["session", "event", "summary"]
    assert recs[0]["fw_version"] == "0.1.0" and recs[0]["fw_hash"] == "01" * 32
    assert [r["seq"] for r in recs] == [5, 6, 7]
    bad = dict(HDR)
    del bad["board_id"]
    with pytest.raises(ValueError, match="session record: missing field.*board_id"):
        R.encode(R.TYPE_SESSION, 1, bad)


def _stream():
    buf = bytearray(16 * 3)
    for i in range(3):
        R.encode_sample(buf, i * 16, 11 + i, i * 100, -i, 0, 0, 0, 0, 4)
    return R.encode(R.TYPE_EVENT, 10, dict(t_ms=0, code=1, arg=4, arg2=3)) + bytes(buf)


@pytest.mark.parametrize("pos", range(0, 26 + 48, 5))
def test_a_damaged_byte_rejects_only_its_record(pos):
    data = bytearray(_stream())
    data[pos] ^= 0x40
    recs, rejected = scan.parse(bytes(data))
    seqs = [r["seq"] for r in recs]
    assert rejected > 0
    damaged = 10 if pos < 26 else 11 + (pos - 26) // 16
    assert damaged not in seqs
    assert set(seqs) == {10, 11, 12, 13} - {damaged}


@pytest.mark.parametrize("cut", range(1, 16))
def test_torn_sample_tail_is_rejected(cut):
    data = _stream()
    recs, rejected = scan.parse(data[: len(data) - 16 + cut])
    assert [r["seq"] for r in recs] == [10, 11, 12] and rejected == cut


def test_erased_and_zeroed_flash_are_not_records():
    assert scan.parse(b"\xff" * 64) == ([], 64)
    assert scan.parse(b"\x00" * 64) == ([], 64)


def test_sequence_unwraps_across_16_bits():
    buf = bytearray(32)
    R.encode_sample(buf, 0, 0xFFFF, 0, 0, 0, 0, 0, 0, 4)
    R.encode_sample(buf, 16, 0x10000, 100, 0, 0, 0, 0, 0, 4)
    recs, _ = scan.parse(bytes(buf), prev_seq=0xFFFE)
    assert [r["seq"] for r in recs] == [0xFFFF, 0x10000]


def test_cpython_and_micropython_encode_identical_bytes(mpy):
    code = """
from cryo.storage import records as R
from cryo.storage import scan
from cryo.crc import crc32
import binascii
buf = bytearray(16)
R.encode_sample(buf, 0, 70001, 123456, -4567, R.code12(-123), R.code12(-500), 55, 1, 4)
hdr = %r
hdr['fw_hash'] = b'\\x01' * 32
hdr['config_hash'] = b'\\x02' * 32
out = bytes(buf) + R.encode(R.TYPE_SESSION, 5, hdr) + R.encode_pulled(9)
recs, rej = scan.parse(out[16:])
result([binascii.hexlify(out).decode(), len(recs), rej, crc32(b'123456789')])
"""
    hdr = {k: v for k, v in HDR.items() if k not in ("fw_hash", "config_hash")}
    hexdata, n, rej, check = mpy.run(code % hdr)
    buf = bytearray(16)
    R.encode_sample(buf, 0, 70001, 123456, -4567, R.code12(-123), R.code12(-500), 55, 1, 4)
    mine = bytes(buf) + R.encode(R.TYPE_SESSION, 5, HDR) + R.encode_pulled(9)
    assert bytes.fromhex(hexdata) == mine
    assert (n, rej) == (2, 0)
    assert check == 0xCBF43926  # the CRC-32 check value


def test_sample_encoding_allocates_nothing(mpy):
    r = mpy.run(
        """
from cryo.storage import records as R
from cryo.storage import scan
buf = bytearray(160)
state = [0]
def enc():
    R.encode_sample(buf, 32, 70001, 123456, -4567, 1500, 2000, 55, 1, 4)
assert_no_alloc(enc, 500)
result([bytes_per_call(enc, 200), list(buf[32:36])])
"""
    )
    assert r[0] == 0
    assert r[1][0] == 0x54
