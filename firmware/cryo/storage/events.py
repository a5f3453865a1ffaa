"""Persistent device event log: faults, acks, boots, also outside sessions.

The treatment log (``cryo.storage.log``) records events only while a
session is open; IEC 60601-1 single-fault safety needs every fault on
record, so this log keeps faults, acknowledgements, boots and reset causes,
restored latches, internal errors, a lost safety state, watchdog resets in
treatment, new sites and refused starts - whenever they happen.

File (``paths.DEVICE_EVENTS_PATH``): a ring of ``capacity`` fixed 24-byte
slots (``device_records.DEV_EVENT_FMT``: seq, RTC seconds, ticks, kind, code,
layout version, arg, CRC-32), preallocated with 0xFF. Record ``seq`` goes
into slot ``seq % capacity``, so the ring overwrites the oldest record and
an append costs one record write whatever the history. Opening reads every
slot once (O(capacity), never O(history)) and continues after the highest
valid sequence number.

Power cuts: littlefs makes a write durable and visible at the file sync
(``flush``) and keeps the previous contents until then (littlefs DESIGN.md,
"Files"), so a cut loses at most the record being appended. On a medium
that tears writes, the torn slot fails its CRC and is skipped (``damaged``
counts such slots at open); the next append reuses that slot, and every
other record is untouched. littlefs rewrites the rest of a file's block
from the written offset on a sync (copy-on-write, DESIGN.md "CTZ
skip-lists"), so an append costs at most the file size (``capacity`` x 24
bytes, 6 KiB by default) of flash programming - bounded, not growing with
history, and spread over the flash by littlefs's wear leveling.

If an existing file does not hold exactly ``capacity`` slots (the
capacity was changed, or a non-atomic filesystem cut its creation) it is
rebuilt at open with the newest records that fit; ``resized`` says what
happened.
"""

import os

from micropython import const

from cryo import paths
from cryo.storage import device_records as D

_SIZE = const(24)  # device_records.DEV_EVENT_SIZE


class DeviceEventLog:
    """Ring of device events in ``path`` (see module docstring).

    ``rtc``: callable returning seconds since 2000-01-01 UTC (or a tuple
    whose first item is that, like the treatment log's); None, an error or a
    value outside 0..2**32-1 records 0 (= time unknown). ``capacity``:
    slots of a new file, 2..65535.

    ``damaged``: slots found torn or corrupt at open; ``resized``: message
    when the file was rebuilt at open; ``error``: the last OSError (appends
    that returned -1), None after a successful append.
    """

    def __init__(self, path=None, capacity=256, rtc=None):
        if not isinstance(capacity, int) or not 2 <= capacity <= 65535:
            raise ValueError("device event log capacity = %r: allowed 2..65535" % (capacity,))
        self.path = path if path is not None else paths.on_flash(paths.DEVICE_EVENTS_PATH)
        self.capacity = capacity
        self._rtc = rtc
        self._buf = bytearray(_SIZE)
        self._f = None
        self._last = 0
        self.damaged = 0
        self.resized = None
        self.error = None
        try:
            self._start()
        except OSError as e:
            # The controller runs without it rather than not at all; every
            # append retries the open and returns -1 while it fails.
            self.error = "%s: %r" % (self.path, e)
            self._close()

    @property
    def last_seq(self):
        """Sequence number of the newest record (0: none yet)."""
        return self._last

    def _open(self, path, mode):
        # One place that opens files (tests count reads on a subclass).
        return open(path, mode)

    # -- opening --

    def _start(self):
        try:
            size = os.stat(self.path)[6]
        except OSError:
            size = 0
        if size != self.capacity * _SIZE:
            self._rebuild(size)
        self._f = self._open(self.path, "r+b")
        self._scan()

    def _scan(self):
        # One pass over every slot: the newest valid seq, damaged slots.
        f = self._f
        buf = self._buf
        f.seek(0)
        last = 0
        damaged = 0
        i = 0
        while i < self.capacity:
            if f.readinto(buf) != _SIZE:
                raise OSError(5, "%s: short read at slot %d" % (self.path, i))
            why = D.dev_event_problem(buf, 0)
            if why is None:
                seq = buf[0] | (buf[1] << 8) | (buf[2] << 16) | (buf[3] << 24)
                if seq > last:
                    last = seq
            elif why != "erased":
                damaged += 1
            i += 1
        self._last = last
        self.damaged = damaged

    def _rebuild(self, size):
        # A new file (size 0), or one of another size: keep the newest
        # records that fit, each at seq % capacity; written as <path>.tmp
        # and renamed (atomic on littlefs).
        keep = {}  # slot -> (seq, record bytes)
        found = 0
        if size:
            with self._open(self.path, "rb") as f:
                while f.readinto(self._buf) == _SIZE:
                    if D.dev_event_problem(self._buf, 0) is None:
                        found += 1
                        seq = D.dev_event_tuple(self._buf, 0)[0]
                        slot = seq % self.capacity
                        if slot not in keep or keep[slot][0] < seq:
                            keep[slot] = (seq, bytes(self._buf))
            # Keep the last `capacity` sequence numbers only: they map to
            # distinct slots, so later appends overwrite them oldest first.
            newest = 0
            for s in keep:
                if keep[s][0] > newest:
                    newest = keep[s][0]
            for s in list(keep):
                if keep[s][0] <= newest - self.capacity:
                    del keep[s]
        tmp = self.path + ".tmp"
        blank = b"\xff" * _SIZE
        with self._open(tmp, "wb") as f:
            i = 0
            while i < self.capacity:
                f.write(keep[i][1] if i in keep else blank)
                i += 1
        os.rename(tmp, self.path)
        if size:
            self.resized = "%s held %d bytes (%d valid records); rebuilt with %d slots, kept %d" % (
                self.path,
                size,
                found,
                self.capacity,
                len(keep),
            )

    def _close(self):
        f = self._f
        self._f = None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass

    def close(self):
        """Release the file (appends reopen it)."""
        self._close()

    # -- writing --

    def _rtc_now(self):
        if self._rtc is None:
            return 0
        try:
            v = self._rtc()
            if isinstance(v, tuple):
                v = v[0]
        except Exception:  # noqa: BLE001 - an RTC failure must not lose the event
            return 0
        if not isinstance(v, int) or v < 0 or v > 0xFFFFFFFF:
            return 0
        return v

    def append(self, kind, code=0, arg=0, t_ms=0):
        """Append one event; its seq, or -1 if the flash write failed.

        ``kind``: a ``device_records.DEV_*`` constant; ``code`` 0..255; ``arg`` an
        int stored modulo 2**32 (read back as i32); ``t_ms`` board ticks.
        One record write and one sync per call; never raises OSError
        (``error`` holds the reason). A bad kind or code raises ValueError.
        """
        if kind not in D.DEV_KIND_NAMES:
            raise ValueError(
                "device event kind %r: allowed %s"
                % (kind, ", ".join(D.DEV_KIND_NAMES[k] + "=%d" % k for k in D.DEV_KIND_NAMES))
            )
        if not isinstance(code, int) or not 0 <= code <= 255:
            raise ValueError("device event code %r: allowed 0..255" % (code,))
        try:
            if self._f is None:
                self._start()
            seq = self._last + 1
            D.encode_dev_event(self._buf, 0, seq, self._rtc_now(), t_ms, kind, code, arg)
            f = self._f
            f.seek((seq % self.capacity) * _SIZE)
            if f.write(self._buf) != _SIZE:
                raise OSError(5, "short write")
            f.flush()  # littlefs: the record is committed here
        except OSError as e:
            # Not advanced: a retry writes the same seq into the same slot.
            self.error = "%s: %r" % (self.path, e)
            self._close()
            return -1
        self._last = seq
        self.error = None
        return seq

    # -- reading --

    def records(self, since_seq=0):
        """Valid records with seq > ``since_seq``, in seq order.

        Tuples ``(seq, rtc_s, t_ms, kind, code, arg)``. Reads the whole ring
        (control/host path). Raises OSError if the file cannot be read.
        """
        if self._f is None:
            self._start()
        f = self._f
        buf = self._buf
        out = []
        f.seek(0)
        i = 0
        while i < self.capacity:
            if f.readinto(buf) != _SIZE:
                break
            if D.dev_event_problem(buf, 0) is None:
                rec = D.dev_event_tuple(buf, 0)
                if rec[0] > since_seq:
                    out.append(rec)
            i += 1
        out.sort()
        return out
