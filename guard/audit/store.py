"""The durable audit store: SQLite by default, PostgreSQL for several proxy nodes; one schema.

Every event is appended inside one write transaction that locks the chain head, so events from all
nodes form a single hash chain. The store holds no key: evidence arrives sealed, and the chain key
is only used to compute links.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, bindparam, create_engine, delete, event, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError

from guard.audit import chain
from guard.audit.events import new_event_id
from guard.audit.evidence import SealedEvidence, unseal
from guard.audit.keys import AuditKeys
from guard.audit.schema import chain_head, event_entities, event_thumbnails, events, evidence, sessions

DEFAULT_URL = "sqlite:///guard-audit.db"
# Visible characters in a reason for opening evidence: "案件複查", not "x" or a zero-width space.
MIN_REASON = 4


def visible_length(text: str) -> int:
    """Characters a reader can see: no spaces, no control or format characters (U+200B and the like)."""
    return sum(1 for c in text if unicodedata.category(c)[0] not in "CZ")


class AuditStoreError(Exception):
    """The store URL is unusable or the store cannot be opened; the message never holds a password."""


@dataclass(frozen=True)
class StoredEvent:
    """An event ready to append: its record (what the chain covers) and, maybe, sealed evidence."""

    record: Mapping[str, Any]
    evidence: SealedEvidence | None = None
    evidence_expires: datetime | None = None  # also when the thumbnails go
    # Masked thumbnails of the request's images (JPEG, guard.images.thumbnail), in request order.
    thumbnails: tuple[bytes, ...] = ()


def thumbnail_digest(data: bytes) -> str:
    """What an event's record keeps of each thumbnail: the chain vouches for the stored bytes."""
    return hashlib.sha256(data).hexdigest()


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
_LOCK_HEAD = (select(chain_head.c.last_seq, chain_head.c.last_hash, chain_head.c.length, chain_head.c.mode)
              .where(chain_head.c.id == 1).with_for_update())
_PRESENT = select(events.c.event_id).where(events.c.event_id.in_(bindparam("ids", expanding=True)))
# One multi-row INSERT for a batch of events (SQLAlchemy's "insertmanyvalues"), its seqs returned in
# the order of the rows: the entity counts refer to them.
_INSERT_EVENTS = insert(events).returning(events.c.seq, sort_by_parameter_order=True)
_INSERT_COUNTS = insert(event_entities)
_INSERT_EVIDENCE = insert(evidence)
_INSERT_THUMBNAILS = insert(event_thumbnails)
_MOVE_HEAD = (update(chain_head).where(chain_head.c.id == 1)
              .values(last_seq=bindparam("last_seq"), last_hash=bindparam("last_hash"),
                      length=bindparam("length")))


@dataclass(frozen=True)
class _Prepared:
    """A statement compiled once for a dialect and run on the DB-API cursor of the transaction's own
    connection. For the append path's plain statements (integers and strings in, no type conversion)
    SQLAlchemy's per-execution work (parameter processing, result set-up, events) cost more than the
    statements themselves."""

    sql: str
    names: tuple[str, ...] | None  # positional parameter order (qmark, format), None for named styles
    fixed: dict[str, Any]          # literal values of the statement (``id = 1``)

    @classmethod
    def of(cls, statement: Any, dialect: Any) -> _Prepared:
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup) if compiled.positiontup is not None else None
        return cls(str(compiled), names, dict(compiled.params))

    def args(self, values: Mapping[str, Any]) -> Any:
        merged = {**self.fixed, **values}
        return tuple(merged[name] for name in self.names) if self.names is not None else merged


_COUNT_ROW = {"event_seq": None, "entity_type": None, "count": None}
_PREPARED: dict[str, tuple[_Prepared, _Prepared, _Prepared]] = {}


def _prepared(conn: Connection) -> tuple[_Prepared, _Prepared, _Prepared]:
    """The head lock, the head move and the entity-count insert, compiled for ``conn``'s dialect."""
    dialect = conn.dialect
    key = f"{dialect.name}+{dialect.driver}"
    if key not in _PREPARED:
        _PREPARED[key] = (_Prepared.of(_LOCK_HEAD, dialect), _Prepared.of(_MOVE_HEAD, dialect),
                          _Prepared.of(_INSERT_COUNTS.values(**_COUNT_ROW), dialect))
    return _PREPARED[key]


@dataclass(frozen=True)
class EventQuery:
    """Which events ``AuditStore.events`` lists; ``user`` None: anyone, "": events with no user."""

    since: datetime | None = None       # inclusive
    until: datetime | None = None       # exclusive
    decision: str = ""
    user: str | None = None
    service: str = ""
    limit: int | None = None


@dataclass(frozen=True)
class Head:
    """The chain's newest link as the store says it is."""

    seq: int
    length: int
    hash: str
    mode: str              # keyed | keyless | "" (nothing written yet)


class ChainModeError(AuditStoreError):
    """The key loaded (or its absence) does not match the store's mode: nothing is written."""


def refuse_mismatch(mode: str, keys: AuditKeys | None) -> None:
    """Raise ChainModeError when a writer with (or without) ``keys`` may not write to a store of ``mode``."""
    if mode == chain.KEYED and keys is None:
        raise ChainModeError("this audit store is keyed: load its audit key (--audit-key-file or "
                             "GUARD_AUDIT_KEY) to write to it")
    if mode == chain.KEYLESS and keys is not None:
        raise ChainModeError("this audit store was created keyless and stays so: start a new store "
                             "to use an audit key, or run without one")


def review_record(kind: str, actor: str, subject: str, client: str = "", **details: Any) -> dict[str, Any]:
    """The record of a reviewer's or administrator's action (decision ``review``)."""
    return {"event_id": new_event_id(), "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "kind": kind, "decision": "review", "user": actor, "client": client, "service": "",
            "host": "", "subject": subject, "entities": {}, **details}


@dataclass(frozen=True)
class _Link:
    """One event ready to insert: its ``events`` row (link computed), entity counts, evidence and
    thumbnail rows."""

    row: dict[str, Any]
    counts: dict[str, int]
    evidence: dict[str, Any] | None
    thumbnails: list[dict[str, Any]]


class ChainWriter:
    """Appends to the chain inside a transaction that has locked its head (``AuditStore.transaction``)."""

    def __init__(self, conn: Connection, keys: AuditKeys | None, node: str) -> None:
        self.conn = conn
        self.node = node
        self.key = keys.current if keys else None
        self._lock_head, self._move_head, self._insert_counts = _prepared(conn)
        self.cursor = conn.connection.cursor()  # the transaction's own connection
        self.cursor.execute(self._lock_head.sql, self._lock_head.args({}))
        rows = self.cursor.fetchall()
        if len(rows) != 1:
            raise RuntimeError(f"the chain head has {len(rows)} rows, not one")
        last_seq, last_hash, length, mode = rows[0]  # the columns of _LOCK_HEAD, in order
        self.mode = mode or (chain.KEYED if self.key else chain.KEYLESS)
        refuse_mismatch(mode, keys)
        self._new_mode = not mode
        self.prev, self.length, self.last_seq = last_hash, int(length), int(last_seq)
        self.added = 0

    @property
    def digest_key(self) -> bytes | None:
        return self.key.digest_key if self.key else None

    def append(self, items: Sequence[StoredEvent], fresh: bool = False) -> int:
        """Chain the events not yet stored, in bulk: links are computed first, then one statement per
        table writes them all (a multi-row INSERT ... RETURNING for the events, in order).

        ``fresh``: the caller has never handed these events to a store before, so the lookup of those
        already stored is skipped; should one be there after all, the unique event id refuses the
        insert (IntegrityError) and nothing of the transaction is kept.
        """
        ids = [str(item.record["event_id"]) for item in items]
        present = set() if fresh else set(self.conn.scalars(_PRESENT, {"ids": ids}))
        links: list[_Link] = []
        for item in items:
            if item.record["event_id"] in present:
                continue
            present.add(str(item.record["event_id"]))
            links.append(self._next_link(item))
        self._write(links)
        return len(links)

    def review(self, kind: str, actor: str, subject: str, client: str = "", **details: Any) -> str:
        record = review_record(kind, actor, subject, client, **details)
        self._write([self._next_link(StoredEvent(record))])
        return str(record["event_id"])

    def _next_link(self, item: StoredEvent) -> _Link:
        """The event's row, entity counts and evidence row, linked to the chain's current end."""
        key = self.key
        record = dict(item.record)
        record.setdefault("node", self.node)
        record["chain_key"] = key.key_id if key else ""
        created = datetime.now(UTC)
        expires = item.evidence_expires or created + timedelta(days=30)
        if item.evidence is not None:  # the chain vouches for the evidence row: its key and its end
            record["evidence_key"] = item.evidence.key_id
            record["evidence_expires"] = chain.canonical_time(expires)
        if item.thumbnails:
            record["thumbnails"] = [thumbnail_digest(t) for t in item.thumbnails]
        record_json = chain.canonical(record)
        link = chain.link(self.prev, record_json, key.chain_key if key else None)
        row = {
            "event_id": record["event_id"], "time": datetime.fromisoformat(record["time"]),
            "kind": record["kind"], "decision": record["decision"],
            "user_name": record.get("user", ""), "client": record.get("client", ""),
            "service": record.get("service", ""), "host": record.get("host", ""),
            "node": record.get("node", ""), "record": record_json, "prev_hash": self.prev, "hash": link,
        }
        evidence_row = None
        if item.evidence is not None:
            evidence_row = {
                "event_id": record["event_id"], "key_id": item.evidence.key_id,
                "nonce": item.evidence.nonce, "ciphertext": item.evidence.ciphertext,
                "created_at": created, "expires_at": expires}
        thumbnail_rows = [{"event_id": record["event_id"], "position": i, "data": data, "expires_at": expires}
                          for i, data in enumerate(item.thumbnails or ())]
        self.prev, self.length = link, self.length + 1
        return _Link(row, dict(record.get("entities") or {}), evidence_row, thumbnail_rows)

    def _write(self, links: Sequence[_Link]) -> None:
        if not links:
            return
        seqs = list(self.conn.scalars(_INSERT_EVENTS, [link.row for link in links]))
        if len(seqs) != len(links):
            raise RuntimeError(f"{len(links)} events inserted, {len(seqs)} sequence numbers returned")
        counts = [{"event_seq": seq, "entity_type": t, "count": int(n)}
                  for seq, link in zip(seqs, links, strict=True) for t, n in link.counts.items()]
        if counts:
            self.cursor.executemany(self._insert_counts.sql, [self._insert_counts.args(c) for c in counts])
        sealed = [link.evidence for link in links if link.evidence is not None]
        if sealed:
            self.conn.execute(_INSERT_EVIDENCE, sealed)
        thumbnails = [row for link in links for row in link.thumbnails]
        if thumbnails:
            self.conn.execute(_INSERT_THUMBNAILS, thumbnails)
        self.last_seq = seqs[-1]
        self.added += len(links)

    def finish(self) -> None:
        if self.added:
            values: dict[str, Any] = {"last_seq": self.last_seq, "last_hash": self.prev,
                                      "length": self.length}
            if self._new_mode:
                self.conn.execute(update(chain_head).where(chain_head.c.id == 1)
                                  .values(mode=self.mode, **values))
            else:
                self.cursor.execute(self._move_head.sql, self._move_head.args(values))


class AuditStore:
    def __init__(self, url: str = DEFAULT_URL, keys: AuditKeys | None = None, node: str = "") -> None:
        self.url = url
        self.keys = keys
        self.node = node
        self.engine = engine_for(url)
        self._append_conn: Connection | None = None

    @classmethod
    def open(cls, url: str = DEFAULT_URL, keys: AuditKeys | None = None, node: str = "") -> AuditStore:
        """Connect and bring the schema up to date (safe to run from several nodes at once)."""
        store = cls(url, keys, node)
        store.migrate()
        return store

    def close(self) -> None:
        if self._append_conn is not None:
            with contextlib.suppress(Exception):
                self._append_conn.close()
            self._append_conn = None
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

    @contextlib.contextmanager
    def transaction(self) -> Iterator[ChainWriter]:
        """One write transaction holding the chain head: append events and change the rows they
        vouch for (dispositions, accounts, suggestions) together, or not at all."""
        with self.writing() as conn:
            chainer = ChainWriter(conn, self.keys, self.node)
            yield chainer
            chainer.finish()

    def append(self, items: Sequence[StoredEvent], fresh: bool = False) -> int:
        """Append events to the chain in one transaction; events already stored are skipped.

        Returns how many were added. Replaying a journal after an unclear failure is therefore safe.
        ``fresh`` (events handed to a store for the first time, the proxy's usual case) saves the
        statement that looks for stored ones; if one was stored after all, the transaction is rolled
        back and run again with that lookup.
        """
        if not items:
            return 0
        try:
            return self._append_once(items, fresh)
        except IntegrityError:
            if not fresh:
                raise
            return self._append_once(items, False)

    def _append_once(self, items: Sequence[StoredEvent], fresh: bool) -> int:
        conn = self._appending()
        try:
            with conn.begin():
                chainer = ChainWriter(conn, self.keys, self.node)
                added = chainer.append(items, fresh)
                chainer.finish()
        except BaseException:
            self._stop_appending()  # a broken connection is not reused; the next append opens another
            raise
        return added

    def _appending(self) -> Connection:
        """The connection appends use, kept open between transactions: a pool check-out, its reset and
        (PostgreSQL) its pre-ping cost more than a one-event transaction itself."""
        if self._append_conn is None or self._append_conn.closed:
            self._append_conn = self.engine.connect().execution_options(guard_write=True)
        return self._append_conn

    def _stop_appending(self) -> None:
        conn, self._append_conn = self._append_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()

    def record_review(self, kind: str, reviewer: str, subject: str, client: str = "",
                      **details: Any) -> str:
        """A reviewer's or administrator's action as a chained event of its own."""
        with self.transaction() as chainer:
            return chainer.review(kind, reviewer, subject, client, **details)

    def check_writable(self) -> None:
        """Raise ChainModeError now (at start-up) rather than at the first event."""
        refuse_mismatch(self.head().mode, self.keys)

    def head(self) -> Head:
        with self.engine.connect() as conn:
            row = conn.execute(select(chain_head).where(chain_head.c.id == 1)).one()
        return Head(int(row.last_seq), int(row.length), str(row.last_hash), str(row.mode))

    # ------------------------------------------------------------ reading

    def events(self, since: datetime | None = None,
               query: EventQuery | None = None) -> Iterator[dict[str, Any]]:
        """Event records, oldest first (so the newest is last), each with its ``seq``.

        With a ``query`` limit, the newest ``limit`` matching events (still oldest first).
        """
        q = query or EventQuery(since=since)
        clauses = []
        if q.since is not None:
            clauses.append(events.c.time >= _utc(q.since))
        if q.until is not None:
            clauses.append(events.c.time < _utc(q.until))
        for column, value in ((events.c.decision, q.decision), (events.c.user_name, q.user),
                              (events.c.service, q.service)):
            if value is not None and (value or column is events.c.user_name):
                clauses.append(column == value)
        statement = select(events.c.seq, events.c.record).where(*clauses)
        if q.limit is not None:
            newest = statement.order_by(events.c.seq.desc()).limit(q.limit).subquery()
            statement = select(newest.c.seq, newest.c.record)
            order = newest.c.seq
        else:
            order = events.c.seq
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=500).execute(statement.order_by(order)):
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

    def verify(self, checkpoints: Sequence[Any] = ()) -> Any:
        """Check the chain, the rows that rely on it and, if given, checkpoints (guard.audit.integrity)."""
        from guard.audit.integrity import verify_store

        return verify_store(self, checkpoints)

    # ------------------------------------------------------------ evidence

    def has_evidence(self, event_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(evidence.c.event_id).where(evidence.c.event_id == event_id)
                                ).first() is not None

    def open_evidence(self, event_id: str, reviewer: str, reason: str, client: str = "") -> list[str]:
        """The original prompt texts of an event; the opening is chained as an event first."""
        if visible_length(reason) < MIN_REASON:
            raise ValueError(f"opening evidence needs a reason of at least {MIN_REASON} visible characters")
        with self.engine.connect() as conn:
            row = conn.execute(select(evidence).where(evidence.c.event_id == event_id)).one_or_none()
        if row is None:
            raise LookupError("no evidence kept for this event (none recorded, or purged)")
        self.record_review("evidence_opened", reviewer, event_id, client, reason=reason.strip())
        return unseal(SealedEvidence(row.key_id, row.nonce, row.ciphertext), event_id, self.keys)

    def thumbnail(self, event_id: str, position: int) -> bytes | None:
        """An event's masked image thumbnail, if kept and still as the chain recorded it.

        A row whose digest differs from the one in the event's record (altered, or moved from
        another event) is not returned: the console shows nothing rather than a forged image.
        """
        record = self.event(event_id)
        digests = (record or {}).get("thumbnails") or []
        if not 0 <= position < len(digests):
            return None
        with self.engine.connect() as conn:
            data = conn.execute(select(event_thumbnails.c.data).where(
                event_thumbnails.c.event_id == event_id, event_thumbnails.c.position == position)).scalar()
        if data is None or thumbnail_digest(bytes(data)) != digests[position]:
            return None
        return bytes(data)

    def thumbnails_kept(self, event_id: str) -> list[int]:
        """Positions of the thumbnails still kept for an event (not yet purged)."""
        with self.engine.connect() as conn:
            return list(conn.scalars(select(event_thumbnails.c.position)
                                     .where(event_thumbnails.c.event_id == event_id)
                                     .order_by(event_thumbnails.c.position)))

    def purge(self, now: datetime | None = None) -> int:
        """Delete evidence and thumbnails past their retention and expired console sessions; returns
        evidence purged."""
        now = now or datetime.now(UTC)
        with self.writing() as conn:
            purged = conn.execute(delete(evidence).where(evidence.c.expires_at < now)).rowcount
            conn.execute(delete(event_thumbnails).where(event_thumbnails.c.expires_at < now))
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))
        return int(purged or 0)

