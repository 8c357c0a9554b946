"""WhatsApp: the customer-service window, and proactive sends with their delivery statuses

Revision ID: 0005_whatsapp
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_whatsapp"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "whatsapp_windows",
        sa.Column("customer_key", sa.String(length=64), nullable=False),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_key"),
    )
    op.create_table(
        "whatsapp_sends",
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("customer_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=True),
        sa.Column("template", sa.String(length=512), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index("ix_whatsapp_sends_customer_key", "whatsapp_sends", ["customer_key"])
    op.create_index("ix_whatsapp_sends_ref", "whatsapp_sends", ["ref"])


def downgrade() -> None:
    op.drop_index("ix_whatsapp_sends_ref", table_name="whatsapp_sends")
    op.drop_index("ix_whatsapp_sends_customer_key", table_name="whatsapp_sends")
    op.drop_table("whatsapp_sends")
    op.drop_table("whatsapp_windows")
