"""The chain's mode (keyed or keyless, fixed by the first write), failed sign-ins kept in the store, and
signed console sessions (role at sign-in, HMAC).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("chain_head", sa.Column("mode", sa.String(8), nullable=False, server_default=""))
    # A store written before modes existed takes the mode of its newest link.
    conn = op.get_bind()
    last = conn.execute(sa.text("SELECT record FROM events ORDER BY seq DESC LIMIT 1")).scalar()
    if last is not None:
        mode = "keyed" if json.loads(last).get("chain_key") else "keyless"
        conn.execute(sa.text("UPDATE chain_head SET mode = :mode WHERE id = 1"), {"mode": mode})
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failures_time", "login_failures", ["time"])
    op.create_index("ix_login_failures_account_time", "login_failures", ["account", "time"])
    op.execute("DELETE FROM sessions")  # unsigned sessions end: everyone signs in again once
    op.add_column("sessions", sa.Column("role", sa.String(20), nullable=False, server_default=""))
    op.add_column("sessions", sa.Column("mac", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("sessions", "mac")
    op.drop_column("sessions", "role")
    op.drop_index("ix_login_failures_account_time", "login_failures")
    op.drop_index("ix_login_failures_time", "login_failures")
    op.drop_table("login_failures")
    op.drop_column("chain_head", "mode")
