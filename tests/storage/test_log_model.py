"""Model-based check of TreatmentLog's bookkeeping (CPython, host files).

Random sequences of sessions, samples, events, clean restarts and rotations:
what the reader returns is exactly what was appended, in order, with
gapless sequence numbers. (Power cuts are covered under MicroPython in
test_log_powercut.py; CPython's buffered files cannot model them.)
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from cryo.storage import records as R
from cryo.storage.log import TreatmentLog
from cryo.storage.segments import list_sessions, read_records

HDR = dict(
    rtc_s=1,
    rtc_ms=0,
    fw_version="0.1.0",
    fw_hash=b"\x01" * 32,
    config_hash=b"\x02" * 32,
    board_id="sim",
    target_cc=-1000,
    thaw_cc=0,
    freeze_ds=200,
    cycles=2,
    floor_cc=-6000,
    max_freeze_ds=600,
    min_thaw_ds=300,
)

op = st.one_of(
    st.tuples(st.just("samples"), st.integers(1, 40)),
    st.tuples(st.just("event"), st.integers(1, 13)),
    st.just(("restart",)),
    st.just(("session",)),
)


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(op, max_size=25), commit_every=st.integers(1, 12))
def test_reader_returns_exactly_what_was_appended(tmp_path_factory, ops, commit_every):
    root = str(tmp_path_factory.mktemp("logs"))
    kw = dict(segment_bytes=1024, max_bytes=1 << 20, commit_every=commit_every)
    log = TreatmentLog(root, **kw)
    expect = []  # (type, session, key)
    session = 0
    t = 0
    for o in ops:
        if o[0] == "session":
            if log.active:
                log.end_session(None, t)
                expect.append(("summary", session, None))
            session = log.begin_session(HDR, 0)
            expect.append(("session", session, None))
            t = 0
        elif o[0] == "samples" and log.active:
            for _ in range(o[1]):
                assert log.sample(t, -t // 10, 12, -400, 50, 1, 4)
                expect.append(("sample", session, t))
                t += 100
        elif o[0] == "event":
            log.event(o[1], 7, 8, t if log.active else None)
            expect.append(("event", session if log.active else 0, o[1]))
        elif o[0] == "restart":
            was_active = log.active
            log.close()
            log = TreatmentLog(root, **kw)
            if was_active:  # the restart closes the open session as interrupted
                expect.append(("event", session, R.EV_INTERRUPTED))
                expect.append(("summary", session, None))
                assert log.recovered == session
    log.close()
    got = [r for r in read_records(root) if r["type"] != "segment"]
    assert len(got) == len(expect)
    for r, (typ, sess, key) in zip(got, expect):
        assert (r["type"], r["session_no"]) == (typ, sess)
        if typ == "sample":
            assert r["t_ms"] == key and r["tissue_c"] == round(-key // 10 / 100, 2)
        elif typ == "event":
            assert r["code"] == key
    seqs = [r["seq"] for r in read_records(root)]
    assert seqs == list(range(1, len(seqs) + 1))
    sessions = list_sessions(root)
    assert [s["session"] for s in sessions] == list(range(1, session + 1))
    for s in sessions:
        assert s["samples"] == sum(1 for e in expect if e[0] == "sample" and e[1] == s["session"])
