"""The audit writer in its own process: real child processes, real SQLite and PostgreSQL stores."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from guard.audit import checkpoints
from guard.audit.events import EventKind
from guard.audit.keys import AuditKeys, new_key, parse_keys
from guard.audit.process import AuditProcess, AuditSettings
from guard.audit.store import AuditStore, StoredEvent
from guard.audit.writer import AuditUnavailable, PendingEvent
from tests.audit.helpers import NATIONAL_ID, PROMPT, record


@pytest.fixture
def keys() -> AuditKeys:
    return parse_keys(new_key(), "test")


def settings(url: str, tmp_path: Path, keys: AuditKeys | None = None) -> AuditSettings:
    return AuditSettings(url, "node-1", str(tmp_path / "journal.jsonl"), keys)


def stored_ids(url: str) -> list[str]:
    store = AuditStore(url)
    try:
        return [e["event_id"] for e in store.events()]
    finally:
        store.close()


def test_events_are_kept_chained_and_sealed_by_the_child(audit_url: str, tmp_path: Path,
                                                          keys: AuditKeys) -> None:
    writer = AuditProcess(settings(audit_url, tmp_path, keys)).start()
    assert writer.healthy and writer.pid not in (None, os.getpid())
    records = [record() for _ in range(40)]

    async def commit_all() -> None:  # concurrent requests: the child keeps them in groups
        await asyncio.gather(*(writer.commit([PendingEvent(r, [PROMPT])]) for r in records))

    asyncio.run(commit_all())
    writer.close()
    assert writer.pid is None
    store = AuditStore(audit_url, keys)
    assert sorted(e["event_id"] for e in store.events()) == sorted(r["event_id"] for r in records)
    assert store.verify().intact
    assert all(e["node"] == "node-1" for e in store.events())
    assert store.open_evidence(records[0]["event_id"], "reviewer", "spot check") == [PROMPT]
    # The child wrote a signed checkpoint of the head beside the journal when it stopped.
    written = checkpoints.read(tmp_path / checkpoints.FILE_NAME)
    assert written and written[-1].checkpoint is not None and written[-1].checkpoint.length == 40
    assert written[-1].checkpoint.key_id == keys.current.key_id
    report = store.verify(written)
    assert report.intact and report.checkpoints == len(written)
    store.close()


def test_a_killed_writer_is_replaced_and_its_unacknowledged_events_are_kept_once(
        audit_url: str, tmp_path: Path) -> None:
    writer = AuditProcess(settings(audit_url, tmp_path)).start()
    first_pid = writer.pid
    assert first_pid is not None
    before, during = record(), [record() for _ in range(5)]

    async def scenario() -> None:
        await writer.commit([PendingEvent(before)])
        os.kill(first_pid, signal.SIGSTOP)  # stopped: it receives nothing more, acknowledges nothing
        pending = [asyncio.ensure_future(writer.commit([PendingEvent(r)])) for r in during]
        await asyncio.sleep(0.3)
        assert not any(task.done() for task in pending)
        os.kill(first_pid, signal.SIGKILL)
        await asyncio.wait_for(asyncio.gather(*pending), 60)

    asyncio.run(scenario())
    assert writer.pid not in (None, first_pid)
    writer.close()
    ids = stored_ids(audit_url)
    assert sorted(ids) == sorted(r["event_id"] for r in [before, *during])  # none lost, none twice
    store = AuditStore(audit_url)
    assert store.verify().intact
    store.close()


def test_an_event_the_store_already_holds_is_not_stored_again(audit_url: str, tmp_path: Path) -> None:
    # What makes resending safe: a child may die after committing and before acknowledging.
    r = record()
    early = AuditStore.open(audit_url)
    early.append([StoredEvent(r)])
    early.close()
    writer = AuditProcess(settings(audit_url, tmp_path)).start()
    asyncio.run(writer.commit([PendingEvent(r)]))
    writer.close()
    assert stored_ids(audit_url) == [r["event_id"]]


def test_a_replacement_that_cannot_start_fails_the_waiting_requests_closed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    writer = AuditProcess(settings(url, tmp_path)).start()
    pid = writer.pid
    assert pid is not None
    (tmp_path / "journal.jsonl").mkdir()  # the replacement cannot read its journal: it cannot start

    async def scenario() -> None:
        await writer.commit([PendingEvent(record())])
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(AuditUnavailable):
            await asyncio.wait_for(writer.commit([PendingEvent(record())]), 60)

    asyncio.run(scenario())
    writer.close()


@pytest.mark.parametrize("first_with_key", [True, False])
def test_a_key_that_does_not_fit_the_store_stops_start_up(tmp_path: Path, keys: AuditKeys,
                                                          first_with_key: bool) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    first = AuditStore.open(url, keys if first_with_key else None)
    first.append([StoredEvent(record())])
    first.close()
    expected = "keyed: load its audit key" if first_with_key else "created keyless"
    with pytest.raises(AuditUnavailable, match=expected):
        AuditProcess(settings(url, tmp_path, None if first_with_key else keys)).start()


def test_a_writer_that_cannot_start_stops_start_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    AuditStore.open(url).close()
    (tmp_path / "journal.jsonl").mkdir()
    with pytest.raises(AuditUnavailable, match="could not start"):
        AuditProcess(settings(url, tmp_path)).start()


def test_store_away_spools_sealed_events_and_says_so(tmp_path: Path, keys: AuditKeys) -> None:
    url = f"sqlite:///{tmp_path / 'not-yet' / 'audit.db'}"
    writer = AuditProcess(settings(url, tmp_path, keys)).start()
    assert not writer.healthy and writer.store_error
    r = record(EventKind.BLOCKED)
    asyncio.run(writer.commit([PendingEvent(r, [PROMPT])]))
    writer.close()
    spooled = (tmp_path / "journal.jsonl").read_text()
    assert r["event_id"] in spooled and NATIONAL_ID not in spooled


def test_after_close_commits_fail_closed(tmp_path: Path) -> None:
    writer = AuditProcess(settings(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path)).start()
    writer.close()
    with pytest.raises(AuditUnavailable):
        asyncio.run(writer.commit([PendingEvent(record())]))
