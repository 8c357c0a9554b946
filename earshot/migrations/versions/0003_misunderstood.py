"""misunderstood messages and their assignment history

Messages that went to the fallback or out of scope, answers voted down and low-margin
answers, redacted, for the dashboard's Misunderstood queue (issue 18, item 5).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "misunderstood",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customer_key", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("answered_topic", sa.String(length=64), nullable=True),
        sa.Column("margin", sa.Float(), nullable=True),
        sa.Column("assignment", sa.String(length=64), nullable=True),
        sa.Column("assigned_by", sa.String(length=64), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_misunderstood_created_at", "misunderstood", ["created_at"])
    op.create_index("ix_misunderstood_customer_key", "misunderstood", ["customer_key"])
    op.create_index("ix_misunderstood_assignment", "misunderstood", ["assignment"])
    op.create_table(
        "misunderstood_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("old_value", sa.String(length=64), nullable=True),
        sa.Column("new_value", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["misunderstood.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_misunderstood_history_message_id", "misunderstood_history", ["message_id"])


def downgrade() -> None:
    op.drop_table("misunderstood_history")
    op.drop_table("misunderstood")
