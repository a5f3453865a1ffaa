"""What a clinician reads about one treatment session (the report's data, also as JSON).

Built from the archived records only (``host_tools.archive.reader``): the device's
own words for the outcome (the phase the treatment ended in: DONE, ABORTED,
FAULT — or "interrupted" when power was cut), faults by name with a
plain-language meaning, whether the target was reached and for how long
the tissue stayed at or below it in each freeze cycle, the device clock's
start time, serial and firmware hash. Durations are m:ss.

The fields a clinic adds — patient and lesion reference, operator, reviewer
— are entered on the host (``cryo logs report N --patient …``) and stored
with the archive (``<archive>/<serial>/clinical/sessionNNNNN.json``); they
never go to the device.
"""

from __future__ import annotations

import json
from pathlib import Path

from host_tools import fwimport  # noqa: F401  (firmware/ importable)

CLINICAL_FIELDS = ("patient_ref", "lesion_ref", "operator", "reviewer")

# Plain-language meaning of each interlock condition (cryo.interlock.conditions).
FAULT_MEANINGS = {
    "overcool": "tissue colder than the hard safety floor; cooling stopped",
    "freeze_time": "a freeze lasted longer than its hard maximum; cooling stopped",
    "dose": "the cumulative cold dose for this site reached its limit",
    "sensor": "a required temperature sensor failed or stopped updating",
    "disagree": "the two tissue sensors disagreed beyond tolerance",
    "no_cool": "the tissue did not cool as expected (no cryogen reaching it?)",
    "stuck_open": "temperature kept falling with the valve commanded closed (valve stuck open?)",
    "depleted": "cryogen supply depleted or its pressure too low",
    "pressure": "cryogen supply pressure outside its allowed window",
    "estop": "the emergency stop was pressed (or its circuit opened)",
    "released": "the footswitch or handpiece was released during the treatment",
    "overrun": "the controller's loop ran late or missed its heartbeat",
    "watchdog": "the hardware watchdog was missing or failed its self-test",
    "config": "the configuration was invalid or its limits corrupted",
    "storage": "the treatment log could not be written or had no room",
    "firmware": "the firmware failed its authenticity check at boot",
    "internal": "an internal firmware error stopped the controller",
    "excess_flow": "more cryogen was delivered than reaching the target could need",
}


def _outcome_words() -> dict:
    """Summary outcome code → (the device's word, what the clinician needs to know).

    A session the device closed itself ends in a phase, and its word is that
    phase's name as the device shows it (cryo.protocol.states); one closed
    at the next boot says why."""
    from cryo.protocol import states
    from cryo.storage import records as R

    return {
        R.OUTCOME_COMPLETED: (states.NAMES[states.DONE], None),
        R.OUTCOME_STOPPED: (states.NAMES[states.ABORTED], None),
        R.OUTCOME_FAULT: (states.NAMES[states.FAULT], None),
        R.OUTCOME_INTERRUPTED: ("INTERRUPTED", "power lost; closed at the next boot"),
        R.OUTCOME_DAMAGED: (
            "UNKNOWN",
            "the last record was damaged on flash; closed at the next boot",
        ),
        None: ("OPEN", "no summary"),
    }


def outcome_word(outcome) -> str:
    """How a session ended, in the device's words (``cryo logs list``, the report):
    ``outcome`` is its summary's outcome code, None for a session without one."""
    return _outcome_words()[outcome][0]


def outcome_text(outcome) -> str:
    """``outcome_word`` with what the clinician needs to know about it (the report)."""
    word, note = _outcome_words()[outcome]
    return f"{word} ({note})" if note else word


def mss(seconds) -> str:
    """Seconds as m:ss (a clinician's duration)."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def _temp(cc):
    from cryo.storage import records as R

    return None if cc is None or cc == R.NO_READING16 else round(cc / R.TISSUE_SCALE, 2)


def fault_name(code: int) -> str:
    from cryo.interlock.conditions import NAMES

    return NAMES[code] if 0 <= code < len(NAMES) else f"condition {code}"


def clinical_path(dest: Path, session: int) -> Path:
    return Path(dest) / "clinical" / f"session{session:05d}.json"


def clinical_fields(dest: Path, session: int, **given) -> dict:
    """The host-entered fields of a session, updated with ``given`` (non-None) and saved."""
    p = clinical_path(dest, session)
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError):
        doc = {}
    doc = {k: doc.get(k) for k in CLINICAL_FIELDS}
    changes = {k: v for k, v in given.items() if k in CLINICAL_FIELDS and v is not None}
    if changes:
        doc.update(changes)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(doc, indent=1))
    return doc


def _phase_spans(samples, events):
    """(phase, start_s, end_s) in order, from the phase events (samples as fallback)."""
    from cryo.storage import records as R

    marks = [(e["t_ms"] / 1000, e["arg"]) for e in events if e["code"] == R.EV_PHASE]
    if not marks and samples:
        marks = [(samples[0]["t_ms"] / 1000, samples[0]["phase"])]
    end = max([samples[-1]["t_ms"] / 1000 if samples else 0.0] + [e["t_ms"] / 1000 for e in events])
    out = []
    for i, (t, ph) in enumerate(marks):
        t_next = marks[i + 1][0] if i + 1 < len(marks) else end
        out.append((ph, t, t_next))
    return out


def report_data(dest: Path, session: int) -> dict:
    """Everything the clinician's report shows, as plain data (also written as JSON)."""
    from cryo.protocol import states
    from cryo.storage import records as R
    from host_tools.archive.reader import rtc_date, session_records
    from host_tools.errors import InvalidInput

    dest = Path(dest)
    recs = session_records(dest, session)
    header = next((r for r in recs if r["type"] == "session"), None)
    summary = next((r for r in recs if r["type"] == "summary"), None)
    samples = [r for r in recs if r["type"] == "sample"]
    events = [r for r in recs if r["type"] == "event"]
    if header is None or not samples:
        raise InvalidInput(f"session {session} has no header or no samples to report")
    target = _temp(header.get("target_cc"))
    spans = _phase_spans(samples, events)
    names = states.NAMES

    def phase_name(ph):
        return names[ph] if 0 <= ph < len(names) else f"phase {ph}"

    period = 1.0 / header.get("sample_hz", 10)
    cycles = []
    for ph, a, b in spans:
        if ph == states.FREEZE:
            inside = [r for r in samples if a <= r["t_ms"] / 1000 < b]
            temps = [r["tissue_c"] for r in inside if r["tissue_c"] is not None]
            at = sum(period for t in temps if target is not None and t <= target)
            cycles.append(
                {
                    "cycle": len(cycles) + 1,
                    "freeze_s": round(b - a, 1),
                    "freeze": mss(b - a),
                    "at_or_below_target_s": round(at, 1),
                    "at_or_below_target": mss(at),
                    "min_temp_c": round(min(temps), 2) if temps else None,
                    "target_reached": bool(at > 0),
                    "thaw_s": None,
                    "thaw": "—",
                }
            )
        elif ph == states.THAW and cycles:
            cycles[-1]["thaw_s"] = round(b - a, 1)
            cycles[-1]["thaw"] = mss(b - a)
    if summary or not spans:
        outcome = outcome_text(summary["outcome"] if summary else None)
    else:  # still open: the phase it is in
        outcome = phase_name(spans[-1][0])
    faults = [
        {
            "time_s": round(e["t_ms"] / 1000, 1),
            "time": mss(e["t_ms"] / 1000),
            "code": e["arg"],
            "name": fault_name(e["arg"]),
            "meaning": FAULT_MEANINGS.get(fault_name(e["arg"]), "see the device event log"),
        }
        for e in events
        if e["code"] == R.EV_FAULT
    ]
    temps = [r["tissue_c"] for r in samples if r["tissue_c"] is not None]
    min_temp = round(min(temps), 2) if temps else None
    reached = any(c["target_reached"] for c in cycles)
    duration = (summary["duration_ms"] if summary else samples[-1]["t_ms"]) / 1000
    rtc = header.get("rtc_s") or 0
    fw_hash = header.get("fw_hash") or b""
    if isinstance(fw_hash, (bytes, bytearray)):
        fw_hash = fw_hash.hex()
    if not fw_hash.strip("0"):
        # zeros: the board booted no release manifest (firmware copied or
        # frozen by hand, not installed by `cryo flash`): no identity to show
        fw_hash = None
    return {
        "session": session,
        "device_serial": dest.name,
        "firmware_version": header.get("fw_version"),
        "firmware_hash": fw_hash,
        "start": rtc_date(rtc) + " UTC (device clock)" if rtc else "device clock not set",
        "target_c": target,
        "thaw_threshold_c": _temp(header.get("thaw_cc")),
        "planned_cycles": header.get("cycles"),
        "planned_freeze": mss(header["freeze_ds"] / 10) if "freeze_ds" in header else "—",
        "duration_s": round(duration, 1),
        "duration": mss(duration),
        "outcome": outcome,
        "target_reached": reached,
        "target_note": None
        if reached
        else f"TARGET NOT REACHED: minimum {min_temp} °C, target {target} °C",
        "min_temp_c": min_temp,
        "cycles_done": len(cycles),
        "cycles": cycles,
        "faults": faults,
        "phases": [{"phase": phase_name(p), "start_s": a, "end_s": b} for p, a, b in spans],
        "clinical": clinical_fields(dest, session),
    }
