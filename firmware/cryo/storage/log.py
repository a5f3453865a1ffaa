"""Treatment log: append-only segment files on littlefs.

Layout under ``root`` (default ``logs`` under the flash root, ``cryo.paths``)::

    seg00000001.bin  seg00000002.bin ...   append-only segments
    pulled                                 "pulled up to session N" marker

Each segment starts with a segment record (``records.TYPE_SEGMENT``) and
holds framed records and 16-byte samples (``cryo.storage.records``). The
files, their rotation within ``max_bytes`` and the room left are
``cryo.storage.segment_store``'s job; the readers that walk a log folder
(here and on the host) are in ``cryo.storage.segments``; what waits in
RAM for the flash is ``cryo.storage.pending``'s; the session's time base
and sample cadence are ``cryo.storage.session_clock``'s. This module decides
what is written: sessions, samples, events and their statistics
(``cryo.storage.session_stats``).

Durability (docs/storage.md, "Commit policy"). littlefs makes file data
durable at ``flush()`` (lfs2 ``file_sync``) and falls back to the last
synced state after a power loss (littlefs DESIGN.md). Header, summary and
events are committed at once, except the events a tick writes
(``event(..., commit=False)``), committed by ``commit_soon`` at the idle
point after it; samples every ``commit_every`` samples. A power cut costs
at most those, never a committed record (``committed_seq``).

A session without a summary at open time was cut by power loss: the log
appends an ``EV_INTERRUPTED`` event and a summary with outcome
``OUTCOME_INTERRUPTED`` before anything else. If instead its last record
is damaged (bit rot in a committed record: it may have been the summary),
the summary written says ``OUTCOME_DAMAGED`` - outcome unknown - and no
interruption is claimed.

The sample path (``sample``) is integer-only and allocation-free except
when a segment rotates (once per ``segment_bytes`` of log, ~1000 samples
with the default 16 KiB) - proved in tests/storage with ``heap_lock``.
"""

from cryo import paths
from cryo.storage import files as F
from cryo.storage import records as R
from cryo.storage import segments as S
from cryo.storage.pending import Pending
from cryo.storage.segment_store import SegmentStore
from cryo.storage.session_clock import SessionClock
from cryo.storage.session_stats import UNKNOWN, SessionStats, unknown_summary

_EVENT_RESERVE = 64  # events budgeted per session by has_room_for
# Flash kept from the log's budget at boot for the firmware's other files
# (docs/storage.md, "A budget larger than the flash"): the device event
# ring (6 KiB), the configuration with its last-known-good and tmp copies,
# safety state, keys and PINs, the audit trail growing between pulls, and
# littlefs's metadata pairs (two blocks per directory).
_FLASH_RESERVE = 65536
_PENDING = 8  # events one tick may leave for the idle point (a FREEZE entry writes 3)


class LogFull(OSError):
    """No room to log a treatment completely (raised by ``begin_session``)."""


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
        root=None,
        clock=None,
        sample_hz=10,
        segment_bytes=16256,
        max_bytes=1048576,
        overwrite_unpulled=False,
        commit_every=10,
        rtc=None,
        flash_reserve=_FLASH_RESERVE,
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
        if root is None:
            root = paths.on_flash(paths.LOG_ROOT)
        self.root = root
        self.clock = clock
        self.sample_hz = sample_hz
        self.period_ms = 1000 // sample_hz
        self._time = SessionClock(clock, self.period_ms)
        self.overwrite_unpulled = overwrite_unpulled
        self.commit_every = commit_every
        self._ram = Pending(commit_every, _PENDING)
        self._rotate_at = len(self._ram.buf) + _PENDING * R.frame_size(R.TYPE_EVENT)
        self.dropped = 0  # samples not logged because the log was full
        self.full = False
        self.rejected_bytes = 0  # damaged bytes seen while scanning at open
        self.recovered = None  # session number closed as interrupted at open
        self.stats = SessionStats(self.period_ms)  # the open session's summary statistics
        F.makedirs(root)
        self._store = SegmentStore(
            root, segment_bytes, max_bytes // segment_bytes, overwrite_unpulled, rtc
        )
        self._open()
        self._store.refresh_room(True)
        # The budget cut to this board's flash, decided once here (from the
        # statvfs just made: it walks littlefs's allocation, so once per
        # boot): ``capped`` says so (status ``log_budget``, a journal note).
        self.capped = None
        fs_bytes = self._store.cap_to_flash(flash_reserve)
        if fs_bytes is not None:
            self.capped = (
                "log budget %d KiB (log.max_kib) cut to %d KiB: the flash holds %d KiB, "
                "%d KiB kept for the other files"
                % (
                    max_bytes // 1024,
                    self._store.max_segments * segment_bytes // 1024,
                    fs_bytes // 1024,
                    flash_reserve // 1024,
                )
            )

    @property
    def committed_seq(self):
        """Sequence number of the last record a power cut cannot take."""
        return self._store.committed_seq

    # -- opening / recovery --

    def _open(self):
        self.session = 0  # last session number started
        self.active = False
        # The newest segment holding a valid record gives seq/session state.
        tail, rejected = self._store.recover()
        self.rejected_bytes += rejected
        if tail is not None:
            self.session = tail["session"]
            self.active = tail["active"]
        self._store.track(self.session, self.active)
        if self.active:
            try:
                self._close_interrupted(tail["last_t"], tail["tail_damaged"])
            except LogFull:
                self.full = True

    def _close_interrupted(self, last_t, damaged):
        # Power was lost during a session (or, ``damaged``, its last record
        # rotted): record it, then close the session with statistics
        # recomputed from its committed records (read from the segments
        # since its header only: boot cost does not grow with the history).
        self.recovered = self.session
        values = S.session_stats(self.root, self.session, self._store.names_since(self.session))
        if values is None:  # header rotated away: statistics unknown
            values = unknown_summary(self.session, last_t)
        values["outcome"] = R.OUTCOME_DAMAGED if damaged else R.OUTCOME_INTERRUPTED
        self._time.note(values["duration_ms"])
        if not damaged:
            self.event(R.EV_INTERRUPTED, 0, 0)  # at the last committed time
            if values["events"] != UNKNOWN:
                values["events"] += 1
        self._write_frame(R.TYPE_SUMMARY, values)
        self.active = False
        self._store.track(self.session, False)

    # -- writing --

    def _write_frame(self, rtype, values, commit=True):
        """Write queued samples and events, append one framed record; commit
        them all (else ``commit_soon`` does, at the idle point)."""
        self._ram.write_to(self._store, self._append)
        self._append(rtype, values)
        if commit:
            self._store.commit()

    def _append(self, rtype, values):
        if not self._store.ensure_room(R.frame_size(rtype)):
            self.full = True
            raise LogFull(
                "treatment log full: %d segments, none deletable (unpulled sessions; "
                "pull logs or set log.overwrite_unpulled)" % self._store.limit
            )
        self._store.emit(rtype, values)

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

    def capacity_bytes(self):
        """Record bytes the whole budget holds, every segment emptied: the
        longest session this board's log can ever take."""
        s = self._store
        per = s.segment_bytes - R.frame_size(R.TYPE_SEGMENT) - self._waste()
        return s.max_segments * per

    def _waste(self):
        # Worst case per segment: what did not fit at its end (rotation
        # leaves that gap: ``commit_soon`` rotates before a queue and an
        # event would not fit).
        return max(self._rotate_at, R.frame_size(R.TYPE_SESSION))

    def free_bytes(self):
        """Bytes the log can still take without deleting unpulled sessions."""
        unused, reclaim = self._store.space()
        return unused + reclaim

    def has_room_for(self, seconds):
        """True if a treatment of ``seconds`` can be logged completely
        (``bytes_for``; ``SegmentStore.room_for`` counts the segments). O(1)."""
        return self._store.room_for(self.bytes_for(seconds), self._waste())

    def refresh_room(self):
        """Ask the filesystem for its free blocks again (a statvfs walk:
        done at open, when a session begins and when the marker moves)."""
        self._store.refresh_room(True)

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
            self.refresh_room()  # the authoritative check: ask the filesystem
        if expected_s is not None and not self.has_room_for(expected_s):
            raise LogFull(
                no_room(
                    expected_s, self.bytes_for(expected_s), self.free_bytes(), self.capacity_bytes()
                )
            )
        values = dict(header)
        values["session"] = self.session + 1
        # Rotate first if needed, so the new segment record names the
        # previous session, not this one.
        self.flush()
        if not self._store.ensure_room(R.frame_size(R.TYPE_SESSION) + len(self._ram.buf)):
            self.full = True
            raise LogFull("treatment log full: no segment can be deleted")
        values["sample_hz"] = self.sample_hz
        self.stats.begin(self.period_ms, values.get("target_cc", 0))
        self._time.start(now_ms)
        self.session += 1
        self.active = True
        self._store.track(self.session, True)
        try:
            self._write_frame(R.TYPE_SESSION, values)
        except Exception:
            self.session -= 1
            self.active = False
            self._store.track(self.session, False)
            raise
        self._store.refresh_room(False)
        return self.session

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
        if not self._time.due(now_ms):
            return False
        t = self._time.at(now_ms)
        ram = self._ram
        if ram.n == 0:
            if self.full:  # do not retry rotation every sample; mark_pulled clears it
                self.dropped += 1
                return False
            # A whole queue's worth must fit in the current segment.
            if not self._store.ensure_room(len(ram.buf)):
                self.full = True
                self.dropped += 1
                return False
        seq = self._store.take_seq(R.SAMPLE_SIZE)
        if ram.add_sample(seq, t, tissue_cc, aux_dc, setpoint_dc, demand_pct, valve, phase):
            ram.write_samples(self._store)  # no idle point came: commit here
            self._store.commit()
        self._time.note(t)
        self.stats.sample(tissue_cc, valve)
        return True

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

    def event(self, code, arg=0, arg2=0, now_ms=None, commit=True):
        """Append an event (phase change, fault, ack, alarm, ...) and commit
        it; with ``commit`` False it waits in RAM for ``commit_soon`` (up to
        ``_PENDING`` events; more are written at once)."""
        if not self.active:
            t = 0
        elif now_ms is None:
            t = self._time.last
        else:
            t = self._time.at(now_ms)
            self._time.note(t)
        self.stats.event(code, arg)
        if not commit and self._ram.add_event(t, code, arg, arg2):
            return
        self._write_frame(R.TYPE_EVENT, {"t_ms": t, "code": code, "arg": arg, "arg2": arg2}, commit)

    def end_session(self, summary=None, now_ms=None):
        """Close the session with a summary; fields not given are computed.

        Computed: duration, minimum tissue temperature, time at/below the
        target, valve-open time (at sample resolution), cycles (FREEZE phase
        entries), sample and event counts. ``outcome`` defaults to completed.
        """
        if not self.active:
            raise ValueError("no session is open")
        duration = self._time.last if now_ms is None else self._time.at(now_ms)
        values = self.stats.summary(self.session, duration)
        values["outcome"] = R.OUTCOME_COMPLETED
        if summary:
            for k in summary:
                values[k] = summary[k]
        self._write_frame(R.TYPE_SUMMARY, values)
        self.active = False
        self._store.track(self.session, False)
        self._store.refresh_room(False)
        return values

    def commit_soon(self):
        """Write and commit what the tick left (events) and the queue if the
        next sample would fill it: called at the controller's idle point, so
        flash writes and commits (a littlefs sync, millions of instructions
        on a Cortex-M, more when it compacts metadata) happen there and not
        inside a control tick. Same power-cut bound: at most ``commit_every``
        samples, and the events of the tick just run, are ever uncommitted."""
        ram = self._ram
        if ram.n >= self.commit_every - 1 or ram.has_events():
            ram.write_to(self._store, self._append)
        if self._store.dirty():
            self._store.commit()
        if ram.n == 0 and self.active and not self.full:
            # Start the next segment here when the next queue and a tick's
            # events would not fit: a rotation creates a file and commits
            # littlefs metadata, tens of millions of instructions on a
            # Cortex-M, which must not land inside a control tick.
            if not self._store.ensure_room(self._rotate_at):
                self.full = True

    def flush(self):
        """Commit queued samples and events now (e.g. before a planned shutdown)."""
        self._ram.write_to(self._store, self._append)
        if self._store.dirty():
            self._store.commit()

    def close(self):
        self.flush()
        self._store.close()

    # -- pulled marker --

    def pulled_upto(self):
        """Highest session number the host has pulled (0: none)."""
        return self._store.pulled()

    def mark_pulled(self, session):
        """Record that the host holds sessions up to ``session`` (atomic)."""
        if session < self.pulled_upto():
            raise ValueError(
                "pulled marker cannot go back: %d < %d" % (session, self.pulled_upto())
            )
        self._store.set_pulled(session)
        self.full = False  # rotation may now delete the pulled sessions

    # -- reading --

    def sessions(self):
        """List sessions found in the log (dicts; reads every segment)."""
        return S.list_sessions(self.root, self.pulled_upto())

    def read_records(self, session=None, seq_from=None, seq_to=None):
        """Intact records (dicts), optionally one session or a seq range."""
        self.flush()
        return S.read_records(self.root, session, seq_from, seq_to)

    def iter_records(self):
        """``(record, session)`` for every intact record, one at a time (a
        list of a long history does not fit a board's heap)."""
        self.flush()
        return S.iter_records(self.root)


def no_room(seconds, need, free, most):
    """Why a ``seconds`` treatment cannot start: ``need`` bytes of log,
    ``free`` bytes the log can take now, ``most`` it can ever hold on this
    board's flash (``TreatmentLog.capacity_bytes``)."""
    if need > most:
        return (
            "log cannot hold a %d s treatment on this flash: %d bytes needed, at most %d fit "
            "in the log's budget: shorten the protocol (cycles, freeze and thaw limits) or "
            "use a board with more flash" % (seconds, need, most)
        )
    return (
        "log has no room for a %d s treatment (about %d bytes free, %d needed): pull the logs"
        % (
            seconds,
            free,
            need,
        )
    )


def from_config(cfg, root=None, clock=None, rtc=None):
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
