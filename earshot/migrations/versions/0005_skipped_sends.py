"""skipped sends

A channel may decline to send a campaign ask or a status notice (WhatsApp outside its
24-hour window without an approved template): the reason is recorded, and campaign asks
get the status "skipped".

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaign_sends") as batch:
        batch.add_column(sa.Column("skipped_reason", sa.String(length=64), nullable=True))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("skipped_reason", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("skipped_reason")
    with op.batch_alter_table("campaign_sends") as batch:
        batch.drop_column("skipped_reason")
