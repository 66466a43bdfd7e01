"""SQLite only: ``orders.updated_at`` values that an order update stored as
``YYYY-MM-DD HH:MM:SS[.ffffff]+00:00`` (an untyped parameter inside ``CASE``, fixed
with this revision's release) are rewritten in the form every other timestamp has
(``YYYY-MM-DD HH:MM:SS.ffffff``, UTC), so ``?since=`` and the ordering by
``updated_at``, which compare the text, see them in their place. PostgreSQL stored
real timestamps and is untouched.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "UPDATE orders SET updated_at = CASE"
        " WHEN length(updated_at) = 25 THEN substr(updated_at, 1, 19) || '.000000'"
        " ELSE substr(updated_at, 1, 26) END"
        " WHERE updated_at LIKE '%+00:00'"
    )


def downgrade() -> None:
    """Nothing to undo: the rewritten values mean the same instants."""
