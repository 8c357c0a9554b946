"""themes, theme members, theme vector spaces and duplicate suggestions (issue 21)

Revision ID: 0006_themes
Revises: 0006_messenger
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_themes"
down_revision: str | None = "0006_messenger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "themes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("label", sa.String(length=160), nullable=False),
        sa.Column("label_pinned", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("edited", sa.Boolean(), nullable=False),
        sa.Column("centroid", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("emerging_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("emerging_announced_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["merged_into_id"], ["themes.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_themes_language", "themes", ["language"])
    op.create_index("ix_themes_status", "themes", ["status"])
    op.create_table(
        "theme_members",
        sa.Column("feedback_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("theme_id", sa.Integer(), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("checked", sa.Boolean(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["feedback_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["theme_id"], ["themes.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("feedback_id"),
    )
    op.create_index("ix_theme_members_theme_id", "theme_members", ["theme_id"])
    op.create_index("ix_theme_members_checked", "theme_members", ["checked"])
    op.create_table(
        "theme_models",
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("idf", sa.JSON(), nullable=False),
        sa.Column("mean", sa.LargeBinary(), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("language"),
    )
    op.create_table(
        "duplicate_suggestions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["feedback_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["candidate_id"], ["feedback.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("feedback_id", "candidate_id"),
    )
    op.create_index(
        "ix_duplicate_suggestions_feedback_id", "duplicate_suggestions", ["feedback_id"]
    )
    op.create_index(
        "ix_duplicate_suggestions_candidate_id", "duplicate_suggestions", ["candidate_id"]
    )
    op.create_index("ix_duplicate_suggestions_status", "duplicate_suggestions", ["status"])


def downgrade() -> None:
    op.drop_table("duplicate_suggestions")
    op.drop_table("theme_models")
    op.drop_index("ix_theme_members_checked", table_name="theme_members")
    op.drop_index("ix_theme_members_theme_id", table_name="theme_members")
    op.drop_table("theme_members")
    op.drop_index("ix_themes_status", table_name="themes")
    op.drop_index("ix_themes_language", table_name="themes")
    op.drop_table("themes")
