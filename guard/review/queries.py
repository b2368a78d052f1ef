"""Every query the console runs: SQLAlchemy Core that means the same on SQLite and PostgreSQL.

No date functions: a time is put into a day (or a 24-hour window) by comparing it with boundaries
computed here, so days are Taiwan days on both back-ends whatever the server's time zone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    case,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)

from guard.audit.chain import canonical_time, digest
from guard.audit.integrity import DISPOSITION_SET, SUGGESTION_ADDED, SUGGESTION_DECIDED
from guard.audit.schema import dispositions, event_entities, events, sessions, users
from guard.audit.store import AuditStore
from guard.review.schema import allowlist_suggestions

# Taiwan has kept UTC+8 without daylight saving since 1979: a fixed offset is exact.
LOCAL_TZ = timezone(timedelta(hours=8), "UTC+8")
PAGE_SIZE = 50
FLAGGED = ("block", "redact")
FLAGGED_FILTER = "flagged"          # the event filter's value for "blocked or redacted"
REVIEW_DECISION = "review"
DISPOSITIONS = ("confirmed", "false_positive", "follow_up")


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def local_midnight(now: datetime) -> datetime:
    """The start of ``now``'s day in Taiwan, as a UTC time."""
    local = now.astimezone(LOCAL_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


# ---------------------------------------------------------------- the event list

@dataclass(frozen=True)
class EventFilter:
    since: datetime | None = None       # inclusive
    until: datetime | None = None       # exclusive
    user: str = ""
    no_user: bool = False               # only events without a user (未識別)
    service: str = ""
    decision: str = ""                  # "": every inspection decision; "review": reviewers' actions only
    entity_type: str = ""
    disposition: str = ""               # "": any; "none": not yet reviewed; or a status


@dataclass(frozen=True)
class EventRow:
    record: dict[str, Any]
    disposition: str                    # "" when no reviewer has set one


@dataclass(frozen=True)
class Page:
    rows: list[EventRow]
    total: int
    number: int
    size: int

    @property
    def last(self) -> int:
        return max(1, math.ceil(self.total / self.size))


_WITH_DISPOSITION = events.outerjoin(dispositions, dispositions.c.event_id == events.c.event_id)


def _where(f: EventFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if f.since is not None:
        clauses.append(events.c.time >= f.since)
    if f.until is not None:
        clauses.append(events.c.time < f.until)
    if f.user or f.no_user:
        clauses.append(events.c.user_name == ("" if f.no_user else f.user))
    if f.service:
        clauses.append(events.c.service == f.service)
    if f.decision == FLAGGED_FILTER:
        clauses.append(events.c.decision.in_(FLAGGED))
    elif f.decision:
        clauses.append(events.c.decision == f.decision)
    else:
        clauses.append(events.c.decision != REVIEW_DECISION)
    if f.entity_type:
        clauses.append(exists().where(event_entities.c.event_seq == events.c.seq,
                                      event_entities.c.entity_type == f.entity_type))
    if f.disposition == "none":
        clauses.append(dispositions.c.event_id.is_(None))
    elif f.disposition:
        clauses.append(dispositions.c.status == f.disposition)
    return clauses


def _listing(f: EventFilter) -> Select[Any]:
    return (select(events.c.seq, events.c.record, dispositions.c.status)
            .select_from(_WITH_DISPOSITION).where(*_where(f))
            .order_by(events.c.time.desc(), events.c.seq.desc()))


def _row(seq: int, record_json: str, status: str | None) -> EventRow:
    record: dict[str, Any] = json.loads(record_json)
    record["seq"] = seq
    return EventRow(record, status or "")


def list_events(engine: Engine, f: EventFilter, page: int) -> Page:
    """One page of matching events, newest first; a page past the end shows the last one."""
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(_WITH_DISPOSITION)
                                 .where(*_where(f))).scalar_one())
        number = min(max(1, page), max(1, math.ceil(total / PAGE_SIZE)))
        rows = conn.execute(_listing(f).limit(PAGE_SIZE).offset((number - 1) * PAGE_SIZE))
        return Page([_row(*row) for row in rows], total, number, PAGE_SIZE)


def iter_events(engine: Engine, f: EventFilter) -> Iterator[EventRow]:
    """Every matching event, newest first, streamed (the CSV export)."""
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=500).execute(_listing(f)):
            yield _row(*row)


def services(engine: Engine, since: datetime) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(select(events.c.service).distinct()
                                 .where(events.c.time >= since, events.c.service != "")
                                 .order_by(events.c.service)))


def entity_types(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(select(event_entities.c.entity_type).distinct()
                                 .order_by(event_entities.c.entity_type)))


# ---------------------------------------------------------------- one event

@dataclass(frozen=True)
class Disposition:
    status: str
    note: str
    reviewer: str
    updated_at: datetime


def review_history(engine: Engine, event_id: str) -> list[dict[str, Any]]:
    """Reviewers' actions on an event (evidence opened, disposition set), oldest first.

    The subject is only inside the record, so reviewer events are narrowed with a substring of the
    canonical JSON and then checked exactly.
    """
    needle = '"subject":' + json.dumps(event_id)
    query = (select(events.c.seq, events.c.record)
             .where(events.c.decision == REVIEW_DECISION,
                    events.c.record.contains(needle, autoescape=True))
             .order_by(events.c.seq))
    with engine.connect() as conn:
        records = [_row(seq, record, None).record for seq, record in conn.execute(query)]
    return [r for r in records if r.get("subject") == event_id]


def disposition(engine: Engine, event_id: str) -> Disposition | None:
    with engine.connect() as conn:
        row = conn.execute(select(dispositions).where(dispositions.c.event_id == event_id)).one_or_none()
    if row is None:
        return None
    return Disposition(row.status, row.note, row.reviewer, utc(row.updated_at))


def set_disposition(store: AuditStore, event_id: str, status: str, note: str, reviewer: str,
                    client: str) -> None:
    """Chain the decision (the record of truth) and keep the current one for filtering, together."""
    if status not in DISPOSITIONS:
        raise ValueError(f"unknown disposition {status!r}")
    values = {"status": status, "note": note, "reviewer": reviewer, "updated_at": datetime.now(UTC)}
    # The chain head is locked for the transaction, so two reviewers cannot both insert the row.
    with store.transaction() as chainer:
        chainer.review(DISPOSITION_SET, reviewer, event_id, client, status=status, note=note)
        changed = chainer.conn.execute(update(dispositions).where(dispositions.c.event_id == event_id)
                                       .values(**values)).rowcount
        if not changed:
            chainer.conn.execute(insert(dispositions).values(event_id=event_id, **values))


def false_positives(engine: Engine, limit: int = 200) -> list[tuple[dict[str, Any], Disposition]]:
    """Events reviewers judged false positives, most recently judged first (for policy authors)."""
    query = (select(events.c.seq, events.c.record, dispositions)
             .select_from(events.join(dispositions, dispositions.c.event_id == events.c.event_id))
             .where(dispositions.c.status == "false_positive")
             .order_by(dispositions.c.updated_at.desc()).limit(limit))
    with engine.connect() as conn:
        return [(_row(row.seq, row.record, None).record,
                 Disposition(row.status, row.note, row.reviewer, utc(row.updated_at)))
                for row in conn.execute(query)]


# ---------------------------------------------------------------- the dashboard

def _period(column: Any, starts: Sequence[datetime]) -> ColumnElement[Any]:
    """Which consecutive period a time falls in: 0 for the newest (starting at ``starts[0]``), 1, 2 ..."""
    whens: list[tuple[ColumnElement[bool], Any]] = [
        (column >= start, literal_column(str(index))) for index, start in enumerate(starts)]
    return case(*whens, else_=literal_column("-1"))


def events_by_period(engine: Engine, starts: Sequence[datetime], end: datetime,
                     key: Literal["decision", "user_name"],
                     decisions: Sequence[str] = FLAGGED) -> dict[tuple[str, int], int]:
    """Events of ``decisions`` counted per (decision or user, period); ``starts`` newest first."""
    inner = (select(_period(events.c.time, starts).label("period"), events.c[key].label("key"))
             .where(events.c.decision.in_(decisions), events.c.time >= starts[-1], events.c.time < end)
             .subquery())
    query = select(inner.c.key, inner.c.period, func.count()).group_by(inner.c.key, inner.c.period)
    with engine.connect() as conn:
        return {(str(k), int(p)): int(n) for k, p, n in conn.execute(query)}


def decision_totals(engine: Engine, since: datetime, until: datetime) -> dict[str, int]:
    """Inspected prompts per decision (reviewers' actions not counted)."""
    query = (select(events.c.decision, func.count())
             .where(events.c.decision != REVIEW_DECISION, events.c.time >= since, events.c.time < until)
             .group_by(events.c.decision))
    with engine.connect() as conn:
        return {str(d): int(n) for d, n in conn.execute(query)}


def flagged_by_service(engine: Engine, since: datetime, until: datetime) -> list[tuple[str, str, int]]:
    query = (select(events.c.service, events.c.decision, func.count())
             .where(events.c.decision.in_(FLAGGED), events.c.time >= since, events.c.time < until)
             .group_by(events.c.service, events.c.decision))
    with engine.connect() as conn:
        return [(str(s), str(d), int(n)) for s, d, n in conn.execute(query)]


def flagged_by_entity(engine: Engine, since: datetime, until: datetime) -> list[tuple[str, int]]:
    """Blocked and redacted events per entity type they held (events, not findings: each count is the
    number of events its drill-down lists)."""
    total = func.count()
    query = (select(event_entities.c.entity_type, total)
             .select_from(event_entities.join(events, events.c.seq == event_entities.c.event_seq))
             .where(events.c.decision.in_(FLAGGED), events.c.time >= since, events.c.time < until)
             .group_by(event_entities.c.entity_type).order_by(total.desc(), event_entities.c.entity_type))
    with engine.connect() as conn:
        return [(str(t), int(n)) for t, n in conn.execute(query)]


def top_users(engine: Engine, since: datetime, until: datetime, limit: int = 10) -> list[tuple[str, int]]:
    count = func.count()
    query = (select(events.c.user_name, count)
             .where(events.c.decision.in_(FLAGGED), events.c.time >= since, events.c.time < until)
             .group_by(events.c.user_name).order_by(count.desc(), events.c.user_name).limit(limit))
    with engine.connect() as conn:
        return [(str(u), int(n)) for u, n in conn.execute(query)]


# ---------------------------------------------------------------- allow-list suggestions

@dataclass(frozen=True)
class Suggestion:
    id: int
    entity_type: str
    value: str
    event_id: str
    proposed_by: str
    created_at: datetime
    status: str
    decided_by: str


def add_suggestions(store: AuditStore, event_id: str, proposed_by: str,
                    proposals: Iterable[tuple[str, str]], client: str = "") -> int:
    """Record proposed (entity type, value) pairs; one already pending or accepted is not repeated.

    Each is chained with a keyed fingerprint of its value (never the value), so verify notices a
    suggestion inserted or changed in the database.
    """
    added = 0
    now = datetime.now(UTC)
    table = allowlist_suggestions
    with store.transaction() as chainer:
        conn = chainer.conn
        for entity_type, value in dict.fromkeys(proposals):
            known = conn.execute(select(table.c.id).where(
                table.c.entity_type == entity_type, table.c.value == value,
                table.c.status.in_(("pending", "accepted")))).first()
            if known is None:
                new_id = conn.execute(insert(table).values(
                    entity_type=entity_type, value=value, event_id=event_id, proposed_by=proposed_by,
                    created_at=now, status="pending").returning(table.c.id)).scalar_one()
                chainer.review(SUGGESTION_ADDED, proposed_by, event_id, client, suggestion_id=int(new_id),
                               entity_type=entity_type, value_digest=digest(value, chainer.digest_key))
                added += 1
    return added


def suggestions(engine: Engine, statuses: Sequence[str]) -> list[Suggestion]:
    table = allowlist_suggestions
    query = (select(table).where(table.c.status.in_(statuses))
             .order_by(table.c.entity_type, table.c.value, table.c.id))
    with engine.connect() as conn:
        return [Suggestion(row.id, row.entity_type, row.value, row.event_id, row.proposed_by,
                           utc(row.created_at), row.status, row.decided_by or "")
                for row in conn.execute(query)]


def decide_suggestion(store: AuditStore, suggestion_id: int, status: str, by: str, client: str = "") -> bool:
    table = allowlist_suggestions
    with store.transaction() as chainer:
        row = chainer.conn.execute(select(table.c.event_id).where(table.c.id == suggestion_id)).one_or_none()
        if row is None:
            return False
        chainer.conn.execute(update(table).where(table.c.id == suggestion_id).values(
            status=status, decided_by=by, decided_at=datetime.now(UTC)))
        chainer.review(SUGGESTION_DECIDED, by, row.event_id, client, suggestion_id=suggestion_id,
                       status=status)
    return True


# ---------------------------------------------------------------- accounts and sessions

@dataclass(frozen=True)
class Account:
    name: str
    role: str
    created_at: datetime
    disabled: bool


def accounts(engine: Engine) -> list[Account]:
    with engine.connect() as conn:
        return [Account(row.name, row.role, utc(row.created_at), bool(row.disabled))
                for row in conn.execute(select(users).order_by(users.c.name))]


@dataclass(frozen=True)
class SessionRow:
    token_hash: str
    user_name: str
    role: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime


def session_mac(key: bytes, token_hash: str, user_name: str, role: str, csrf_token: str,
                created_at: datetime) -> str:
    message = "\x00".join((token_hash, user_name, role, csrf_token, canonical_time(created_at)))
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def create_session(store: AuditStore, token_hash: str, user_name: str, role: str, csrf_token: str,
                   now: datetime, expires_at: datetime) -> None:
    key = store.keys.current.session_key if store.keys else None
    mac = session_mac(key, token_hash, user_name, role, csrf_token, now) if key else ""
    with store.writing() as conn:
        conn.execute(delete(sessions).where(sessions.c.expires_at < now))
        conn.execute(insert(sessions).values(token_hash=token_hash, user_name=user_name, role=role,
                                             csrf_token=csrf_token, created_at=now, expires_at=expires_at,
                                             mac=mac))


def find_session(store: AuditStore, token_hash: str, now: datetime) -> SessionRow | None:
    """A live session of an enabled account whose role has not changed since sign-in.

    With an audit key the row must carry its HMAC (any of the loaded keys): a session inserted by
    someone who can write to the database but holds no key opens nothing.
    """
    query = (select(sessions, users.c.role.label("current_role"))
             .select_from(sessions.join(users, users.c.name == sessions.c.user_name))
             .where(sessions.c.token_hash == token_hash, sessions.c.expires_at > now,
                    users.c.disabled.is_(False)))
    with store.engine.connect() as conn:
        row = conn.execute(query).one_or_none()
    if row is None or row.role != row.current_role:
        return None
    created_at = utc(row.created_at)
    if store.keys is not None and not any(
            hmac.compare_digest(session_mac(k.session_key, row.token_hash, row.user_name, row.role,
                                            row.csrf_token, created_at), row.mac)
            for k in store.keys.keys):
        return None
    return SessionRow(row.token_hash, row.user_name, row.role, row.csrf_token, created_at,
                      utc(row.expires_at))


def extend_session(store: AuditStore, token_hash: str, expires_at: datetime) -> None:
    with store.writing() as conn:
        conn.execute(update(sessions).where(sessions.c.token_hash == token_hash)
                     .values(expires_at=expires_at))


def delete_session(store: AuditStore, token_hash: str) -> None:
    with store.writing() as conn:
        conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))
