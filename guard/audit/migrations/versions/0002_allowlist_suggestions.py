"""Allow-list suggestions from the review console (guard.review.schema.allowlist_suggestions).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "allowlist_suggestions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entity_type", sa.String(64), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("proposed_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_allowlist_suggestions_status", "allowlist_suggestions", ["status"])


def downgrade() -> None:
    op.drop_index("ix_allowlist_suggestions_status", "allowlist_suggestions")
    op.drop_table("allowlist_suggestions")
