"""What the treatment log keeps in RAM until the flash takes it.

Samples wait in a preallocated queue of ``commit_every`` slots and events a
control tick writes wait in ``events`` slots, so that neither a flash
write nor a littlefs commit (millions of instructions on a Cortex-M) lands
inside the tick: the log writes them at the idle point right after it.

Order on the flash is sequence order. A sample takes its sequence number
when it is queued, an event when it is written, so ``write_to`` writes the
queued samples first, then the events, in the order they came.
"""

from cryo.storage import records as R


class Pending:
    """Preallocated queues: ``samples`` slots of 16 bytes, ``events`` events."""

    def __init__(self, samples, events):
        self.size = samples
        self.buf = bytearray(samples * R.SAMPLE_SIZE)  # the whole queue, written at once
        self._mv = memoryview(self.buf)
        self.n = 0  # samples queued
        self._ev = [0] * (4 * events)  # (t, code, arg, arg2) per slot
        self._events = events
        self._nev = 0

    def add_sample(self, seq, t, tissue_cc, aux_dc, setpoint_dc, demand_pct, valve, phase):
        """Queue one sample (integer-only, allocation-free); True when the
        queue is now full."""
        R.encode_sample(
            self.buf,
            self.n * R.SAMPLE_SIZE,
            seq,
            t,
            tissue_cc,
            R.code12(aux_dc),
            R.code12(setpoint_dc),
            demand_pct,
            valve,
            phase,
        )
        self.n += 1
        return self.n == self.size

    def add_event(self, t, code, arg, arg2):
        """Keep one event for later; False when every slot is taken."""
        n = self._nev
        if n == self._events:
            return False
        p = self._ev
        i = 4 * n
        p[i] = t
        p[i + 1] = code
        p[i + 2] = arg
        p[i + 3] = arg2
        self._nev = n + 1
        return True

    def has_events(self):
        return self._nev > 0

    def write_samples(self, store):
        """Queued samples to ``store`` (a partial queue allocates a view)."""
        n = self.n
        if n == 0:
            return
        self.n = 0
        if n == self.size:
            store.write(self.buf)
        else:
            store.write(self._mv[: n * R.SAMPLE_SIZE])

    def write_to(self, store, append):
        """Queued samples, then the kept events through ``append(rtype,
        values)`` (which numbers each and checks room)."""
        self.write_samples(store)
        n = self._nev
        self._nev = 0
        p = self._ev
        for k in range(n):
            i = 4 * k
            append(
                R.TYPE_EVENT, {"t_ms": p[i], "code": p[i + 1], "arg": p[i + 2], "arg2": p[i + 3]}
            )
