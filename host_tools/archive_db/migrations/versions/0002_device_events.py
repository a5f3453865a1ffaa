"""The device's own event history (boots, faults, acknowledgements, resets)."""

import sqlalchemy as sa
from alembic import op

from host_tools.archive_db.migrations import BIG, DT, INT, TEXT, S
from host_tools.archive_db.migrations import create_table as _table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    _table(
        "device_event",
        [
            ("serial", S(64), "pk"),
            ("seq", BIG, "pk"),
            ("at", DT),
            ("t_ms", BIG, "nn"),
            ("kind", S(24), "nn"),
            ("code", INT, "nn"),
            ("condition", S(32)),
            ("arg", BIG, "nn"),
            ("detail", TEXT, "nn"),
        ],
        sa.ForeignKeyConstraint(["serial"], ["device.serial"]),
    )


def downgrade():

    op.drop_table("device_event")
