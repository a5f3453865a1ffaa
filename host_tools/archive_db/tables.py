"""The archive database's tables (SQLAlchemy Core): the schema at the newest migration.

Every row is derived from the raw records in the archive folder (the
treatment log segments, the audit trail, the device event history and the
pull log ``pulls.jsonl``), keyed by natural keys (device serial plus the
record's own number), so indexing the same records twice - or re-indexing
from scratch - gives the same rows. Samples are not copied: a session row
names where its records lie (segment file and byte offset); the report
reads them from the raw log.

Temperatures are stored in the log's own scaled integers (0.01 degC for
tissue, ``cryo.storage.records.TISSUE_SCALE``), times as naive UTC
datetimes (the board RTC has no zone); NULL where the board's clock was
never set (the record's RTC time is 0), never a made-up date.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

device = sa.Table(
    "device",
    metadata,
    sa.Column("serial", sa.String(64), primary_key=True),
    sa.Column("board_id", sa.String(32)),
    sa.Column("fw_version", sa.String(32)),
    sa.Column("fw_hash", sa.String(64)),
    sa.Column("first_session_at", sa.DateTime),
    sa.Column("last_session_at", sa.DateTime),
    sa.Column("sessions", sa.Integer, nullable=False, server_default="0"),
    # valve cycles of the archived sessions (see session.valve_cycles)
    sa.Column("valve_cycles", sa.Integer, nullable=False, server_default="0"),
    sa.Column("valve_open_ms", sa.BigInteger, nullable=False, server_default="0"),
    # the safety state as last pulled (migration 0004); NULL: the device has none
    sa.Column("latched", sa.String(600)),  # latched interlock conditions, comma-separated
    sa.Column("boots", sa.BigInteger),
    sa.Column("last_reset", sa.String(32)),
    sa.Column("state_problem", sa.Text),  # an unreadable or damaged state, in words
    # the solenoid's lifetime cycles: the safety state's count, else the newest
    # session's valve-cycle event; NULL for a firmware that keeps none
    sa.Column("lifetime_valve_cycles", sa.BigInteger),
)

session = sa.Table(
    "session",
    metadata,
    sa.Column("serial", sa.String(64), sa.ForeignKey("device.serial"), primary_key=True),
    sa.Column("session", sa.Integer, primary_key=True),
    sa.Column("started_at", sa.DateTime),  # NULL: the board's clock was not set (migration 0005)
    sa.Column("fw_version", sa.String(32)),
    sa.Column("fw_hash", sa.String(64)),
    sa.Column("config_hash", sa.String(64)),
    sa.Column("board_id", sa.String(32)),
    sa.Column("target_cc", sa.Integer),
    sa.Column("cycles_planned", sa.Integer),
    sa.Column("sample_hz", sa.Integer),
    # the summary (NULL while the session is open)
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("duration_ms", sa.BigInteger),
    sa.Column("min_cc", sa.Integer),
    sa.Column("below_target_ms", sa.BigInteger),
    sa.Column("valve_open_ms", sa.BigInteger),
    sa.Column("cycles_done", sa.Integer),
    sa.Column("target_reached", sa.Boolean, nullable=False),
    # counted from the records
    sa.Column("samples", sa.Integer, nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("faults", sa.Integer, nullable=False),
    # the firmware's count (its valve-cycle event), else valve-open transitions
    # in the samples (older firmware: one per sample period at most)
    sa.Column("valve_cycles", sa.Integer, nullable=False),
    # where the raw records lie (the sample block reference)
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("first_segment", sa.String(32), nullable=False),
    sa.Column("first_offset", sa.Integer, nullable=False),
    sa.Column("last_segment", sa.String(32), nullable=False),
    sa.Column("lifetime_valve_cycles", sa.BigInteger),  # migration 0004
    sa.Index("ix_session_started_at", "started_at"),
    sa.Index("ix_session_outcome_started", "outcome", "started_at"),
)


def _per_session(name, *columns):
    """A table of records within a session, keyed like the log: (device, sequence number)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("session", sa.Integer, nullable=False),
        *columns,
        sa.ForeignKeyConstraint(["serial", "session"], ["session.serial", "session.session"]),
        sa.Index(f"ix_{name}_session", "serial", "session"),
    )


event = _per_session(
    "event",
    sa.Column("t_ms", sa.BigInteger, nullable=False),
    sa.Column("code", sa.Integer, nullable=False),
    sa.Column("name", sa.String(24), nullable=False),
    sa.Column("arg", sa.Integer, nullable=False),
    sa.Column("arg2", sa.Integer, nullable=False),
)

fault = _per_session(
    "fault",
    sa.Column("at", sa.DateTime),  # NULL: the board's clock was not set
    sa.Column("t_ms", sa.BigInteger, nullable=False),
    sa.Column("code", sa.Integer, nullable=False),
    sa.Column("condition", sa.String(32), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Index("ix_fault_condition_at", "condition", "at"),
)

# An audit entry is known by its own hash (the SHA-256 of its line, which
# chains every entry before it), not by its number: a trail that restarted
# its numbering (a wiped flash) is a new chain whose entries are new rows
# (migration 0005).
audit = sa.Table(
    "audit",
    metadata,
    sa.Column("serial", sa.String(64), sa.ForeignKey("device.serial"), primary_key=True),
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("role", sa.String(16)),
    sa.Column("subject", sa.Text),
    sa.Column("old", sa.Text),  # JSON
    sa.Column("new", sa.Text),  # JSON
    sa.Column("prev", sa.String(64), nullable=False),
)

pull = sa.Table(
    "pull",
    metadata,
    sa.Column("serial", sa.String(64), sa.ForeignKey("device.serial"), primary_key=True),
    sa.Column("at", sa.DateTime, primary_key=True),
    sa.Column("who", sa.String(64), primary_key=True),
    sa.Column("host", sa.String(128), primary_key=True),
    sa.Column("port", sa.String(256)),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("records", sa.BigInteger, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("tool_version", sa.String(32)),
)

# Added by migration 0002: the device's own event history (boots, faults,
# acknowledgements, resets), kept beyond the ring's capacity by the pull.
device_event = sa.Table(
    "device_event",
    metadata,
    sa.Column("serial", sa.String(64), sa.ForeignKey("device.serial"), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("at", sa.DateTime),
    sa.Column("t_ms", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("code", sa.Integer, nullable=False),
    sa.Column("condition", sa.String(32)),
    sa.Column("arg", sa.BigInteger, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

# Added by migration 0003: who may sign in to the dashboard. Not derived from
# the raw records (so not in DATA_TABLES): re-indexing keeps it.
archive_user = sa.Table(
    "archive_user",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),  # cryo.storage.schema.ROLES
    sa.Column("password_hash", sa.String(256), nullable=False),
)

# What migration 0005 left for the next index to redo, from the raw records
# it cannot read: a session's last_seq (read the session again: it was
# indexed before its lifetime valve count was kept) and an audit entry's
# hash prefix (replaced by the entries of the trail, hashed).
REREAD_SEQ = -1
PENDING_HASH = "pending:"

# Child tables first: the order rows are deleted in (and the reverse for inserts).
DATA_TABLES = (fault, event, session, audit, device_event, pull, device)
