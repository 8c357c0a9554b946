"""processed update ids per bot

Telegram numbers updates per bot, so a new bot token starts again from low ids: the
duplicate check must be keyed by (bot id, update id), or a new bot's updates are dropped.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Only a replay guard: dropping the old rows is safe (Telegram redelivers for a day).
    op.drop_table("processed_updates")
    op.create_table(
        "processed_updates",
        sa.Column("bot_id", sa.BigInteger(), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_key", sa.String(length=64), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bot_id", "update_id"),
    )
    op.create_index(
        "ix_processed_updates_customer_key", "processed_updates", ["customer_key"], unique=False
    )


def downgrade() -> None:
    op.drop_table("processed_updates")
    op.create_table(
        "processed_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("customer_key", sa.String(length=64), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("update_id"),
    )
    op.create_index(
        "ix_processed_updates_customer_key", "processed_updates", ["customer_key"], unique=False
    )
