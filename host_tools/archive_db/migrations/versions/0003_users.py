"""Who may sign in to the dashboard (``cryo serve``), with a role of the device's schema."""

from alembic import op

from host_tools.archive_db.migrations import S
from host_tools.archive_db.migrations import create_table as _table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    _table(
        "archive_user",
        [("name", S(64), "pk"), ("role", S(16), "nn"), ("password_hash", S(256), "nn")],
    )


def downgrade():
    op.drop_table("archive_user")
