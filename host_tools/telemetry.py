"""Telemetry recordings: one row per frame, rates, CSV, plot.

Shared by ``cryo monitor`` and ``cryo tune`` (host_tools/commands/).
"""

from __future__ import annotations

import csv
import time

from host_tools.errors import InvalidInput

CSV_COLUMNS = (
    "host_s",
    "t_ms",
    "seq",
    "phase",
    "mode",
    "setpoint_c",
    "tissue",
    "tissue2",
    "aux",
    "tissue3",
    "cj_c",
    "demand",
    "valve",
    "p",
    "i",
    "d",
    "faults",
    "alarms",
)


def row_of(tel: dict, host_s: float) -> dict:
    temps = tel.get("temps") or {}
    return {
        "host_s": round(host_s, 3),
        "t_ms": tel.get("t_ms"),
        "seq": tel.get("tel"),
        "phase": tel.get("phase"),
        "mode": tel.get("mode"),
        "setpoint_c": tel.get("setpoint_c"),
        "tissue": temps.get("tissue"),
        "tissue2": temps.get("tissue2"),
        "aux": temps.get("aux"),
        "tissue3": temps.get("tissue3"),
        "cj_c": tel.get("cj_c"),
        "demand": tel.get("demand"),
        "valve": int(bool(tel.get("valve"))),
        "p": tel.get("p"),
        "i": tel.get("i"),
        "d": tel.get("d"),
        "faults": " ".join(tel.get("faults") or []),
        "alarms": " ".join(tel.get("alarms") or []),
    }


STALL_PERIODS = 5  # frames missing in a row before the stream counts as stopped
MIN_STALL_S = 2.0  # ... but never less: a loaded host delays a reader by a second


class Recorder:
    """Collects telemetry rows; device-time rate and gaps.

    A gap is a jump in the frames' sequence numbers, or a stall: no frame
    for ``stall_s`` (``STALL_PERIODS`` frame periods at ``rate_hz``, at
    least ``MIN_STALL_S``) — a board that hangs, resets or loses its link
    sends no numbered frame to jump over, so silence is a gap as well.
    """

    def __init__(self, rate_hz: float | None = None):
        self.rows: list[dict] = []
        self.gaps = 0
        self.stalls = 0
        self.stall_s = max(STALL_PERIODS / rate_hz, MIN_STALL_S) if rate_hz else None
        self._last_seq = None
        self._t0 = time.monotonic()
        self._last_rx = self._t0
        self._stalled = False

    def add(self, tel: dict):
        seq = tel.get("tel")
        if self._stalled:
            self._stalled = False  # frames again: the stall already counted this gap
        elif self._last_seq is not None and isinstance(seq, int) and seq != self._last_seq + 1:
            self.gaps += 1
        self._last_seq = seq
        self._last_rx = tel.get("_rx", time.monotonic())
        self.rows.append(row_of(tel, self._last_rx - self._t0))

    def stalled(self, now: float | None = None) -> bool:
        """True while no frame came for ``stall_s``; a new stall counts one gap."""
        if self.stall_s is None:
            return False
        now = time.monotonic() if now is None else now
        if not self._stalled and now - self._last_rx > self.stall_s:
            self._stalled = True
            self.stalls += 1
            self.gaps += 1
        return self._stalled

    def stopped(self) -> str | None:
        """Why the stream is not flowing now, in one line (None: it flows)."""
        if not self.stalled():
            return None
        silent = time.monotonic() - self._last_rx
        if not self.rows:
            return f"no telemetry frame arrived in {silent:.1f} s"
        return (
            f"frames stopped at {self.rows[-1]['host_s']:.1f} s after {len(self.rows)} "
            f"(frame {self._last_seq}): none for the last {silent:.1f} s"
        )

    def device_rate_hz(self) -> float | None:
        """Frames per second of device time (t_ms), wrap-safe (2**30)."""
        ts = [r["t_ms"] for r in self.rows if isinstance(r["t_ms"], int)]
        if len(ts) < 2:
            return None
        span = 0
        for a, b in zip(ts, ts[1:]):
            span += ((b - a + (1 << 29)) & ((1 << 30) - 1)) - (1 << 29)
        return (len(ts) - 1) * 1000.0 / span if span > 0 else None

    def host_rate_hz(self) -> float | None:
        if len(self.rows) < 2:
            return None
        span = self.rows[-1]["host_s"] - self.rows[0]["host_s"]
        return (len(self.rows) - 1) / span if span > 0 else None

    def write_csv(self, path):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            w.writeheader()
            w.writerows(self.rows)


def read_csv(path) -> list[dict]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from None
    except (UnicodeDecodeError, csv.Error):
        raise InvalidInput(f"{path}: not a CSV text file") from None


def _num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def plot_rows(rows: list[dict], path, title="cryo monitor"):
    """Temperatures + setpoint (top), demand/valve (middle), P/I/D (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise InvalidInput("nothing to plot: no telemetry was recorded")
    t = [_num(r["host_s"]) - _num(rows[0]["host_s"]) for r in rows]
    fig, ax = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    for key, label in (
        ("tissue", "tissue"),
        ("tissue2", "tissue 2"),
        ("tissue3", "skin probe"),
        ("aux", "aux"),
    ):
        ys = [_num(r[key]) for r in rows]
        if any(y == y for y in ys):
            ax[0].plot(t, ys, label=label)
    ax[0].plot(t, [_num(r["setpoint_c"]) for r in rows], "k--", label="setpoint")
    ax[0].plot(t, [_num(r["cj_c"]) for r in rows], ":", label="cold junction")
    ax[0].set_ylabel("°C")
    ax[0].legend(loc="best", fontsize="small")
    ax[1].plot(t, [_num(r["demand"]) for r in rows], label="demand")
    ax[1].step(t, [_num(r["valve"]) for r in rows], where="post", label="valve open")
    ax[1].set_ylabel("0..1")
    ax[1].legend(loc="best", fontsize="small")
    for key in ("p", "i", "d"):
        ax[2].plot(t, [_num(r[key]) for r in rows], label=key.upper())
    ax[2].set_ylabel("PID terms")
    ax[2].set_xlabel("s")
    ax[2].legend(loc="best", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
