"""The audit writer: group commit into the store, the journal while the store is away, fail closed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from guard.audit.events import EventKind
from guard.audit.journal import Journal
from guard.audit.keys import AuditKeys, new_key, parse_keys
from guard.audit.store import AuditStore, StoredEvent
from guard.audit.writer import AuditUnavailable, AuditWriter, PendingEvent
from tests.audit.helpers import NATIONAL_ID, PROMPT, record


@pytest.fixture
def keys() -> AuditKeys:
    return parse_keys(new_key(), "test")


def test_events_from_many_requests_are_committed_and_chained(audit_url: str, tmp_path: Path,
                                                              keys: AuditKeys) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    writer = AuditWriter(lambda: AuditStore.open(audit_url, keys), journal, keys).start()

    async def many() -> None:
        await asyncio.gather(*(writer.commit([PendingEvent(record(), [PROMPT])]) for _ in range(60)))

    asyncio.run(many())
    assert writer.healthy
    store = writer.store
    assert store is not None and store.count() == 60 and store.verify().intact
    first = next(store.events())
    assert store.open_evidence(first["event_id"], "reviewer", "spot check") == [PROMPT]
    writer.close()
    assert not (tmp_path / "j.jsonl").exists()


def test_without_a_key_no_evidence_is_kept(audit_url: str, tmp_path: Path) -> None:
    writer = AuditWriter(lambda: AuditStore.open(audit_url), Journal(tmp_path / "j.jsonl")).start()
    r = record(EventKind.BLOCKED)
    writer.commit_sync([PendingEvent(r, [PROMPT])])
    assert writer.store is not None and not writer.store.has_evidence(r["event_id"])
    writer.close()


def test_store_away_spools_to_the_journal_and_replays_when_back(tmp_path: Path, keys: AuditKeys) -> None:
    # A SQLite file in a directory that does not exist yet: the store cannot open until it does.
    missing = tmp_path / "later"
    url = f"sqlite:///{missing / 'audit.db'}"
    journal = Journal(tmp_path / "journal.jsonl")
    writer = AuditWriter(lambda: AuditStore.open(url, keys), journal, keys).start()
    assert not writer.healthy
    spooled = [record(EventKind.BLOCKED) for _ in range(3)]
    writer.commit_sync([PendingEvent(r, [PROMPT]) for r in spooled])
    assert len(journal) == 3
    assert NATIONAL_ID not in journal.path.read_text()  # evidence is sealed before it is spooled
    writer.close()

    missing.mkdir()
    writer = AuditWriter(lambda: AuditStore.open(url, keys), journal, keys).start()  # next start replays
    assert writer.healthy and len(journal) == 0
    store = writer.store
    assert store is not None
    assert [e["event_id"] for e in store.events()] == [r["event_id"] for r in spooled]
    assert store.open_evidence(spooled[0]["event_id"], "reviewer", "replayed evidence") == [PROMPT]
    writer.close()


def test_neither_store_nor_journal_fails_closed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere' / 'audit.db'}"
    journal = Journal(tmp_path / "nowhere" / "journal.jsonl")
    writer = AuditWriter(lambda: AuditStore.open(url), journal).start()
    with pytest.raises(AuditUnavailable):
        writer.commit_sync([PendingEvent(record())])
    writer.close()


def test_a_line_torn_by_a_crash_is_not_replayed(tmp_path: Path, audit_url: str) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    kept = record()
    journal.append([StoredEvent(kept)])
    with journal.path.open("a") as f:
        f.write('{"record": {"event_id": "torn')  # the crash came before the fsync returned
    items, lines = journal.pending()
    assert [i.record["event_id"] for i in items] == [kept["event_id"]] and lines == 1
    writer = AuditWriter(lambda: AuditStore.open(audit_url), journal).start()
    assert writer.store is not None and writer.store.count() == 1
    writer.close()


def test_replay_after_an_unclear_failure_does_not_duplicate(tmp_path: Path, audit_url: str) -> None:
    r = record()
    store = AuditStore.open(audit_url)
    store.append([StoredEvent(r)])  # stored, but the writer never heard back and spooled it too
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append([StoredEvent(r)])
    writer = AuditWriter(lambda: AuditStore.open(audit_url), journal).start()
    assert writer.store is not None and writer.store.count() == 1 and len(journal) == 0
    writer.close()
    store.close()
