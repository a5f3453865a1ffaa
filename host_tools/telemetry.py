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


class Recorder:
    """Collects telemetry rows; device-time rate and sequence gaps."""

    def __init__(self):
        self.rows: list[dict] = []
        self.gaps = 0
        self._last_seq = None
        self._t0 = time.monotonic()

    def add(self, tel: dict):
        seq = tel.get("tel")
        if self._last_seq is not None and isinstance(seq, int) and seq != self._last_seq + 1:
            self.gaps += 1
        self._last_seq = seq
        self.rows.append(row_of(tel, tel.get("_rx", time.monotonic()) - self._t0))

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
