"""Messenger and Instagram: the standard messaging window, and proactive sends with their
delivered/read statuses

Revision ID: 0006_messenger
Revises: 0005_whatsapp
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_messenger"
down_revision: str | None = "0005_whatsapp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "messenger_windows",
        sa.Column("customer_key", sa.String(length=64), nullable=False),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_key"),
    )
    op.create_table(
        "messenger_sends",
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
    op.create_index("ix_messenger_sends_customer_key", "messenger_sends", ["customer_key"])
    op.create_index("ix_messenger_sends_ref", "messenger_sends", ["ref"])


def downgrade() -> None:
    op.drop_index("ix_messenger_sends_ref", table_name="messenger_sends")
    op.drop_index("ix_messenger_sends_customer_key", table_name="messenger_sends")
    op.drop_table("messenger_sends")
    op.drop_table("messenger_windows")
