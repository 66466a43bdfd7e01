"""The order lifecycle (issue 11): documents linked to the business keys they carry,
each order's derived state, and its reconciliation exceptions.

- ``document_keys``: (document, partner, key kind, value), indexed on
  (partner_id, key_kind, value): PO numbers, shipment ids, invoice numbers, bills of
  lading, tracking numbers, SSCCs, control numbers, transport ids.
- ``orders``: one row per (partner, PO number) with its state (gateway.domain.orders)
  and when the periodic check must look at it again (``next_check_at``).
- ``order_exceptions``: open until the gap closes (``closed_at``).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "document_id", sa.String(26), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("partner_id", sa.String(100), nullable=False),
        sa.Column("key_kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(80), nullable=False),
    )
    op.create_index("ix_document_keys_lookup", "document_keys", ["partner_id", "key_kind", "value"])
    op.create_index("ix_document_keys_document", "document_keys", ["document_id"])
    op.create_table(
        "orders",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("partner_id", sa.String(100), nullable=False),
        sa.Column("po_number", sa.String(80), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("open_exceptions", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("partner_id", "po_number", name="uq_orders_partner_po"),
    )
    op.create_index("ix_orders_state", "orders", ["state", "id"])
    op.create_index("ix_orders_next_check", "orders", ["next_check_at"])
    op.create_index("ix_orders_updated_at", "orders", ["updated_at"])
    op.create_table(
        "order_exceptions",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("partner_id", sa.String(100), nullable=False),
        sa.Column("po_number", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(120), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("documents", sa.JSON(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_order_exceptions_order", "order_exceptions", ["partner_id", "po_number"])
    op.create_index("ix_order_exceptions_open", "order_exceptions", ["closed_at", "id"])


def downgrade() -> None:
    op.drop_table("order_exceptions")
    op.drop_table("orders")
    op.drop_table("document_keys")
