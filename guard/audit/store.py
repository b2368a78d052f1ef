"""The durable audit store: SQLite by default, PostgreSQL for several proxy nodes; one schema.

Every event is appended inside one write transaction that locks the chain head, so events from all
nodes form a single hash chain. The store holds no key: evidence arrives sealed, and the chain key
is only used to compute links.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, bindparam, create_engine, delete, event, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from guard.audit import chain
from guard.audit.events import new_event_id
from guard.audit.evidence import SealedEvidence, unseal
from guard.audit.keys import AuditKeys
from guard.audit.schema import chain_head, event_entities, events, evidence, sessions

DEFAULT_URL = "sqlite:///guard-audit.db"


class AuditStoreError(Exception):
    """The store URL is unusable or the store cannot be opened; the message never holds a password."""


@dataclass(frozen=True)
class StoredEvent:
    """An event ready to append: its record (what the chain covers) and, maybe, sealed evidence."""

    record: Mapping[str, Any]
    evidence: SealedEvidence | None = None
    evidence_expires: datetime | None = None


@dataclass
class VerifyReport:
    checked: int
    problems: list[chain.ChainProblem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def safe_url(url: str) -> str:
    """The URL as it may be printed: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable audit store URL>"


def engine_for(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise AuditStoreError(f"audit store URL {safe_url(url)!r} is not a database URL "
                              "(expected sqlite:///PATH or postgresql://...)") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not the default psycopg2
    elif backend not in ("sqlite", "postgresql"):
        raise AuditStoreError(
            f"audit store {safe_url(url)!r}: only sqlite:/// and postgresql:// are supported")
    try:
        if backend == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": 30})
            _sqlite_tuning(engine)
        else:
            engine = create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
    except (ArgumentError, NoSuchModuleError) as e:
        raise AuditStoreError(f"audit store {safe_url(url)!r}: {e.__class__.__name__}") from None
    return engine


def _sqlite_tuning(engine: Engine) -> None:
    """WAL for readers beside the writer; BEGIN IMMEDIATE for writes so two writers never deadlock."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process; only a power cut may lose the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        writing = connection.get_execution_options().get("guard_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The append path runs once per inspected request: its statements are built once, here, and executed
# with parameters (building them per call cost more than the SQLite commit itself).
_LOCK_HEAD = select(chain_head).where(chain_head.c.id == 1).with_for_update()
_PRESENT = select(events.c.event_id).where(events.c.event_id.in_(bindparam("ids", expanding=True)))
_INSERT_EVENT = insert(events).returning(events.c.seq)
_INSERT_COUNTS = insert(event_entities)
_INSERT_EVIDENCE = insert(evidence)
_MOVE_HEAD = (update(chain_head).where(chain_head.c.id == 1)
              .values(last_seq=bindparam("last_seq"), last_hash=bindparam("last_hash"),
                      length=bindparam("length")))


class AuditStore:
    def __init__(self, url: str = DEFAULT_URL, keys: AuditKeys | None = None, node: str = "") -> None:
        self.url = url
        self.keys = keys
        self.node = node
        self.engine = engine_for(url)

    @classmethod
    def open(cls, url: str = DEFAULT_URL, keys: AuditKeys | None = None, node: str = "") -> AuditStore:
        """Connect and bring the schema up to date (safe to run from several nodes at once)."""
        store = cls(url, keys, node)
        store.migrate()
        return store

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite)."""
        with self.engine.connect().execution_options(guard_write=True) as conn, conn.begin():
            yield conn

    def migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(resources.files("guard.audit") / "migrations"))
        with self.writing() as conn:
            if conn.dialect.name == "postgresql":  # nodes starting together migrate one at a time
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7220140)")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    # ------------------------------------------------------------ appending

    def append(self, items: Sequence[StoredEvent]) -> int:
        """Append events to the chain in one transaction; events already stored are skipped.

        Returns how many were added. Replaying a journal after an unclear failure is therefore safe.
        """
        if not items:
            return 0
        key = self.keys.current if self.keys else None
        with self.writing() as conn:
            head = conn.execute(_LOCK_HEAD).one()
            ids = [str(item.record["event_id"]) for item in items]
            present = set(conn.scalars(_PRESENT, {"ids": ids}))
            prev, length, last_seq = head.last_hash, head.length, head.last_seq
            added = 0
            for item in items:
                record = dict(item.record)
                if record["event_id"] in present:
                    continue
                present.add(record["event_id"])
                record.setdefault("node", self.node)
                record["chain_key"] = key.key_id if key else ""
                record_json = chain.canonical(record)
                link = chain.link(prev, record_json, key.chain_key if key else None)
                seq = conn.execute(_INSERT_EVENT, {
                    "event_id": record["event_id"], "time": datetime.fromisoformat(record["time"]),
                    "kind": record["kind"], "decision": record["decision"],
                    "user_name": record.get("user", ""), "client": record.get("client", ""),
                    "service": record.get("service", ""), "host": record.get("host", ""),
                    "node": record.get("node", ""), "record": record_json, "prev_hash": prev, "hash": link,
                }).scalar_one()
                counts = record.get("entities") or {}
                if counts:
                    conn.execute(_INSERT_COUNTS, [
                        {"event_seq": seq, "entity_type": t, "count": int(n)} for t, n in counts.items()])
                if item.evidence is not None:
                    created = datetime.now(UTC)
                    conn.execute(_INSERT_EVIDENCE, {
                        "event_id": record["event_id"], "key_id": item.evidence.key_id,
                        "nonce": item.evidence.nonce, "ciphertext": item.evidence.ciphertext,
                        "created_at": created,
                        "expires_at": item.evidence_expires or created + timedelta(days=30)})
                prev, length, last_seq = link, length + 1, seq
                added += 1
            conn.execute(_MOVE_HEAD, {"last_seq": last_seq, "last_hash": prev, "length": length})
        return added

    def record_review(self, kind: str, reviewer: str, subject: str, client: str = "",
                      **details: Any) -> str:
        """A reviewer's action (evidence opened, disposition set) as a chained event of its own."""
        event_id = new_event_id()
        record = {"event_id": event_id, "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                  "kind": kind, "decision": "review", "user": reviewer, "client": client, "service": "",
                  "host": "", "subject": subject, "entities": {}, **details}
        self.append([StoredEvent(record)])
        return event_id

    # ------------------------------------------------------------ reading

    def events(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Event records, oldest first (so the newest is last), each with its ``seq``."""
        query = select(events.c.seq, events.c.record).order_by(events.c.seq)
        if since is not None:
            query = query.where(events.c.time >= _utc(since))
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=500).execute(query):
                record = json.loads(row.record)
                record["seq"] = row.seq
                yield record

    def event(self, event_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(events.c.seq, events.c.record)
                               .where(events.c.event_id == event_id)).one_or_none()
        if row is None:
            return None
        record: dict[str, Any] = json.loads(row.record)
        record["seq"] = row.seq
        return record

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(chain_head.c.length).where(chain_head.c.id == 1)).scalar_one())

    def verify(self) -> VerifyReport:
        keys = self.keys.chain_keys() if self.keys else {}
        with self.engine.connect() as conn:
            head = conn.execute(select(chain_head).where(chain_head.c.id == 1)).one()
            rows = conn.execution_options(yield_per=1000).execute(select(events).order_by(events.c.seq))
            links = (chain.StoredLink(
                seq=row.seq, record=row.record, prev_hash=row.prev_hash, hash=row.hash,
                columns={column: (chain.canonical_time(row.time) if column == "time"
                                  else str(getattr(row, column))) for column in chain.INDEXED},
            ) for row in rows)
            checked, problems = chain.verify_links(links, head.last_hash, head.length, keys)
        return VerifyReport(checked, problems)

    # ------------------------------------------------------------ evidence

    def has_evidence(self, event_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(evidence.c.event_id).where(evidence.c.event_id == event_id)
                                ).first() is not None

    def open_evidence(self, event_id: str, reviewer: str, reason: str, client: str = "") -> list[str]:
        """The original prompt texts of an event; the opening is chained as an event first."""
        if not reason.strip():
            raise ValueError("a reason is required to open evidence")
        with self.engine.connect() as conn:
            row = conn.execute(select(evidence).where(evidence.c.event_id == event_id)).one_or_none()
        if row is None:
            raise LookupError("no evidence kept for this event (none recorded, or purged)")
        self.record_review("evidence_opened", reviewer, event_id, client, reason=reason.strip())
        return unseal(SealedEvidence(row.key_id, row.nonce, row.ciphertext), event_id, self.keys)

    def purge(self, now: datetime | None = None) -> int:
        """Delete evidence past its retention and expired console sessions; returns evidence purged."""
        now = now or datetime.now(UTC)
        with self.writing() as conn:
            purged = conn.execute(delete(evidence).where(evidence.c.expires_at < now)).rowcount
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))
        return int(purged or 0)

