"""Alembic migrations of the audit store; run by ``AuditStore.open`` (never by hand)."""
