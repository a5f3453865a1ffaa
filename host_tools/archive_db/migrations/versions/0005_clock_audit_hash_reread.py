"""What the earlier revisions stored wrongly or not at all, put right.

- A session whose board clock was never set (its record's RTC time 0) was
  indexed as starting 2000-01-01 00:00:00 exactly: its start (and its
  faults' times) become NULL, "clock not set", and its device's first and
  last session are counted again without it.
- Audit entries were keyed by their number, so a trail that restarted its
  numbering (a wiped flash) was never indexed: they are keyed by their own
  hash now. The hash is of the raw line, which the rows do not keep: each
  row gets a placeholder the next index of its device replaces.
- Sessions indexed before revision 0004 kept a NULL lifetime valve count
  that the next pull never filled in (it reads only changed sessions): a
  session without one is marked to be read once more.

The raw records stay the source of truth: after the next pull of each
device (or ``cryo archive reindex``) the database is what a re-index
gives.
"""

import datetime as _dt

import sqlalchemy as sa
from alembic import op

from host_tools.archive_db.migrations import AUDIT_ENTRY, DT, INT, S
from host_tools.archive_db.migrations import create_table as _table
from host_tools.archive_db.tables import PENDING_HASH, REREAD_SEQ

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NO_CLOCK = _dt.datetime(2000, 1, 1)  # what rtc_s 0 was indexed as
AUDIT_COLUMNS = "serial, n, at, kind, role, subject, old, new, prev"

session = sa.table(
    "session",
    sa.column("serial", S),
    sa.column("session", INT),
    sa.column("started_at", DT),
    sa.column("last_seq", sa.BigInteger),
    sa.column("lifetime_valve_cycles", sa.BigInteger),
)
fault = sa.table("fault", sa.column("serial", S), sa.column("session", INT), sa.column("at", DT))
device = sa.table(
    "device",
    sa.column("serial", S),
    sa.column("first_session_at", DT),
    sa.column("last_session_at", DT),
)


def _audit_table(name, by_hash):
    """The audit table keyed by the entry's hash (now) or its number (before)."""
    _table(
        name,
        [
            ("serial", S(64), "pk"),
            *([("hash", S(64), "pk")] if by_hash else []),
            ("n", INT, "nn" if by_hash else "pk"),
            *AUDIT_ENTRY,
        ],
        sa.ForeignKeyConstraint(["serial"], ["device.serial"]),
    )


def upgrade():
    with op.batch_alter_table("session") as batch:
        batch.alter_column("started_at", existing_type=DT, nullable=True)
    with op.batch_alter_table("fault") as batch:
        batch.alter_column("at", existing_type=DT, nullable=True)
    s = session.c
    op.execute(sa.update(session).where(s.started_at == NO_CLOCK).values(started_at=None))
    unset = sa.exists().where(
        sa.and_(s.serial == fault.c.serial, s.session == fault.c.session, s.started_at.is_(None))
    )
    op.execute(sa.update(fault).where(unset).values(at=None))
    mine = s.serial == device.c.serial
    op.execute(
        sa.update(device).values(
            first_session_at=sa.select(sa.func.min(s.started_at)).where(mine).scalar_subquery(),
            last_session_at=sa.select(sa.func.max(s.started_at)).where(mine).scalar_subquery(),
        )
    )
    op.execute(
        sa.update(session).where(s.lifetime_valve_cycles.is_(None)).values(last_seq=REREAD_SEQ)
    )
    _audit_table("audit_by_hash", True)
    op.execute(
        f"INSERT INTO audit_by_hash (hash, {AUDIT_COLUMNS}) "
        f"SELECT '{PENDING_HASH}' || CAST(n AS VARCHAR(12)), {AUDIT_COLUMNS} FROM audit"
    )
    op.drop_table("audit")
    op.rename_table("audit_by_hash", "audit")


def downgrade():
    # one entry per number again: of a restarted trail's, the lowest hash stays
    _audit_table("audit_by_n", False)
    op.execute(
        f"INSERT INTO audit_by_n ({AUDIT_COLUMNS}) SELECT {AUDIT_COLUMNS} FROM audit a "
        "WHERE hash = (SELECT min(hash) FROM audit b WHERE b.serial = a.serial AND b.n = a.n)"
    )
    op.drop_table("audit")
    op.rename_table("audit_by_n", "audit")
    op.execute(sa.update(session).where(session.c.started_at.is_(None)).values(started_at=NO_CLOCK))
    op.execute(sa.update(fault).where(fault.c.at.is_(None)).values(at=NO_CLOCK))
    with op.batch_alter_table("fault") as batch:
        batch.alter_column("at", existing_type=DT, nullable=False)
    with op.batch_alter_table("session") as batch:
        batch.alter_column("started_at", existing_type=DT, nullable=False)
