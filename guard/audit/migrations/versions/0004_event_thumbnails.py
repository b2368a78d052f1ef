"""The masked thumbnails of an event's images (guard.audit.schema.event_thumbnails).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "event_thumbnails",
        sa.Column("event_id", sa.String(40), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_event_thumbnails_expires", "event_thumbnails", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_event_thumbnails_expires", "event_thumbnails")
    op.drop_table("event_thumbnails")
