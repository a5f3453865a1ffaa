"""A session's report data and its trace as columns, for the dashboard's interactive report."""

from __future__ import annotations

from pathlib import Path


def session_trace(dest: Path, session: int) -> tuple[dict, dict]:
    """(``clinical.report_data``, trace columns ``t_s, tissue_c, setpoint_c, demand_pct, valve``)."""
    from host_tools.archive import session_records
    from host_tools.clinical import report_data

    data = report_data(dest, session)
    samples = [r for r in session_records(dest, session) if r["type"] == "sample"]
    trace = {
        "t_s": [r["t_ms"] / 1000 for r in samples],
        "tissue_c": [r["tissue_c"] for r in samples],
        "setpoint_c": [r["setpoint_c"] for r in samples],
        "demand_pct": [r["demand_pct"] for r in samples],
        "valve": [r["valve"] for r in samples],
    }
    return data, trace
