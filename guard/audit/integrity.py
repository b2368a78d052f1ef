"""``guard audit verify``: the chain, every row the console relies on, and checkpoints kept elsewhere.

The chain is the record of truth. Rows kept beside it for filtering or for the console are checked
against it: entity counts against each event's record, evidence against the key and retention its
event names, the current disposition, account and allow-list suggestion against the newest chained
action on each. Console sessions and failed sign-ins are working state and are not checked.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from guard.audit import chain, checkpoints
from guard.audit.evidence import EvidenceError, SealedEvidence, unseal
from guard.audit.schema import dispositions, event_entities, event_thumbnails, events, evidence, users

if TYPE_CHECKING:
    from guard.audit.store import AuditStore

# Kinds of chained actions whose newest one the console's rows must match.
DISPOSITION_SET = "disposition_set"
ACCOUNT_CHANGED = "account_changed"
SUGGESTION_ADDED = "suggestion_added"
SUGGESTION_DECIDED = "suggestion_decided"


@dataclass(frozen=True)
class Problem:
    where: str             # the event, row or checkpoint, by name
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass
class Report:
    checked: int = 0
    mode: str = ""
    key_loaded: bool = False
    checkpoints: int = 0
    cannot_verify: str = ""    # why nothing could be verified (no key for a keyed store)
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems and not self.cannot_verify


@dataclass
class _Seen:
    """What the walk learns from the chained records, to check the other rows against."""

    entities: dict[int, dict[str, int]] = field(default_factory=dict)
    evidence: dict[str, tuple[str, str]] = field(default_factory=dict)        # event → key id, expiry
    thumbnails: dict[str, list[str]] = field(default_factory=dict)            # event → image digests
    dispositions: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # event → status, note, by
    accounts: dict[str, tuple[str, bool, str]] = field(default_factory=dict)  # name → role, disabled, pw
    suggestions: dict[int, dict[str, Any]] = field(default_factory=dict)
    at_seq: dict[int, tuple[int, str]] = field(default_factory=dict)          # seq → position, hash
    keyed_links: int = 0

    def observe(self, position: int, seq: int, link_hash: str, record_json: str, wanted: set[int]) -> None:
        if seq in wanted:
            self.at_seq[seq] = (position, link_hash)
        # A malformed record: the chain walk reports it; there is nothing to learn from it.
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            self._learn(seq, json.loads(record_json))

    def _learn(self, seq: int, record: dict[str, Any]) -> None:
        if record.get("chain_key"):
            self.keyed_links += 1
        counts = record.get("entities") or {}
        if counts:
            self.entities[seq] = {str(k): int(v) for k, v in counts.items()}
        if record.get("evidence_key"):
            self.evidence[str(record["event_id"])] = (str(record["evidence_key"]),
                                                      str(record.get("evidence_expires", "")))
        if record.get("thumbnails"):
            self.thumbnails[str(record["event_id"])] = [str(d) for d in record["thumbnails"]]
        kind, subject = record.get("kind"), str(record.get("subject", ""))
        if kind == DISPOSITION_SET:
            self.dispositions[subject] = (str(record.get("status", "")), str(record.get("note", "")),
                                          str(record.get("user", "")))
        elif kind == ACCOUNT_CHANGED:
            self.accounts[subject] = (str(record.get("role", "")), bool(record.get("disabled")),
                                      str(record.get("password", "")))
        elif kind == SUGGESTION_ADDED:
            self.suggestions[int(record.get("suggestion_id", 0))] = {
                "entity_type": record.get("entity_type", ""), "value": record.get("value_digest", ""),
                "event_id": subject, "proposed_by": record.get("user", ""), "status": "pending",
                "decided_by": ""}
        elif kind == SUGGESTION_DECIDED:
            known = self.suggestions.get(int(record.get("suggestion_id", 0)))
            if known is not None:
                known.update(status=record.get("status", ""), decided_by=record.get("user", ""))


def verify_store(store: AuditStore, read: Sequence[checkpoints.ReadCheckpoint] = ()) -> Report:
    keys = store.keys
    head = store.head()
    report = Report(mode=head.mode, key_loaded=keys is not None)
    if head.mode == chain.KEYED and keys is None:
        report.cannot_verify = ("this store is keyed and no audit key is loaded: its links are HMACs "
                                "that only the key can check (--audit-key-file or GUARD_AUDIT_KEY)")
        return report
    if head.mode == chain.KEYLESS and keys is not None:
        report.problems.append(Problem("chain head", (
            "the store says it is keyless, yet an audit key is loaded: a store's mode is fixed when it is "
            "created, so either this store was created keyed and rewritten without the key, or the key "
            "does not belong to it")))
    if not head.mode and head.length:
        report.problems.append(Problem("chain head", "the store's mode was erased"))
    wanted = {c.checkpoint.seq for c in read if c.checkpoint is not None}
    seen = _Seen()
    with store.engine.connect() as conn:
        report.checked, chain_problems = chain.verify_links(
            _links(conn, seen, wanted), head.hash, head.length,
            keys.chain_keys() if keys else {}, head.mode)
        if keys is None and seen.keyed_links:
            report.cannot_verify = (f"{seen.keyed_links} link(s) are keyed and no audit key is loaded "
                                    "(--audit-key-file or GUARD_AUDIT_KEY)")
            return report
        report.problems += [Problem(f"event #{p.seq} ({p.event_id or '?'})", p.problem)
                            for p in chain_problems]
        report.problems += _entity_problems(conn, seen)
        report.problems += _evidence_problems(conn, seen, store)
        report.problems += _thumbnail_problems(conn, seen)
        report.problems += _disposition_problems(conn, seen)
        report.problems += _account_problems(conn, seen, keys.current.digest_key if keys else None)
        report.problems += _suggestion_problems(conn, seen, keys.current.digest_key if keys else None)
    report.problems += _checkpoint_problems(read, seen, head.length, store)
    report.checkpoints = sum(1 for c in read if c.checkpoint is not None)
    return report


def _links(conn: Connection, seen: _Seen, wanted: set[int]) -> Iterator[chain.StoredLink]:
    rows = conn.execution_options(yield_per=1000).execute(select(events).order_by(events.c.seq))
    for position, row in enumerate(rows, 1):
        seen.observe(position, row.seq, row.hash, row.record, wanted)
        yield chain.StoredLink(
            seq=row.seq, record=row.record, prev_hash=row.prev_hash, hash=row.hash,
            columns={column: (chain.canonical_time(row.time) if column == "time"
                              else str(getattr(row, column))) for column in chain.INDEXED})


def _entity_problems(conn: Connection, seen: _Seen) -> list[Problem]:
    stored: dict[int, dict[str, int]] = {}
    for seq, entity_type, count in conn.execute(select(event_entities)):
        stored.setdefault(int(seq), {})[str(entity_type)] = int(count)
    return [Problem(f"event #{seq}", "its entity rows (event_entities) differ from its record")
            for seq in sorted(set(stored) | set(seen.entities)) if stored.get(seq) != seen.entities.get(seq)]


def _evidence_problems(conn: Connection, seen: _Seen, store: AuditStore) -> list[Problem]:
    problems = []
    now = datetime.now(UTC)
    held = set()
    for row in conn.execute(select(evidence)):
        held.add(row.event_id)
        where = f"evidence of event {row.event_id}"
        expected = seen.evidence.get(row.event_id)
        if expected is None:
            problems.append(Problem(where, "no chained event says this evidence was kept (inserted)"))
            continue
        key_id, expires = expected
        if row.key_id != key_id or chain.canonical_time(row.expires_at) != expires:
            problems.append(Problem(where, "its key or retention differs from what its event recorded"))
            continue
        try:
            unseal(SealedEvidence(row.key_id, row.nonce, row.ciphertext), row.event_id, store.keys)
        except EvidenceError as e:
            problems.append(Problem(where, str(e)))
    for event_id, (_, expires) in seen.evidence.items():
        if event_id not in held and expires and datetime.fromisoformat(expires) > now:
            problems.append(Problem(f"evidence of event {event_id}", "deleted before its retention ended"))
    return problems


def _thumbnail_problems(conn: Connection, seen: _Seen) -> list[Problem]:
    """A thumbnail row no chained event lists, or whose bytes are not the ones its event lists
    (a purged one is simply absent: thumbnails go with the evidence's retention)."""
    from guard.audit.store import thumbnail_digest  # the store imports this module

    problems = []
    for row in conn.execute(select(event_thumbnails.c.event_id, event_thumbnails.c.position,
                                   event_thumbnails.c.data)):
        listed = seen.thumbnails.get(row.event_id, [])
        where = f"image thumbnail {row.position + 1} of event {row.event_id}"
        if not 0 <= row.position < len(listed):
            problems.append(Problem(where, "no chained event says this thumbnail was kept (inserted)"))
        elif thumbnail_digest(bytes(row.data)) != listed[row.position]:
            problems.append(Problem(where, "its image differs from the one its event recorded (altered)"))
    return problems


def _disposition_problems(conn: Connection, seen: _Seen) -> list[Problem]:
    problems = []
    stored = {row.event_id: (row.status, row.note, row.reviewer)
              for row in conn.execute(select(dispositions))}
    for event_id in sorted(set(stored) | set(seen.dispositions)):
        if stored.get(event_id) != seen.dispositions.get(event_id):
            problems.append(Problem(f"disposition of event {event_id}",
                                    "differs from the newest chained disposition_set (or has none)"))
    return problems


def _account_problems(conn: Connection, seen: _Seen, key: bytes | None) -> list[Problem]:
    problems = []
    stored = {row.name: (row.role, bool(row.disabled), chain.digest(row.password_hash, key))
              for row in conn.execute(select(users))}
    for name in sorted(set(stored) | set(seen.accounts)):
        row, chained = stored.get(name), seen.accounts.get(name)
        if row is None:
            problems.append(Problem(f"account {name}", "deleted outside guard (the chain still has it)"))
        elif chained is None:
            problems.append(Problem(f"account {name}", "not in the chain (added outside guard)"))
        elif row != chained:
            what = [label for label, a, b in zip(("role", "disabled", "password"), row, chained, strict=True)
                    if a != b]
            problems.append(Problem(f"account {name}", f"{', '.join(what)} differs from the chained record"))
    return problems


def _suggestion_problems(conn: Connection, seen: _Seen, key: bytes | None) -> list[Problem]:
    from guard.review.schema import allowlist_suggestions as table

    problems = []
    stored = set()
    for row in conn.execute(select(table)):
        stored.add(row.id)
        actual = {"entity_type": row.entity_type, "value": chain.digest(row.value, key),
                  "event_id": row.event_id, "proposed_by": row.proposed_by, "status": row.status,
                  "decided_by": row.decided_by or ""}
        chained = seen.suggestions.get(row.id)
        if chained is None:
            problems.append(Problem(f"allow-list suggestion {row.id}",
                                    "not in the chain (added outside guard)"))
        elif actual != chained:
            what = sorted(k for k in actual if actual[k] != chained.get(k))
            problems.append(Problem(f"allow-list suggestion {row.id}",
                                    f"{', '.join(what)} differs from the chained record"))
    for missing in sorted(set(seen.suggestions) - stored):
        problems.append(Problem(f"allow-list suggestion {missing}", "deleted outside guard"))
    return problems


def _checkpoint_problems(read: Sequence[checkpoints.ReadCheckpoint], seen: _Seen, length: int,
                         store: AuditStore) -> list[Problem]:
    problems = []
    for item in read:
        cp = item.checkpoint
        if cp is None:
            problems.append(Problem(item.name, item.problem))
            continue
        bad_signature = checkpoints.signature_problem(cp, store.keys)
        if bad_signature:
            problems.append(Problem(item.name, bad_signature))
            continue
        found = seen.at_seq.get(cp.seq)
        if found is None:
            why = (f"the store holds {length} events but this checkpoint saw {cp.length}: events at the end "
                   "were deleted or the store was reset" if length < cp.length else
                   f"event #{cp.seq} is gone from the store (deleted, or the store was reset and refilled)")
            problems.append(Problem(item.name, why))
        elif found != (cp.length, cp.hash):
            problems.append(Problem(item.name, f"event #{cp.seq} is not the link this checkpoint saw "
                                               "(the chain was rewritten or events were removed before it)"))
        elif length < cp.length:
            problems.append(Problem(item.name, f"the chain head says {length} events, fewer than the "
                                               f"checkpoint's {cp.length}"))
    return problems
