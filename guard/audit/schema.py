"""The audit store's tables: one schema for SQLite and PostgreSQL (SQLAlchemy Core).

``events.record`` is the canonical JSON of an event and the only thing the hash chain covers; the
other event columns are copies kept for filtering, and ``guard audit verify`` checks they still agree
with it. Evidence (the original prompt) lives apart, encrypted, so it can be purged without breaking
the chain.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
_Seq = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events", metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("event_id", String(40), nullable=False, unique=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("user_name", String(200), nullable=False, default=""),
    Column("client", String(64), nullable=False, default=""),
    Column("service", String(100), nullable=False, default=""),
    Column("host", String(255), nullable=False, default=""),
    Column("node", String(100), nullable=False, default=""),
    Column("record", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_events_time", "time"),
    Index("ix_events_user_time", "user_name", "time"),
    Index("ix_events_decision_time", "decision", "time"),
)

# One row per (event, entity type): filters and per-type counts without parsing JSON.
event_entities = Table(
    "event_entities", metadata,
    Column("event_seq", _Seq, ForeignKey("events.seq", ondelete="CASCADE"), primary_key=True),
    Column("entity_type", String(64), primary_key=True),
    Column("count", Integer, nullable=False),
    Index("ix_event_entities_type", "entity_type"),
)

# The newest link of the chain: a single row, locked while an event is appended, so several proxy
# nodes sharing one PostgreSQL database still build one chain; it also reveals deleted tail events.
chain_head = Table(
    "chain_head", metadata,
    Column("id", Integer, primary_key=True),
    Column("last_seq", _Seq, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("length", _Seq, nullable=False),
    # keyed | keyless, set by the first write (migration 0003); "" while the store is empty.
    Column("mode", String(8), nullable=False, default=""),
)

evidence = Table(
    "evidence", metadata,
    Column("event_id", String(40), primary_key=True),
    Column("key_id", String(16), nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_evidence_expires", "expires_at"),
)

# The masked thumbnails of an event's images (guard.images.thumbnail: small JPEGs with every value
# found blacked out), for the console; the event's record lists their SHA-256 digests, so the chain
# vouches for them, and they are purged with the evidence (expires_at), like the event's other copies.
event_thumbnails = Table(
    "event_thumbnails", metadata,
    Column("event_id", String(40), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_event_thumbnails_expires", "expires_at"),
)

dispositions = Table(
    "dispositions", metadata,
    Column("event_id", String(40), primary_key=True),
    Column("status", String(20), nullable=False),        # confirmed | false_positive | follow_up
    Column("note", Text, nullable=False, default=""),
    Column("reviewer", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_dispositions_status", "status"),
)

users = Table(
    "users", metadata,
    Column("name", String(200), primary_key=True),
    Column("role", String(20), nullable=False),          # reviewer | author | admin
    Column("password_hash", String(300), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

# Console sessions live in the store, so several console replicas share them; only a hash of the
# session token is kept.
sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_name", String(200), ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # The role at sign-in (a changed role ends the session) and an HMAC of the row under a key derived
    # from the audit key (migration 0003): a row written by anyone else opens no session.
    Column("role", String(20), nullable=False, default=""),
    Column("mac", String(64), nullable=False, default=""),
)

# Failed console sign-ins, kept in the store so every console replica throttles the same way; the
# account name is kept as a hash (a mistyped password is sometimes typed into the name field).
login_failures = Table(
    "login_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(64), nullable=False),
    Column("address", String(64), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Index("ix_login_failures_time", "time"),
    Index("ix_login_failures_account_time", "account", "time"),
)
