"""The hardware watchdog: armed before any valve may open, fed only when healthy.

``Watchdog(board, timeout_ms)`` starts ``machine.WDT`` through the board
on the first ``arm`` — every path into a phase that can open a valve (the
self-test, a tune start) calls it — and not at construction: it cannot be
stopped once started, and an idle board with closed valves must stay
reachable for service mode. A board may have started it already
(``board.wdt``). ``feed`` is called by the tick only when every health
check passed, so a sick or hung loop lets it bite.
"""


class Watchdog:
    def __init__(self, board, timeout_ms):
        self._board = board
        self.timeout_ms = timeout_ms
        self._wdt = board.wdt
        self.feeds = 0

    @property
    def running(self):
        return self._wdt is not None

    def arm(self):
        """Start it if it does not run; the reason when it cannot (None: runs)."""
        if self._wdt is None:
            try:
                self._wdt = self._board.start_watchdog(self.timeout_ms)
            except Exception as e:  # noqa: BLE001 - the caller reports it
                return "could not start: %s" % e
        return None if self._wdt is not None else "the board has no watchdog"

    def feed(self):
        """One feed; the reason when it failed (None: fed or not running)."""
        if self._wdt is None:
            return None
        try:
            self._wdt.feed()
        except Exception as e:  # noqa: BLE001 - a watchdog that cannot be fed is a fault
            return "feed failed: %s" % e
        self.feeds += 1
        return None
