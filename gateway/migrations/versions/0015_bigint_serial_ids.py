"""PostgreSQL only: the serial ids of ``message_events``, ``jobs``,
``delivery_attempts``, ``document_keys``, ``audit_log`` and ``login_failures`` become
64-bit (``bigint``, their sequences ``AS bigint``). As 32-bit serials they ran out
after 2^31 rows (about 430 million messages at five events each), and from then on
every insert into the table failed (SQLSTATE 2200H). No column refers to these ids
(no foreign key, no copy elsewhere), so only the ids themselves change.
``raw_journal`` (0011) was created 64-bit already.

Changing a column's type rewrites the table and its indexes under an exclusive lock:
on a large ``message_events`` the upgrade takes minutes and the gateway stays stopped
meanwhile (docs/operations.md, Schema). SQLite is untouched: its ``INTEGER PRIMARY
KEY`` is the 64-bit rowid already.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TABLES = ("message_events", "jobs", "delivery_attempts", "document_keys", "audit_log", "login_failures")


def _retype(sql_type: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id TYPE {sql_type}")
        # The serial's own sequence, under whatever name it was given: a sequence keeps
        # its type's maximum (2^31 - 1 for integer) until it is altered too.
        sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar_one()
        op.execute(f"ALTER SEQUENCE {sequence} AS {sql_type}")


def upgrade() -> None:
    _retype("bigint")


def downgrade() -> None:
    """Refused by PostgreSQL (out of range) once a table holds an id past 2^31 - 1."""
    _retype("integer")
