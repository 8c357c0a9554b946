"""integrations: the event outbox, webhook and Slack deliveries, tracker issue links

The outbox of events for outgoing webhooks and Slack, each delivery's state and every
attempt, the GitHub/Jira issues made from items and the tracker webhooks already handled.

Revision ID: 0007_integrations
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_integrations"
down_revision: str | None = "0006_themes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "integration_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=True),
        sa.Column("ref", sa.String(length=16), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("dispatched_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_integration_events_kind", "integration_events", ["kind"])
    op.create_index("ix_integration_events_ref", "integration_events", ["ref"])
    op.create_index("ix_integration_events_created_at", "integration_events", ["created_at"])
    op.create_index("ix_integration_events_dispatched_at", "integration_events", ["dispatched_at"])
    op.create_table(
        "integration_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=80), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["integration_events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "target"),
    )
    op.create_index("ix_integration_deliveries_event_id", "integration_deliveries", ["event_id"])
    op.create_index("ix_integration_deliveries_status", "integration_deliveries", ["status"])
    op.create_index(
        "ix_integration_deliveries_next_attempt_at", "integration_deliveries", ["next_attempt_at"]
    )
    op.create_table(
        "integration_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["integration_deliveries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_integration_attempts_delivery_id", "integration_attempts", ["delivery_id"])
    op.create_table(
        "issue_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.Column("tracker", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("status_before", sa.String(length=16), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["feedback_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tracker", "external_id"),
    )
    op.create_index("ix_issue_links_feedback_id", "issue_links", ["feedback_id"])
    op.create_table(
        "inbound_webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("delivery_id", sa.String(length=128), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "delivery_id"),
    )


def downgrade() -> None:
    op.drop_table("inbound_webhooks")
    op.drop_index("ix_issue_links_feedback_id", table_name="issue_links")
    op.drop_table("issue_links")
    op.drop_index("ix_integration_attempts_delivery_id", table_name="integration_attempts")
    op.drop_table("integration_attempts")
    for name in ("next_attempt_at", "status", "event_id"):
        op.drop_index(f"ix_integration_deliveries_{name}", table_name="integration_deliveries")
    op.drop_table("integration_deliveries")
    for name in ("dispatched_at", "created_at", "ref", "kind"):
        op.drop_index(f"ix_integration_events_{name}", table_name="integration_events")
    op.drop_table("integration_events")
