"""Treatment log: append-only segment files on littlefs.

Layout under ``root`` (default ``/logs``)::

    seg00000001.bin  seg00000002.bin ...   append-only segments
    pulled                                 "pulled up to session N" marker

Each segment starts with a segment record (``records.TYPE_SEGMENT``) and
holds framed records and 16-byte samples (``cryo.storage.records``). A
segment is closed when the next record would make it exceed
``segment_bytes``; the log holds at most ``max_bytes // segment_bytes``
segments. The oldest segment is deleted to make room only if every
session with records in it has been pulled by the host (``mark_pulled``)
or ``overwrite_unpulled`` is set - never the running session.

Durability. littlefs makes file data durable at ``flush()`` (lfs2
``file_sync``) and falls back to the last synced state after a power loss
(littlefs DESIGN.md: copy-on-write, atomic commits). A record is *committed* once flushed:

* session header, events and summary are flushed immediately (with any
  samples queued before them, preserving order);
* samples are queued in a preallocated buffer and flushed every
  ``commit_every`` samples (default 10 = 1 s at 10 Hz): a power cut costs
  at most that many samples, never a committed record. ``committed_seq``
  is the last committed sequence number.

A session without a summary at open time was cut by power loss: the log
appends an ``EV_INTERRUPTED`` event and a summary with outcome
``OUTCOME_INTERRUPTED`` before anything else.

The sample path (``sample``) is integer-only and allocation-free except
when a segment rotates (once per ``segment_bytes`` of log, ~1000 samples
with the default 16 KiB) - proved in tests/storage with ``heap_lock``.
"""

import os

from cryo import paths
from cryo.storage import records as R

_LOG_ROOT = paths.on_flash(paths.LOG_ROOT)

_SEG_PREFIX = "seg"
_SEG_SUFFIX = ".bin"
_PULLED = "pulled"
_PHASE_FREEZE = 4  # cryo.protocol.states.FREEZE (not imported: the host reads logs too)
_EVENT_RESERVE = 64  # events budgeted per session by has_room_for
_NO_MIN = 32767


class LogFull(OSError):
    """No room to log a treatment completely (raised by ``begin_session``)."""


def _join(a, b):
    return a + "/" + b if not a.endswith("/") else a + b


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _makedirs(path):
    parts = path.split("/")
    cur = ""
    for i, p in enumerate(parts):
        if not p:
            if i == 0:
                cur = "/"
            continue
        cur = cur + p if cur.endswith("/") or cur == "" else cur + "/" + p
        if not _exists(cur):
            os.mkdir(cur)


def seg_name(n):
    s = str(n)
    return _SEG_PREFIX + "0" * (8 - len(s)) + s + _SEG_SUFFIX


def seg_number(name):
    """Segment number of a file name, or -1 if it is not a segment."""
    if not (name.startswith(_SEG_PREFIX) and name.endswith(_SEG_SUFFIX)):
        return -1
    digits = name[len(_SEG_PREFIX) : len(name) - len(_SEG_SUFFIX)]
    if len(digits) != 8 or not digits.isdigit():
        return -1
    return int(digits)


def _read_file(path):
    with open(path, "rb") as f:
        return f.read()


def _write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
    os.rename(tmp, path)


class TreatmentLog:
    """Append-only treatment log (see module docstring).

    ``clock``: a ``cryo.clock`` clock; ``now_ms`` arguments are its ticks
    (wrap-safe). Without a clock ``now_ms`` is taken as ms since the start
    of the session. ``sample_hz``: recorded sample rate (``sample`` may be
    called faster; it decimates). ``rtc``: optional callable returning
    ``(seconds since 2000-01-01, ms)`` used for segment records.
    """

    def __init__(
        self,
        root=_LOG_ROOT,
        clock=None,
        sample_hz=10,
        segment_bytes=16256,
        max_bytes=1048576,
        overwrite_unpulled=False,
        commit_every=10,
        rtc=None,
    ):
        if not 1 <= sample_hz <= 100:
            raise ValueError("log sample_hz must be 1..100 Hz, got %r" % (sample_hz,))
        if segment_bytes < 1024:
            raise ValueError("log segment_bytes must be >= 1024, got %r" % (segment_bytes,))
        if max_bytes < 2 * segment_bytes:
            raise ValueError(
                "log max_bytes must be >= 2 * segment_bytes (%d), got %r"
                % (2 * segment_bytes, max_bytes)
            )
        if not 1 <= commit_every <= 100:
            raise ValueError("log commit_every must be 1..100 samples, got %r" % (commit_every,))
        self.root = root
        self.clock = clock
        self.sample_hz = sample_hz
        self.period_ms = 1000 // sample_hz
        self.segment_bytes = segment_bytes
        self.max_segments = max_bytes // segment_bytes
        self.overwrite_unpulled = overwrite_unpulled
        self.commit_every = commit_every
        self._rtc = rtc
        # Preallocated sample queue (the hot path writes the whole buffer).
        self._qbuf = bytearray(commit_every * R.SAMPLE_SIZE)
        self._qmv = memoryview(self._qbuf)
        self._qn = 0
        self._f = None
        self.dropped = 0  # samples not logged because the log was full
        self.full = False
        self.rejected_bytes = 0  # damaged bytes seen while scanning at open
        self.recovered = None  # session number closed as interrupted at open
        # Room bookkeeping (has_room_for is O(1)): the pulled marker, the
        # bytes rotation may reclaim and the filesystem's free blocks are
        # kept here and updated where they change, never re-read per check.
        self._pulled = 0
        self._reclaim = 0
        self._free_blocks = None  # None: the filesystem has no statvfs
        self._seg_blocks = 0
        _makedirs(root)
        self._pulled = self._read_pulled()
        self._open()
        self._refresh_room(True)

    # -- opening / recovery --

    def _segments(self):
        # Kept in memory (scanned at open, updated on create/delete) so the
        # periodic has_room_for check costs no directory listing. The host
        # must not delete segment files under a running log.
        return self._segs

    def _scan_segments(self):
        nums = []
        for name in os.listdir(self.root):
            n = seg_number(name)
            if n >= 0:
                nums.append(n)
        nums.sort()
        return nums

    def _seg_path(self, n):
        return _join(self.root, seg_name(n))

    def _open(self):
        self.next_seq = 1
        self.committed_seq = 0
        self.session = 0  # last session number started
        self.active = False
        self._cur = 0  # current segment number (0: none open)
        self._cur_size = 0
        self._need_new_segment = True
        self._reset_stats()
        self._segs = self._scan_segments()
        self._seg_sess = {}  # segment number -> session named by its segment record
        segs = self._segs
        # The newest segment holding a valid record gives seq/session state.
        i = len(segs) - 1
        while i >= 0:
            data = _read_file(self._seg_path(segs[i]))
            found = False
            damaged = False
            last_t = 0
            for off, size, rtype, seq in R.walk(data):
                if rtype is None:
                    damaged = True
                    self.rejected_bytes += size
                    continue
                found = True
                self.next_seq = seq + 1
                if rtype == R.TYPE_SEGMENT:
                    rec = R.decode_at(data, off, rtype, seq)
                    self.session = rec["session"]
                    self.active = bool(rec["open"])
                elif rtype == R.TYPE_SESSION:
                    rec = R.decode_at(data, off, rtype, seq)
                    self.session = rec["session"]
                    self.active = True
                    last_t = 0
                elif rtype == R.TYPE_SUMMARY:
                    self.active = False
                elif rtype == R.TYPE_EVENT:
                    rec = R.decode_at(data, off, rtype, seq)
                    last_t = rec["t_ms"]
                elif rtype == R.SAMPLE_MARK:
                    t24 = data[off + 3] | (data[off + 4] << 8) | (data[off + 5] << 16)
                    last_t = _unwrap24(last_t, t24)
            if not found:
                # Nothing committed in it (cut while the segment was created).
                os.remove(self._seg_path(segs[i]))
                segs.pop(i)
                i -= 1
                continue
            self._cur = segs[i]
            self._cur_size = len(data)
            # Append to the newest segment only if it is intact.
            self._need_new_segment = damaged or i != len(segs) - 1
            break
        self.committed_seq = self.next_seq - 1
        if self.active:
            try:
                self._close_interrupted(last_t)
            except LogFull:
                self.full = True

    def _close_interrupted(self, last_t):
        # Power was lost during a session: record it, then close the session
        # with statistics recomputed from its committed records.
        self.recovered = self.session
        values = session_stats(self.root, self.session)
        if values is None:  # header rotated away: statistics unknown
            values = {
                "session": self.session,
                "duration_ms": last_t,
                "min_cc": R.NO_READING16,
                "below_target_ms": 0xFFFFFFFF,
                "valve_open_ms": 0xFFFFFFFF,
                "cycles_done": 255,
                "samples": 0xFFFFFFFF,
                "events": 0xFFFFFFFF,
            }
        values["outcome"] = R.OUTCOME_INTERRUPTED
        self.active = True
        self._t0 = 0
        self._t_last = values["duration_ms"]
        self.event(R.EV_INTERRUPTED, 0, 0)  # at the last committed time
        if values["events"] != 0xFFFFFFFF:
            values["events"] += 1
        self._write_frame(R.TYPE_SUMMARY, values)
        self.active = False

    def _reset_stats(self):
        self._t0 = 0
        self._t_last = 0
        self._next_due = 0
        self._target_cc = 0
        self.n_samples = 0
        self.n_events = 0
        self.min_cc = _NO_MIN
        self.below_target_ms = 0
        self.valve_open_ms = 0
        self.cycles_done = 0

    # -- segment files --

    def _rtc_now(self):
        if self._rtc is None:
            return 0
        return self._rtc()[0]

    def _new_segment(self):
        self._close_file()
        segs = self._segments()
        nxt = (segs[-1] + 1) if segs else 1
        # Make room: at most max_segments files including the new one.
        while len(segs) >= self.max_segments:
            if not self._can_delete(segs):
                return False
            try:
                os.remove(self._seg_path(segs[0]))
                self._adjust_free(self._seg_blocks)
            except OSError:
                pass  # already gone
            self._seg_sess.pop(segs.pop(0), None)
        self._adjust_free(-self._seg_blocks)
        self._cur = nxt
        self._cur_size = 0
        self._f = open(self._seg_path(nxt), "ab")
        segs.append(nxt)
        self._seg_sess[nxt] = self.session
        self._need_new_segment = False
        self._emit_frame(
            R.TYPE_SEGMENT,
            {
                "segment": nxt,
                "session": self.session,
                "open": 1 if self.active else 0,
                "rtc_s": self._rtc_now(),
            },
        )
        self._f.flush()
        self.committed_seq = self.next_seq - 1
        self._refresh_room(False)
        return True

    def _can_delete(self, segs):
        """May the oldest segment go? Only if its sessions were all pulled."""
        if len(segs) < 2:
            return False
        newest_in_oldest = self._segment_session(segs[1])
        if self.active and newest_in_oldest >= self.session:
            return False  # the running session has records there
        if self.overwrite_unpulled:
            return True
        return newest_in_oldest <= self._pulled

    def _segment_session(self, n):
        # The segment record of segment n names the newest session started
        # before it, i.e. the newest session with records in segment n-1.
        s = self._seg_sess.get(n)
        if s is not None:
            return s
        s = self._read_segment_session(n)
        if s != 0x7FFFFFFF:
            self._seg_sess[n] = s
        return s

    def _read_segment_session(self, n):
        try:
            with open(self._seg_path(n), "rb") as f:
                head = f.read(R.frame_size(R.TYPE_SEGMENT))
        except OSError:
            return 0x7FFFFFFF
        rec, _ = R.decode_frame(head, 0)
        if rec is None or rec["type"] != "segment":
            return 0x7FFFFFFF  # unknown: treat as not deletable unless overwrite
        return rec["session"]

    def _close_file(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def _ensure_room(self, nbytes):
        if (
            self._f is None
            or self._need_new_segment
            or self._cur_size + nbytes > self.segment_bytes
        ):
            if not self._new_segment():
                self.full = True
                return False
        return True

    def _emit_frame(self, rtype, values):
        data = R.encode(rtype, self.next_seq, values)
        self._f.write(data)
        self._cur_size += len(data)
        self.next_seq += 1

    def _write_frame(self, rtype, values):
        """Flush queued samples, append one framed record and commit it."""
        self._drain()
        if self._f is None and not self._need_new_segment and self._cur:
            self._f = open(self._seg_path(self._cur), "ab")
        if not self._ensure_room(R.frame_size(rtype)):
            raise LogFull(
                "treatment log full: %d segments, none deletable (unpulled sessions; "
                "pull logs or set log.overwrite_unpulled)" % self.max_segments
            )
        self._emit_frame(rtype, values)
        self._f.flush()
        self.committed_seq = self.next_seq - 1

    def _drain(self):
        # Write and commit queued samples (partial queue: allocates a view).
        n = self._qn
        if n == 0:
            return
        self._qn = 0
        self._f.write(self._qmv[: n * R.SAMPLE_SIZE])
        self._f.flush()
        self.committed_seq = self.next_seq - 1

    # -- capacity --

    def bytes_for(self, seconds, events=_EVENT_RESERVE):
        """Record bytes one session of ``seconds`` writes (header..summary).

        Budget: ``sample_hz`` samples per second (+1 s), ``events`` events
        (default 64), header and summary.
        """
        samples = (int(seconds) + 1) * self.sample_hz
        return (
            R.frame_size(R.TYPE_SESSION)
            + samples * R.SAMPLE_SIZE
            + events * R.frame_size(R.TYPE_EVENT)
            + R.frame_size(R.TYPE_SUMMARY)
        )

    def _seg_usable(self):
        # Worst case per segment: its segment record, and a record or sample
        # queue that did not fit at the end (rotation leaves that gap).
        waste = max(len(self._qbuf), R.frame_size(R.TYPE_SESSION))
        return self.segment_bytes - R.frame_size(R.TYPE_SEGMENT) - waste

    def _space(self):
        """(unused budget bytes, bytes in segments rotation may delete): O(1)."""
        unused = (self.max_segments - len(self._segs)) * self.segment_bytes
        if self._cur and not self._need_new_segment:
            unused += self.segment_bytes - self._cur_size
        return unused, self._reclaim

    def _scan_reclaim(self):
        # Whole segments rotation may delete: pulled (or overwritable)
        # sessions only, never the running one. At most max_segments steps,
        # run where the answer changes (segment created or deleted, session
        # begun or ended, marker moved), not per room check.
        segs = self._segs
        reclaim = 0
        k = 1
        while k < len(segs):
            s = self._segment_session(segs[k])
            if self.active and s >= self.session:
                break  # the running session has records in segs[k-1]
            if not self.overwrite_unpulled and s > self._pulled:
                break  # segs[k-1] holds a session the host has not pulled
            reclaim += self.segment_bytes
            k += 1
        return reclaim

    def _refresh_room(self, fs):
        """Recompute what rotation may reclaim; with ``fs`` also ask the
        filesystem for its free blocks (statvfs walks littlefs's block
        allocation, a cost that grows with the files on flash: done at open
        and when a session begins, not in the periodic check)."""
        self._reclaim = self._scan_reclaim()
        if not fs:
            return
        try:
            st = os.statvfs(self.root)
        except (OSError, AttributeError):
            self._free_blocks = None
            return
        bsize = st[0]
        # Blocks per segment file: data plus littlefs CTZ skip-list pointers
        # (<= 8 bytes per block); whole blocks, since files this size are not
        # inlined in metadata.
        per = self.segment_bytes + 8 * (self.segment_bytes // bsize + 1)
        self._seg_blocks = (per + bsize - 1) // bsize
        self._free_blocks = st[4]  # f_bavail

    def _adjust_free(self, blocks):
        if self._free_blocks is not None:
            self._free_blocks += blocks

    def free_bytes(self):
        """Bytes the log can still take without deleting unpulled sessions."""
        unused, reclaim = self._space()
        return unused + reclaim

    def has_room_for(self, seconds):
        """True if a treatment of ``seconds`` can be logged completely.

        Counts whole segments, assuming the worst gap at the end of each
        (see ``_seg_usable``), against unused segments of the budget
        (``max_bytes``) plus segments rotation may delete (pulled sessions,
        or any with ``overwrite_unpulled``); then against the filesystem's
        free blocks (2 kept for copy-on-write). O(1): every figure is kept
        up to date by the log itself (``_refresh_room``, ``_adjust_free``).
        """
        body = self.bytes_for(seconds)
        usable = self._seg_usable()
        cur = 0
        if self._cur and not self._need_new_segment:
            cur = (
                self.segment_bytes
                - self._cur_size
                - (self.segment_bytes - R.frame_size(R.TYPE_SEGMENT) - usable)
            )
            if cur < 0:
                cur = 0
        rest = body - cur
        new_segs = 0 if rest <= 0 else (rest + usable - 1) // usable
        unused, reclaim = self._space()
        if (
            new_segs * self.segment_bytes
            > (unused // self.segment_bytes) * self.segment_bytes + reclaim
        ):
            return False
        if self._free_blocks is None:
            return True
        free_blocks = self._free_blocks - 2  # 2 kept for copy-on-write
        reclaim_blocks = (reclaim // self.segment_bytes) * self._seg_blocks
        return new_segs * self._seg_blocks <= free_blocks + reclaim_blocks

    # -- session API --

    def begin_session(self, header, now_ms=0, expected_s=None):
        """Start a session; ``header`` holds the session-header fields.

        ``session`` and ``sample_hz`` are filled in by the log. Raises
        LogFull if ``expected_s`` seconds do not fit (a treatment must not
        start without room to log it completely), ValueError naming any
        missing header field.
        """
        if self.active:
            raise ValueError("a session (%d) is already open; end it first" % self.session)
        if expected_s is not None:
            self._refresh_room(True)  # the authoritative check: ask the filesystem
        if expected_s is not None and not self.has_room_for(expected_s):
            raise LogFull(
                "treatment log has no room for a %d s treatment (about %d bytes free, %d needed)"
                % (expected_s, self.free_bytes(), self.bytes_for(expected_s))
            )
        values = dict(header)
        values["session"] = self.session + 1
        # Rotate first if needed, so the new segment record names the
        # previous session, not this one.
        self._drain()
        if self._f is None and not self._need_new_segment and self._cur:
            self._f = open(self._seg_path(self._cur), "ab")
        if not self._ensure_room(R.frame_size(R.TYPE_SESSION) + len(self._qbuf)):
            raise LogFull("treatment log full: no segment can be deleted")
        values["sample_hz"] = self.sample_hz
        self._reset_stats()
        self._target_cc = values.get("target_cc", 0)
        self._t0 = now_ms
        self._next_due = now_ms
        self.session += 1
        self.active = True
        try:
            self._write_frame(R.TYPE_SESSION, values)
        except Exception:
            self.session -= 1
            self.active = False
            raise
        self._refresh_room(False)
        return self.session

    def _t(self, now_ms):
        if self.clock is None:
            return now_ms
        return self.clock.diff(now_ms, self._t0)

    def sample(self, now_ms, tissue_cc, aux_dc, setpoint_dc, demand_pct, valve, phase):
        """Record one sample if due (``sample_hz``); integer arguments only.

        ``tissue_cc`` 0.01 degC (``records.NO_READING16`` if invalid),
        ``aux_dc``/``setpoint_dc`` 0.1 degC (None if invalid), ``demand_pct``
        0..100, ``valve`` 0/1, ``phase`` (cryo.protocol.states). Returns True
        if recorded. Allocation-free (except at segment rotation); never
        raises for a full log (counts ``dropped`` and sets ``full``).
        """
        if not self.active:
            return False
        if self.clock is not None:
            if self.clock.diff(now_ms, self._next_due) < 0:
                return False
            self._next_due = self.clock.add(self._next_due, self.period_ms)
            if self.clock.diff(now_ms, self._next_due) >= 0:
                self._next_due = self.clock.add(now_ms, self.period_ms)  # fell behind
        else:
            if now_ms - self._next_due < 0:
                return False
            self._next_due += self.period_ms
            if now_ms - self._next_due >= 0:
                self._next_due = now_ms + self.period_ms
        t = self._t(now_ms)
        qn = self._qn
        if qn == 0:
            if self.full:  # do not retry rotation every sample; mark_pulled clears it
                self.dropped += 1
                return False
            if not self._ensure_room_samples():
                self.dropped += 1
                return False
        R.encode_sample(
            self._qbuf,
            qn * 16,
            self.next_seq,
            t,
            tissue_cc,
            R.code12(aux_dc),
            R.code12(setpoint_dc),
            demand_pct,
            valve,
            phase,
        )
        self.next_seq += 1
        self._t_last = t
        # Statistics for the summary (integer, sample resolution).
        self.n_samples += 1
        if tissue_cc != R.NO_READING16:
            if tissue_cc < self.min_cc:
                self.min_cc = tissue_cc
            if tissue_cc <= self._target_cc:
                self.below_target_ms += self.period_ms
        if valve:
            self.valve_open_ms += self.period_ms
        self._cur_size += 16
        qn += 1
        if qn == self.commit_every:
            self._f.write(self._qbuf)
            self._f.flush()
            self.committed_seq = self.next_seq - 1
            qn = 0
        self._qn = qn
        return True

    def _ensure_room_samples(self):
        # A whole queue's worth must fit in the current segment.
        if self._f is None and not self._need_new_segment and self._cur:
            self._f = open(self._seg_path(self._cur), "ab")
        return self._ensure_room(len(self._qbuf))

    def sample_c(self, now_ms, tissue_c, aux_c, setpoint_c, demand, valve, phase):
        """Float convenience (allocates): degC values, ``demand`` 0..1."""
        return self.sample(
            now_ms,
            R.to_cc(tissue_c),
            R.to_dc(aux_c),
            R.to_dc(setpoint_c),
            int(round(demand * 100)),
            1 if valve else 0,
            phase,
        )

    def event(self, code, arg=0, arg2=0, now_ms=None):
        """Append and commit an event (phase change, fault, ack, alarm, ...)."""
        if not self.active:
            t = 0
        elif now_ms is None:
            t = self._t_last
        else:
            t = self._t(now_ms)
            self._t_last = t
        if code == R.EV_PHASE and arg == _PHASE_FREEZE:
            self.cycles_done += 1
        self.n_events += 1
        self._write_frame(R.TYPE_EVENT, {"t_ms": t, "code": code, "arg": arg, "arg2": arg2})

    def end_session(self, summary=None, now_ms=None):
        """Close the session with a summary; fields not given are computed.

        Computed: duration, minimum tissue temperature, time at/below the
        target, valve-open time (at sample resolution), cycles (FREEZE phase
        entries), sample and event counts. ``outcome`` defaults to completed.
        """
        if not self.active:
            raise ValueError("no session is open")
        duration = self._t_last if now_ms is None else self._t(now_ms)
        values = {
            "session": self.session,
            "duration_ms": duration,
            "min_cc": self.min_cc if self.min_cc != _NO_MIN else R.NO_READING16,
            "below_target_ms": self.below_target_ms,
            "valve_open_ms": self.valve_open_ms,
            "cycles_done": self.cycles_done,
            "outcome": R.OUTCOME_COMPLETED,
            "samples": self.n_samples,
            "events": self.n_events,
        }
        if summary:
            for k in summary:
                values[k] = summary[k]
        self._write_frame(R.TYPE_SUMMARY, values)
        self.active = False
        self._refresh_room(False)
        return values

    def commit_soon(self):
        """Commit the queue if the next sample would fill it: called at the
        controller's idle point, so the commit's flash write happens there
        and not inside a control tick (same power-cut bound: at most
        ``commit_every`` samples are ever queued)."""
        if self._f is not None and self._qn >= self.commit_every - 1:
            self._drain()

    def flush(self):
        """Commit queued samples now (e.g. before a planned shutdown)."""
        if self._f is not None:
            self._drain()

    def close(self):
        self.flush()
        self._close_file()

    # -- pulled marker --

    def pulled_upto(self):
        """Highest session number the host has pulled (0: none)."""
        return self._pulled

    def _read_pulled(self):
        try:
            s = R.decode_pulled(_read_file(_join(self.root, _PULLED)))
        except OSError:
            return 0
        return s if s is not None else 0

    def mark_pulled(self, session):
        """Record that the host holds sessions up to ``session`` (atomic)."""
        if session < self.pulled_upto():
            raise ValueError(
                "pulled marker cannot go back: %d < %d" % (session, self.pulled_upto())
            )
        _write_atomic(_join(self.root, _PULLED), R.encode_pulled(session))
        self._pulled = session
        self.full = False  # rotation may now delete the pulled sessions
        self._refresh_room(True)

    # -- reading --

    def sessions(self):
        """List sessions found in the log (dicts; reads every segment)."""
        return list_sessions(self.root, self.pulled_upto())

    def read_records(self, session=None, seq_from=None, seq_to=None):
        """Intact records (dicts), optionally one session or a seq range."""
        self.flush()
        return read_records(self.root, session, seq_from, seq_to)


def _unwrap24(prev_t, t24):
    t = (prev_t & ~0xFFFFFF) | t24
    if t < prev_t:
        t += 0x1000000
    return t


def walk_segment(data, cursor):
    """Yield ``(off, size, record_dict or None, session)`` for one segment's bytes.

    ``cursor``: ``[last_seq, session, t_last]`` carried from the previous
    segment (``[-1, 0, 0]`` before the first), updated in place, so a reader
    can resume at any segment (the host's archive index does). A damaged
    range is yielded with ``None`` and the session it lies in.
    """
    for off, size, rtype, seq in R.walk(data, cursor[0]):
        if rtype is None:
            yield off, size, None, cursor[1]
            continue
        rec = R.decode_at(data, off, rtype, seq)
        cursor[0] = seq
        if rtype == R.TYPE_SEGMENT:
            cursor[1] = rec["session"] if rec["open"] else 0
        elif rtype == R.TYPE_SESSION:
            cursor[1] = rec["session"]
            cursor[2] = 0
        elif rtype == R.SAMPLE_MARK:
            cursor[2] = _unwrap24(cursor[2], rec.pop("t24"))
            rec["t_ms"] = cursor[2]
        elif rtype == R.TYPE_EVENT:
            cursor[2] = rec["t_ms"]
        yield off, size, rec, cursor[1]
        if rtype == R.TYPE_SUMMARY:
            cursor[1] = 0


def segment_names(root):
    """Segment file names under ``root``, oldest first."""
    names = []
    for name in os.listdir(root):
        n = seg_number(name)
        if n >= 0:
            names.append((n, name))
    names.sort()
    return [name for _n, name in names]


def iter_records(root):
    """Yield ``(record_dict, session)`` for every intact record under ``root``.

    Works on the device and on the host (a pulled copy of the log folder).
    Sample dicts get ``t_ms`` (unwrapped ms since session start).
    """
    cursor = [-1, 0, 0]
    for name in segment_names(root):
        for _off, _size, rec, session in walk_segment(_read_file(_join(root, name)), cursor):
            if rec is not None:
                yield rec, session


def read_records(root, session=None, seq_from=None, seq_to=None):
    out = []
    for rec, s in iter_records(root):
        if session is not None and s != session:
            continue
        if seq_from is not None and rec["seq"] < seq_from:
            continue
        if seq_to is not None and rec["seq"] > seq_to:
            continue
        rec["session_no"] = s
        out.append(rec)
    return out


def list_sessions(root, pulled_upto=0):
    out = []
    cur = None
    for rec, s in iter_records(root):
        t = rec["type"]
        if t == "session":
            cur = {
                "session": rec["session"],
                "header": rec,
                "first_seq": rec["seq"],
                "last_seq": rec["seq"],
                "samples": 0,
                "events": 0,
                "summary": None,
                "pulled": rec["session"] <= pulled_upto,
            }
            out.append(cur)
            continue
        if cur is None or s != cur["session"]:
            continue
        cur["last_seq"] = rec["seq"]
        if t == "sample":
            cur["samples"] += 1
        elif t == "event":
            cur["events"] += 1
        elif t == "summary":
            cur["summary"] = rec
    return out


def session_stats(root, session):
    """Summary fields recomputed from a session's committed records.

    Same rules as the live statistics (sample resolution). None if the
    session header is no longer in the log.
    """
    st = None
    period = 100
    target = 0
    for rec, s in iter_records(root):
        if s != session:
            continue
        t = rec["type"]
        if t == "session":
            period = 1000 // rec["sample_hz"]
            target = rec["target_cc"]
            st = {
                "session": session,
                "duration_ms": 0,
                "min_cc": _NO_MIN,
                "below_target_ms": 0,
                "valve_open_ms": 0,
                "cycles_done": 0,
                "samples": 0,
                "events": 0,
            }
        elif st is None:
            continue
        elif t == "sample":
            st["samples"] += 1
            st["duration_ms"] = rec["t_ms"]
            if rec["tissue_c"] is not None:
                cc = int(round(rec["tissue_c"] * R.TISSUE_SCALE))
                if cc < st["min_cc"]:
                    st["min_cc"] = cc
                if cc <= target:
                    st["below_target_ms"] += period
            if rec["valve"]:
                st["valve_open_ms"] += period
        elif t == "event":
            st["events"] += 1
            st["duration_ms"] = rec["t_ms"]
            if rec["code"] == R.EV_PHASE and rec["arg"] == _PHASE_FREEZE:
                st["cycles_done"] += 1
    if st is not None and st["min_cc"] == _NO_MIN:
        st["min_cc"] = R.NO_READING16
    return st


def from_config(cfg, root=_LOG_ROOT, clock=None, rtc=None):
    """A TreatmentLog with the ``log.*`` settings of a validated config."""
    return TreatmentLog(
        root,
        clock=clock,
        sample_hz=cfg["log.sample_hz"],
        max_bytes=cfg["log.max_kib"] * 1024,
        overwrite_unpulled=cfg["log.overwrite_unpulled"],
        commit_every=cfg["log.commit_every"],
        rtc=rtc,
    )
