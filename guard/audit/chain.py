"""The hash chain over audit events: each link commits to the previous one and to the event's record.

A store is keyed or keyless, chosen when its first event is written. In a keyed store every link is
an HMAC, so someone who can write to the database but does not hold the key cannot rebuild a
consistent chain after editing it; the verifier refuses an unkeyed link in a keyed store, and after
any keyed link in any store. A keyless store's links are plain SHA-256 (they still catch edits by
anyone who does not recompute the whole chain) and the verifier says so.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
KEYED, KEYLESS = "keyed", "keyless"


def canonical(record: Mapping[str, Any]) -> str:
    """The one byte-exact JSON form of a record that the chain hashes (sorted keys, no spaces)."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def link(prev_hash: str, record_json: str, key: bytes | None) -> str:
    message = prev_hash.encode() + b"\n" + record_json.encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def digest(value: str, key: bytes | None) -> str:
    """A fingerprint of a value kept elsewhere (a password hash, an allow-list value) for the chain."""
    if key is None:
        return hashlib.sha256(value.encode()).hexdigest()
    return hmac.new(key, b"guard digest\n" + value.encode(), hashlib.sha256).hexdigest()


# Columns copied out of the record for filtering; verify checks each copy still matches.
INDEXED = {"event_id": "event_id", "time": "time", "kind": "kind", "decision": "decision",
           "user_name": "user", "client": "client", "service": "service", "host": "host", "node": "node"}


def canonical_time(value: datetime | str) -> str:
    """One text form of a time (SQLite hands back naive UTC datetimes, PostgreSQL aware ones)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def _record_value(record: Mapping[str, Any], field: str) -> str:
    value = record.get(field, "")
    if field == "time":
        try:
            return canonical_time(value)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


@dataclass(frozen=True)
class StoredLink:
    seq: int
    record: str
    prev_hash: str
    hash: str
    columns: Mapping[str, str]  # the indexed copies, as strings (time as canonical_time)


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    event_id: str
    problem: str

    def __str__(self) -> str:
        return f"event #{self.seq} ({self.event_id or '?'}): {self.problem}"


def verify_links(links: Iterable[StoredLink], head_hash: str, head_length: int,
                 keys: Mapping[str, bytes], mode: str) -> tuple[int, list[ChainProblem]]:
    """Walk the chain in order; return how many links were checked and every problem found.

    ``keys`` maps a chain key id to its key; a record names the key it was linked with (empty: none).
    ``mode`` is the store's: in a keyed store, and after the first keyed link of any store, an
    unkeyed link is refused (else a database writer could rebuild the chain with plain SHA-256).
    """
    problems: list[ChainProblem] = []
    expected_prev = GENESIS
    count = 0
    last_seq = 0
    keyed_seen = mode == KEYED
    for item in links:
        count += 1
        last_seq = item.seq
        try:
            record = json.loads(item.record)
        except ValueError:
            problems.append(ChainProblem(item.seq, "", "record is not valid JSON"))
            expected_prev = item.hash
            continue
        event_id = str(record.get("event_id", ""))
        if item.prev_hash != expected_prev:
            problems.append(ChainProblem(
                item.seq, event_id, "does not follow the previous event (an event was deleted or inserted)"))
        key_id = str(record.get("chain_key") or "")
        key = keys.get(key_id) if key_id else None
        if not key_id and keyed_seen:
            problems.append(ChainProblem(item.seq, event_id, "unkeyed link where every link must be keyed "
                                         "(forged, or the chain was rebuilt without the audit key)"))
        elif key_id and key is None:
            problems.append(ChainProblem(item.seq, event_id,
                                         f"linked with audit key {key_id}, which is not loaded"))
        elif link(item.prev_hash, item.record, key) != item.hash:
            problems.append(ChainProblem(item.seq, event_id, "record was altered (hash does not match)"))
        keyed_seen = keyed_seen or bool(key_id)
        for column, field in INDEXED.items():
            if _record_value(record, field) != item.columns.get(column, ""):
                problems.append(ChainProblem(item.seq, event_id, f"column {column} differs from the record"))
        expected_prev = item.hash
    if count != head_length or (count and expected_prev != head_hash):
        problems.append(ChainProblem(last_seq, "", f"chain head says {head_length} events ending in "
                                     f"{head_hash[:12]}…, found {count} ending in {expected_prev[:12]}… "
                                     "(events at the end were deleted or added)"))
    return count, problems
