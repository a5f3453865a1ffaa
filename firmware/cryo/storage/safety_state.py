"""Safety state that survives power cuts and resets (docs/storage.md).

IEC 60601-1 single-fault safety: a latched interlock condition must stay
latched across a reboot, and a lost record of it must not look like "no
fault". The state is one 28-byte record (``device_records.SAFETY_STATE_FMT``:
latched mask, cold dose of the current site, flags, boot counter, last
reset cause, lifetime valve cycles, sequence number, CRC-32) written
alternately into two slots of one file (``paths.SAFETY_STATE_PATH``, 56
bytes)::

    offset  0: slot A    offset 28: slot B

A 48-byte file holds two slots of layout 1 (24 bytes, written by firmware
before the valve-cycle count): it is read as such, and the next save
replaces it with a layout-2 file the way a new device's first save does.

``save`` overwrites only the slot that does *not* hold the newest valid
record, so an interrupted write can damage at most the slot being written
and the other still holds the previous state. ``load`` takes the valid
slot with the higher sequence number. On littlefs the write is even atomic
(file data becomes visible only at sync, littlefs DESIGN.md, "Files" and
"Metadata pairs"), so after a cut the file holds the old or the new
record; the two slots make the same guarantee hold byte by byte on a
filesystem or flash that tears a write (tests cut at every byte).

The sequence number is 32 bits: at one save per second it wraps after
136 years, so slots are compared as plain integers.
"""

from micropython import const

from cryo import paths
from cryo.storage import device_records as D

FLAG_TREATING = D.FLAG_TREATING
FLAG_SITE_FROZEN = D.FLAG_SITE_FROZEN

_SIZE = const(28)  # device_records.SAFETY_STATE_SIZE
_V1_SIZE = const(24)  # device_records.SAFETY_STATE_V1_SIZE
_ENOENT = const(2)
_I32_MIN = -0x80000000
_I32_MAX = 0x7FFFFFFF
_U32_MAX = 0xFFFFFFFF


def _check(name, value, lo, hi):
    if not isinstance(value, int) or value < lo or value > hi:
        raise ValueError("safety state %s = %r: allowed integers %d..%d" % (name, value, lo, hi))


class SafetyState:
    """Two-slot safety state in the file ``path`` (see module docstring).

    ``problem``: after ``load``, a message when a slot was damaged (the
    other one was used) or when the state was lost; None otherwise.
    """

    def __init__(self, path=None):
        # No I/O here: the controller constructs this before it decides how
        # to boot; every flash access happens in load/save.
        self.path = path if path is not None else paths.on_flash(paths.SAFETY_STATE_PATH)
        self.problem = None
        self._file = bytearray(2 * _SIZE)
        self._rec = bytearray(_SIZE)
        self._known = False  # flash state examined (load, or a save that ran it)
        self._exists = False  # the state file exists (in the current layout)
        self._seq = 0  # seq of the newest valid slot
        self._slot = 0  # slot the next save writes
        self._last = None  # values on flash (latched, dose, flags, boots, reset), None: unknown
        self._boots = 0
        self._reset = 0
        self._cycles = 0

    def _open(self, path, mode):
        # One place that opens files (tests count the calls on a subclass).
        return open(path, mode)

    def _read(self):
        # -> bytes read into self._file, or -1 if the file does not exist.
        try:
            f = self._open(self.path, "rb")
        except OSError as e:
            if e.args and e.args[0] == _ENOENT:
                return -1
            raise
        try:
            mv = memoryview(self._file)
            n = 0
            while n < 2 * _SIZE:
                k = f.readinto(mv[n:])
                if not k:
                    break
                n += k
            return n
        finally:
            f.close()

    def load(self):
        """The saved state as a dict, ``None`` if no state file exists yet.

        Keys: latched, site_dose, flags, boots, last_reset, valve_cycles,
        seq. A file with
        no valid slot (corrupt, truncated, unreadable) gives the defaults
        (all 0) plus ``"lost": True``: the caller must treat the device as
        faulted. Never raises for a damaged file.
        """
        self._known = True
        self._last = None
        self._seq = 0
        self._slot = 0
        self.problem = None
        try:
            n = self._read()
        except OSError as e:
            n = 0
            self.problem = "%s unreadable: %r" % (self.path, e)
        if n < 0:
            self._exists = False
            return None
        data = memoryview(self._file)[:n]
        size = _SIZE
        version = D.SAFETY_STATE_VERSION
        if n == 2 * _V1_SIZE:  # layout 1: read it; the next save rewrites the file
            size = _V1_SIZE
            version = 1
        self._exists = version == D.SAFETY_STATE_VERSION
        why = [
            D.safety_slot_problem(data, 0, version),
            D.safety_slot_problem(data, size, version),
        ]
        best = -1
        state = None
        for i in (0, 1):
            if why[i] is None:
                s = D.decode_safety_state(data, i * size, version)
                if state is None or s["seq"] > state["seq"]:
                    best = i
                    state = s
        if best < 0:
            if self.problem is None:
                self.problem = "%s (%d bytes): no valid slot (A: %s, B: %s)" % (
                    self.path,
                    n,
                    why[0],
                    why[1],
                )
            state = {"latched": 0, "site_dose": 0, "flags": 0, "boots": 0, "last_reset": 0}
            state["valve_cycles"] = 0
            state["seq"] = 0
            state["lost"] = True
            return state
        other = why[1 - best]
        if other is not None and other != "erased":
            self.problem = "%s: slot %s %s, used slot %s" % (
                self.path,
                "AB"[1 - best],
                other,
                "AB"[best],
            )
        self._seq = state["seq"]
        self._slot = 1 - best
        self._boots = state["boots"]
        self._reset = state["last_reset"]
        self._cycles = state["valve_cycles"]
        self._last = (
            state["latched"],
            state["site_dose"],
            state["flags"],
            self._boots,
            self._reset,
            self._cycles,
        )
        if not self._exists:
            self._last = None  # a layout-1 file: the next save rewrites it
        return state

    def save(self, latched, site_dose, flags, boots=None, last_reset=None, valve_cycles=None):
        """Write the state into the next slot; True when it is on flash.

        ``boots``/``last_reset``/``valve_cycles`` None keep the values last
        loaded or saved.
        ``site_dose`` saturates at the i32 limits (a larger dose is the
        conservative reading); other out-of-range values raise ValueError.
        Unchanged values are not written again (True). An OSError gives
        False and leaves the slot choice as it was, so a retry can never
        overwrite the last good record.
        """
        if boots is None:
            boots = self._boots
        if last_reset is None:
            last_reset = self._reset
        if valve_cycles is None:
            valve_cycles = self._cycles
        _check("latched", latched, 0, _U32_MAX)
        _check("flags", flags, 0, 0xFFFF)
        _check("boots", boots, 0, _U32_MAX)
        _check("last_reset", last_reset, 0, 255)
        _check("valve_cycles", valve_cycles, 0, _U32_MAX)
        if not isinstance(site_dose, int):
            raise ValueError("safety state site_dose = %r: allowed integers" % (site_dose,))
        if site_dose > _I32_MAX:
            site_dose = _I32_MAX
        elif site_dose < _I32_MIN:
            site_dose = _I32_MIN
        if not self._known:
            self.load()  # which slot is the newest: never guess
        vals = (latched, site_dose, flags, boots, last_reset, valve_cycles)
        if vals == self._last:
            return True
        seq = self._seq + 1
        D.encode_safety_state(
            self._rec, 0, latched, site_dose, flags, boots, last_reset, valve_cycles, seq
        )
        try:
            if self._exists:
                self._write_slot()
            else:
                self._create()
        except OSError as e:
            self.problem = "%s: save failed: %r" % (self.path, e)
            self._last = None  # what is on flash in that slot is unknown now
            return False
        self._exists = True
        self._seq = seq
        self._slot = 1 - self._slot
        self._last = vals
        self._boots = boots
        self._reset = last_reset
        self._cycles = valve_cycles
        return True

    def _write_slot(self):
        try:
            f = self._open(self.path, "r+b")
        except OSError as e:
            if e.args and e.args[0] == _ENOENT:  # removed since: start a new file
                self._create()
                return
            raise
        try:
            f.seek(self._slot * _SIZE)
            if f.write(self._rec) != _SIZE:
                raise OSError(5, "short write")
        finally:
            f.close()  # littlefs commits (syncs) the file here

    def _create(self):
        # First save of a factory-new device: slot A = the record, slot B
        # erased, written as <path>.tmp and renamed (atomic on littlefs), so
        # a cut leaves no file (nothing was ever saved) or a complete one.
        import os

        self._slot = 0
        buf = self._file
        buf[0:_SIZE] = self._rec
        i = _SIZE
        while i < 2 * _SIZE:
            buf[i] = 0xFF
            i += 1
        tmp = self.path + ".tmp"
        f = self._open(tmp, "wb")
        try:
            f.write(buf)
        finally:
            f.close()
        os.rename(tmp, self.path)
