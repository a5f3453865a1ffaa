"""The treatment log's record stream on flash: numbered segment files, the
one open for appending, rotation within a byte budget, the room left, and
the host's "pulled up to session N" marker that rotation obeys.

``TreatmentLog`` decides *what* is written (sessions, samples, statistics);
this object decides *where*: it numbers records (one sequence across all
sessions and segments), starts a new segment when the next write would
overflow ``segment_bytes``, and deletes the oldest segment to stay within
``max_segments`` (or fewer, if the filesystem cannot hold that many: see
``refresh_room``) only when every session with records in it was pulled by
the host (or ``overwrite_unpulled``) - never the running session's.

Room figures are kept up to date where they change (a segment created or
deleted, a session begun or ended, the pulled marker moved), so a room
check is O(1) and never lists a directory or asks the filesystem.
"""

import os

from cryo.storage import files as F
from cryo.storage import records as R
from cryo.storage import segments as S

_UNKNOWN_SESSION = 0x7FFFFFFF  # a segment whose head cannot be read
# Blocks kept free for everything else on the flash: littlefs's
# copy-on-write of a file being appended, the config's tmp + rename, the
# audit trail growing between pulls.
_KEEP_BLOCKS = 4


def _blocks_per_segment(segment_bytes, bsize):
    # Data plus littlefs CTZ skip-list pointers (<= 8 bytes per block);
    # whole blocks, since files this size are not inlined in metadata.
    per = segment_bytes + 8 * (segment_bytes // bsize + 1)
    return (per + bsize - 1) // bsize


class SegmentStore:
    def __init__(self, root, segment_bytes, max_segments, overwrite_unpulled, rtc):
        self.root = root
        self.segment_bytes = segment_bytes
        self.max_segments = max_segments  # the budget (log.max_kib)
        self.limit = max_segments  # what this flash holds of it (refresh_room)
        self.overwrite_unpulled = overwrite_unpulled
        self._rtc = rtc
        self.next_seq = 1
        self.committed_seq = 0  # last record made durable by a flush
        self._dirty = False  # written since the last commit
        self._f = None
        self._cur = 0  # current segment number (0: none)
        self._size = 0  # bytes written or reserved in the current segment
        self._need_new = True  # the next write starts a new segment
        # Kept in memory (scanned here, updated on create/delete) so a room
        # check costs no directory listing. The host must not delete segment
        # files under a running log.
        self._segs = self._scan()
        self._seg_sess = {}  # segment number -> session named by its segment record
        # What the deletion rule needs to know about the log (``track``).
        self._session = 0
        self._active = False
        self._pulled = self._read_pulled()
        self._reclaim = 0  # bytes in segments rotation may delete
        self._free_blocks = None  # None: the filesystem has no statvfs
        self._fs_blocks = None
        self._bsize = 0
        self._seg_blocks = 0

    def _scan(self):
        nums = []
        for name in os.listdir(self.root):
            n = S.seg_number(name)
            if n >= 0:
                nums.append(n)
        nums.sort()
        return nums

    def _path(self, n):
        return F.join(self.root, S.seg_name(n))

    # -- recovery at open --

    def recover(self):
        """Find where the log ends after a reset or power cut: delete the
        newest segments holding no committed record (cut while being
        created), then continue after the newest that holds one, appending
        to it only if it is intact (a damaged end starts a new segment).

        Returns that segment's ``segments.scan_tail`` dict (None: no record
        anywhere) and the damaged bytes seen on the way.
        """
        rejected = 0
        while self._segs:
            n = self._segs[-1]
            data = F.read_file(self._path(n))
            tail = S.scan_tail(data)
            rejected += tail["rejected"]
            if tail["last_seq"] >= 0:
                self._cur = n
                self._size = len(data)
                self._need_new = tail["damaged"]
                self.next_seq = tail["last_seq"] + 1
                self.committed_seq = tail["last_seq"]
                return tail, rejected
            os.remove(self._path(n))
            self._segs.pop()
        return None, rejected

    def names_since(self, session):
        """Segment names that may hold ``session``'s records: walks back from
        the newest only as far as the segment its header is in."""
        names = []
        i = len(self._segs) - 1
        while i >= 0:
            n = self._segs[i]
            names.append(S.seg_name(n))
            if self._segment_session(n) < session:
                break
            i -= 1
        names.reverse()
        return names

    # -- what the deletion rule needs --

    def track(self, session, active):
        """The newest session started, and whether it is still open."""
        self._session = session
        self._active = active

    def pulled(self):
        """Highest session number the host has pulled (the ``pulled`` file)."""
        return self._pulled

    def _read_pulled(self):
        try:
            s = R.decode_pulled(F.read_file(F.join(self.root, S.PULLED)))
        except OSError:
            return 0
        return s if s is not None else 0

    def set_pulled(self, session):
        """Record that the host holds sessions up to ``session`` (atomic)."""
        F.write_atomic(F.join(self.root, S.PULLED), R.encode_pulled(session))
        self._pulled = session
        self.refresh_room(True)

    # -- writing --

    def ensure_room(self, nbytes):
        """Make ``nbytes`` fit the current segment (rotating if needed);
        False if no segment may be deleted to make room."""
        if self._f is None and not self._need_new and self._cur:
            self._f = open(self._path(self._cur), "ab")
        if self._f is None or self._need_new or self._size + nbytes > self.segment_bytes:
            return self._new_segment()
        return True

    def emit(self, rtype, values):
        """Append one framed record (not yet committed)."""
        data = R.encode(rtype, self.next_seq, values)
        self._f.write(data)
        self._size += len(data)
        self.next_seq += 1
        self._dirty = True

    def take_seq(self, nbytes):
        """Number one record queued elsewhere and reserve its ``nbytes``
        (the sample path: integer-only, allocation-free)."""
        seq = self.next_seq
        self.next_seq = seq + 1
        self._size += nbytes
        return seq

    def write(self, buf):
        self._f.write(buf)
        self._dirty = True

    def dirty(self):
        """Records written since the last commit."""
        return self._dirty

    def commit(self):
        """Make everything written durable (littlefs ``file_sync``)."""
        self._f.flush()
        self.committed_seq = self.next_seq - 1
        self._dirty = False

    def close(self):
        if self._f is not None:
            self._f.close()  # littlefs syncs the file here
            self._f = None
            if self._dirty:
                self.committed_seq = self.next_seq - 1
                self._dirty = False

    def _new_segment(self):
        self.close()
        segs = self._segs
        nxt = (segs[-1] + 1) if segs else 1
        # Make room: at most ``limit`` files including the new one.
        while len(segs) >= self.limit:
            if not self._can_delete():
                return False
            try:
                os.remove(self._path(segs[0]))
                self._adjust_free(self._seg_blocks)
            except OSError:
                pass  # already gone
            self._seg_sess.pop(segs.pop(0), None)
        self._adjust_free(-self._seg_blocks)
        self._cur = nxt
        self._size = 0
        self._f = open(self._path(nxt), "ab")
        segs.append(nxt)
        self._seg_sess[nxt] = self._session
        self._need_new = False
        self.emit(
            R.TYPE_SEGMENT,
            {
                "segment": nxt,
                "session": self._session,
                "open": 1 if self._active else 0,
                "rtc_s": 0 if self._rtc is None else self._rtc()[0],
            },
        )
        self.commit()
        self.refresh_room(False)
        return True

    def _can_delete(self):
        """May the oldest segment go? Only if its sessions were all pulled."""
        segs = self._segs
        if len(segs) < 2:
            return False
        newest_in_oldest = self._segment_session(segs[1])
        if self._active and newest_in_oldest >= self._session:
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
        if s != _UNKNOWN_SESSION:
            self._seg_sess[n] = s
        return s

    def _read_segment_session(self, n):
        try:
            with open(self._path(n), "rb") as f:
                head = f.read(R.frame_size(R.TYPE_SEGMENT))
        except OSError:
            return _UNKNOWN_SESSION
        rec, _ = R.decode_frame(head, 0)
        if rec is None or rec["type"] != "segment":
            return _UNKNOWN_SESSION  # not deletable unless overwrite
        return rec["session"]

    # -- room --

    def current_free(self):
        """Bytes left in the current segment; -1 if the next write starts a new one."""
        if self._cur and not self._need_new:
            return self.segment_bytes - self._size
        return -1

    def space(self):
        """(unused budget bytes, bytes in segments rotation may delete): O(1)."""
        unused = (self.limit - len(self._segs)) * self.segment_bytes
        free = self.current_free()
        if free > 0:
            unused += free
        return unused, self._reclaim

    def room_for(self, nbytes, waste):
        """True if ``nbytes`` of records fit, each segment losing up to
        ``waste`` bytes at its end (a record that did not fit).

        Counts whole segments against unused segments of the budget plus
        segments rotation may delete (pulled sessions, or any with
        ``overwrite_unpulled``); then against the filesystem's free blocks
        (2 kept for copy-on-write). O(1): every figure is kept up to date
        where it changes.
        """
        seg = self.segment_bytes
        usable = seg - R.frame_size(R.TYPE_SEGMENT) - waste
        cur = self.current_free() - waste
        if cur < 0:
            cur = 0
        rest = nbytes - cur
        new_segs = 0 if rest <= 0 else (rest + usable - 1) // usable
        unused, reclaim = self.space()
        if new_segs * seg > (unused // seg) * seg + reclaim:
            return False
        if self._free_blocks is None:
            return True
        reclaim_blocks = (reclaim // seg) * self._seg_blocks
        return new_segs * self._seg_blocks <= self._free_blocks - 2 + reclaim_blocks

    def _scan_reclaim(self):
        # Whole segments rotation may delete: pulled (or overwritable)
        # sessions only, never the running one. At most max_segments steps,
        # run where the answer changes, not per room check.
        segs = self._segs
        reclaim = 0
        k = 1
        while k < len(segs):
            s = self._segment_session(segs[k])
            if self._active and s >= self._session:
                break  # the running session has records in segs[k-1]
            if not self.overwrite_unpulled and s > self._pulled:
                break  # segs[k-1] holds a session the host has not pulled
            reclaim += self.segment_bytes
            k += 1
        return reclaim

    def cap_to_flash(self, reserve):
        """Once, when the log opens at boot, after ``refresh_room(True)``
        (whose statvfs gave the filesystem's size): fewer segments than the
        budget if that size, less ``reserve`` bytes for the firmware's
        other files and the blocks kept free, cannot hold them all (what the
        files on the flash take *now* is ``refresh_room``'s job). Returns
        the filesystem's size in bytes when it cut, else None."""
        if self._fs_blocks is None:
            return None  # no statvfs: the budget stands
        bsize = self._bsize
        fits = (self._fs_blocks - _KEEP_BLOCKS - (reserve + bsize - 1) // bsize) // self._seg_blocks
        if fits >= self.max_segments:
            return None
        self.max_segments = max(2, fits)
        if self.limit > self.max_segments:
            self.limit = self.max_segments
        return self._fs_blocks * bsize

    def refresh_room(self, fs):
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
        bsize = self._bsize = st[0]
        self._fs_blocks = st[2]  # the filesystem's size (cap_to_flash)
        self._seg_blocks = _blocks_per_segment(self.segment_bytes, bsize)
        self._free_blocks = st[4]  # f_bavail
        # The budget, cut to what the flash can hold: free blocks plus those
        # the log's own segments take (rotation reuses them). A budget larger
        # than the flash would otherwise never rotate and refuse every
        # treatment once the flash filled, pulled sessions and all.
        held = len(self._segs) * self._seg_blocks
        if self._cur and not self._need_new:
            held += (self._size + bsize - 1) // bsize - self._seg_blocks
        fits = (st[4] + held - _KEEP_BLOCKS) // self._seg_blocks
        self.limit = self.max_segments if fits >= self.max_segments else max(2, fits)

    def _adjust_free(self, blocks):
        if self._free_blocks is not None:
            self._free_blocks += blocks
