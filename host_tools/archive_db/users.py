"""The archive's users: a name, a role of the device's own schema, a password hash.

Roles are ``cryo.storage.schema.ROLES`` (operator < engineer < service),
the same names the device and ``cryo config`` use. Passwords are stored as
salted scrypt hashes (werkzeug.security), never in clear.
"""

from __future__ import annotations

import sqlalchemy as sa

from host_tools import fwimport  # noqa: F401  (firmware/ importable)
from host_tools.archive_db import tables as T
from host_tools.errors import InvalidInput

# isort: split
from cryo.storage.schema import ROLES

MIN_PASSWORD = 8


def check_role(role: str):
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of: {', '.join(ROLES)}")


def set_user(engine, name: str, role: str, password: str):
    """Add the user, or change their role and password."""
    from werkzeug.security import generate_password_hash

    check_role(role)
    if not name or len(name) > 64 or not name.isprintable() or name.strip() != name:
        raise InvalidInput(f"user name {name!r}: 1..64 printable characters, no outer spaces")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters")
    row = {"name": name, "role": role, "password_hash": generate_password_hash(password)}
    with engine.begin() as conn:
        conn.execute(sa.delete(T.archive_user).where(T.archive_user.c.name == name))
        conn.execute(sa.insert(T.archive_user), [row])


def check(engine, name: str, password: str) -> str | None:
    """The user's role if the password is theirs, else None."""
    from werkzeug.security import check_password_hash

    with engine.connect() as conn:
        row = conn.execute(
            sa.select(T.archive_user.c.role, T.archive_user.c.password_hash).where(
                T.archive_user.c.name == name
            )
        ).first()
    if row is None or not check_password_hash(row[1], password):
        return None
    return row[0]


def at_least(role: str | None, needed: str) -> bool:
    return role is not None and ROLES.get(role, 0) >= ROLES[needed]
