"""Devices, sessions, session events and faults, audit entries, pulls."""

import sqlalchemy as sa
from alembic import op

from host_tools.archive_db.migrations import AUDIT_ENTRY, BIG, BOOL, DT, INT, S
from host_tools.archive_db.migrations import create_table as _table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    _table(
        "device",
        [
            ("serial", S(64), "pk"),
            ("board_id", S(32)),
            ("fw_version", S(32)),
            ("fw_hash", S(64)),
            ("first_session_at", DT),
            ("last_session_at", DT),
        ],
    )
    for col, typ in (("sessions", INT), ("valve_cycles", INT), ("valve_open_ms", BIG)):
        op.add_column("device", sa.Column(col, typ, nullable=False, server_default="0"))
    _table(
        "session",
        [
            ("serial", S(64), "pk"),
            ("session", INT, "pk"),
            ("started_at", DT, "nn"),
            ("fw_version", S(32)),
            ("fw_hash", S(64)),
            ("config_hash", S(64)),
            ("board_id", S(32)),
            ("target_cc", INT),
            ("cycles_planned", INT),
            ("sample_hz", INT),
            ("outcome", S(16), "nn"),
            ("duration_ms", BIG),
            ("min_cc", INT),
            ("below_target_ms", BIG),
            ("valve_open_ms", BIG),
            ("cycles_done", INT),
            ("target_reached", BOOL, "nn"),
            ("samples", INT, "nn"),
            ("events", INT, "nn"),
            ("faults", INT, "nn"),
            ("valve_cycles", INT, "nn"),
            ("first_seq", BIG, "nn"),
            ("last_seq", BIG, "nn"),
            ("first_segment", S(32), "nn"),
            ("first_offset", INT, "nn"),
            ("last_segment", S(32), "nn"),
        ],
        sa.ForeignKeyConstraint(["serial"], ["device.serial"]),
    )
    op.create_index("ix_session_started_at", "session", ["started_at"])
    op.create_index("ix_session_outcome_started", "session", ["outcome", "started_at"])
    per_session = sa.ForeignKeyConstraint(
        ["serial", "session"], ["session.serial", "session.session"]
    )
    _table(
        "event",
        [
            ("serial", S(64), "pk"),
            ("seq", BIG, "pk"),
            ("session", INT, "nn"),
            ("t_ms", BIG, "nn"),
            ("code", INT, "nn"),
            ("name", S(24), "nn"),
            ("arg", INT, "nn"),
            ("arg2", INT, "nn"),
        ],
        per_session,
    )
    op.create_index("ix_event_session", "event", ["serial", "session"])
    _table(
        "fault",
        [
            ("serial", S(64), "pk"),
            ("seq", BIG, "pk"),
            ("session", INT, "nn"),
            ("at", DT, "nn"),
            ("t_ms", BIG, "nn"),
            ("code", INT, "nn"),
            ("condition", S(32), "nn"),
            ("priority", INT, "nn"),
        ],
        sa.ForeignKeyConstraint(["serial", "session"], ["session.serial", "session.session"]),
    )
    op.create_index("ix_fault_condition_at", "fault", ["condition", "at"])
    op.create_index("ix_fault_session", "fault", ["serial", "session"])
    _table(
        "audit",
        [
            ("serial", S(64), "pk"),
            ("n", INT, "pk"),
            *AUDIT_ENTRY,
        ],
        sa.ForeignKeyConstraint(["serial"], ["device.serial"]),
    )
    _table(
        "pull",
        [
            ("serial", S(64), "pk"),
            ("at", DT, "pk"),
            ("who", S(64), "pk"),
            ("host", S(128), "pk"),
            ("port", S(256)),
            ("bytes", BIG, "nn"),
            ("records", BIG, "nn"),
            ("ok", BOOL, "nn"),
            ("tool_version", S(32)),
        ],
        sa.ForeignKeyConstraint(["serial"], ["device.serial"]),
    )


def downgrade():
    for name in ("pull", "audit", "fault", "event", "session", "device"):
        op.drop_table(name)
