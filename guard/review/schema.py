"""The console's own table: allow-list values proposed by reviewers (migration 0002 creates it)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String, Table

from guard.audit.schema import metadata

SUGGESTION_STATUSES = ("pending", "accepted", "rejected")

# Unlike every other table, ``value`` holds a detected value in the clear. That is deliberate: a
# reviewer opened the evidence, judged the finding a false positive (not personal data, e.g. an
# agency's public service number) and proposed the value for the policy's allow-list, which is
# itself plain text. Nothing is stored here unless a reviewer made that judgement.
allowlist_suggestions = Table(
    "allowlist_suggestions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity_type", String(64), nullable=False),
    Column("value", String(200), nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("proposed_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False, default="pending"),   # pending | accepted | rejected
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Index("ix_allowlist_suggestions_status", "status"),
)
