"""The device's safety state as last pulled (latched conditions, boots, last reset, lifetime
valve cycles) and each session's lifetime valve count, from the firmware's valve-cycle event."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (
    ("latched", sa.String(600)),
    ("boots", sa.BigInteger),
    ("last_reset", sa.String(32)),
    ("state_problem", sa.Text),
    ("lifetime_valve_cycles", sa.BigInteger),
)


def upgrade():
    with op.batch_alter_table("device") as batch:
        for name, typ in COLUMNS:
            batch.add_column(sa.Column(name, typ))
    with op.batch_alter_table("session") as batch:
        batch.add_column(sa.Column("lifetime_valve_cycles", sa.BigInteger))


def downgrade():
    with op.batch_alter_table("session") as batch:
        batch.drop_column("lifetime_valve_cycles")
    with op.batch_alter_table("device") as batch:
        for name, _ in COLUMNS:
            batch.drop_column(name)
