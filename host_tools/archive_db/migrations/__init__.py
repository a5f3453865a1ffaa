"""Alembic migrations of the archive database (``versions/``, oldest first).

A migration is history: it keeps the schema as it was at its revision,
written out in the compact form below rather than imported from
``host_tools.archive_db.tables``, which follows the newest revision.
"""

import sqlalchemy as sa
from alembic import op

S = sa.String
INT, BIG, DT, BOOL, TEXT = sa.Integer, sa.BigInteger, sa.DateTime, sa.Boolean, sa.Text


def create_table(name, spec, *constraints):
    """``spec``: ``(column, type, *flags)`` per column; flags "pk", "nn" (NOT NULL)."""
    cols = [
        sa.Column(
            col, typ, primary_key="pk" in flags, nullable="nn" not in flags and "pk" not in flags
        )
        for col, typ, *flags in spec
    ]
    op.create_table(name, *cols, *constraints)


# An audit entry's columns but its key, unchanged since revision 0001 (0005 re-keys them).
AUDIT_ENTRY = (
    ("at", DT),
    ("kind", S(24), "nn"),
    ("role", S(16)),
    ("subject", TEXT),
    ("old", TEXT),
    ("new", TEXT),
    ("prev", S(64), "nn"),
)
