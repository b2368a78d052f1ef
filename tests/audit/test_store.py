"""The audit store on a real SQLite file and a real PostgreSQL database (every test runs on both)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from guard.audit import chain
from guard.audit.events import EventKind
from guard.audit.evidence import EvidenceError, seal
from guard.audit.keys import AuditKeys, new_key, parse_keys
from guard.audit.schema import chain_head, event_entities, events, evidence
from guard.audit.store import AuditStore, AuditStoreError, StoredEvent
from tests.audit.helpers import NATIONAL_ID, PROMPT, record


@pytest.fixture
def keys() -> AuditKeys:
    return parse_keys(new_key(), "test")


@pytest.fixture
def store(audit_url: str, keys: AuditKeys) -> AuditStore:
    opened = AuditStore.open(audit_url, keys, node="node-a")
    yield opened
    opened.close()


def _fill(store: AuditStore, n: int = 5) -> list[str]:
    ids = []
    for i in range(n):
        r = record(EventKind.REDACTED if i % 2 else EventKind.BLOCKED, minutes_ago=n - i)
        store.append([StoredEvent(r)])
        ids.append(r["event_id"])
    return ids


def test_events_come_back_in_order_with_their_records(store: AuditStore) -> None:
    ids = _fill(store)
    listed = list(store.events())
    assert [e["event_id"] for e in listed] == ids
    assert listed[0]["kind"] == "prompt_blocked" and listed[1]["decision"] == "redact"
    assert listed[0]["entities"] == {"TW_NATIONAL_ID": 1} and listed[0]["node"] == "node-a"
    assert listed[0]["snippets"][0]["text"].count("A12*****89") == 1
    assert store.count() == 5


def test_since_filters_by_event_time(store: AuditStore) -> None:
    store.append([StoredEvent(record(minutes_ago=120)), StoredEvent(record(minutes_ago=1))])
    since = datetime.now(UTC) - timedelta(minutes=30)
    assert len(list(store.events(since))) == 1


def test_an_intact_chain_verifies(store: AuditStore) -> None:
    _fill(store, 20)
    report = store.verify()
    assert report.intact and report.checked == 20


def test_appending_the_same_event_twice_keeps_one(store: AuditStore) -> None:
    r = record()
    assert store.append([StoredEvent(r)]) == 1
    assert store.append([StoredEvent(r), StoredEvent(r)]) == 0
    assert store.count() == 1 and store.verify().intact


def test_a_fresh_append_that_meets_a_stored_event_is_run_again_with_the_lookup(store: AuditStore) -> None:
    """``fresh`` skips the look-up of stored events; one stored after all (a writer that died after
    its commit and before its acknowledgement) is refused by the unique id, and the append is run
    again with the look-up: kept once, nothing else lost, the chain intact."""
    stored, new = record(entities={"PHONE_NUMBER": 2}), record(entities={"PERSON": 1})
    assert store.append([StoredEvent(stored)], fresh=True) == 1
    assert store.append([StoredEvent(stored), StoredEvent(new), StoredEvent(new)], fresh=True) == 1
    assert [e["event_id"] for e in store.events()] == [stored["event_id"], new["event_id"]]
    with store.engine.connect() as conn:
        counts = sorted((row.entity_type, row.count) for row in conn.execute(select(event_entities)))
    assert counts == [("PERSON", 1), ("PHONE_NUMBER", 2)]
    assert store.count() == 2 and store.verify().intact


def test_a_batch_is_chained_in_order_with_each_events_counts_and_evidence(store: AuditStore,
                                                                           keys: AuditKeys) -> None:
    """One append of several events (one INSERT per table): every count and evidence row belongs to
    its own event, a duplicate in the batch is kept once, and the chain verifies."""
    batch = [record(EventKind.BLOCKED, entities={"TW_NATIONAL_ID": 2}),
             record(entities={"PHONE_NUMBER": 1, "EMAIL_ADDRESS": 3}),
             record(EventKind.ALLOWED, entities={}),
             record(entities={"PERSON": 5})]
    items = [StoredEvent(r, seal([PROMPT], r["event_id"], keys) if i % 2 == 0 else None)
             for i, r in enumerate(batch)]
    assert store.append([*items, items[1]]) == 4
    with store.engine.connect() as conn:
        by_event = {row.event_id: row.seq for row in conn.execute(select(events.c.event_id, events.c.seq))}
        counts = conn.execute(select(event_entities)).all()
        sealed = {row.event_id for row in conn.execute(select(evidence.c.event_id))}
    for r in batch:
        mine = {c.entity_type: c.count for c in counts if c.event_seq == by_event[r["event_id"]]}
        assert mine == r["entities"]
    assert sealed == {batch[0]["event_id"], batch[2]["event_id"]}
    assert [e["event_id"] for e in store.events()] == [r["event_id"] for r in batch]
    report = store.verify()
    assert report.intact and report.checked == 4


def test_an_append_after_its_connection_broke_opens_another(store: AuditStore) -> None:
    store.append([StoredEvent(record())])
    assert store._append_conn is not None
    store._append_conn.connection.dbapi_connection.close()  # the database went away under it
    with pytest.raises(DBAPIError):
        store.append([StoredEvent(record())])
    assert store.append([StoredEvent(record())]) == 1
    assert store.count() == 2 and store.verify().intact


def _problems(store: AuditStore) -> str:
    report = store.verify()
    assert not report.intact
    return "\n".join(str(p) for p in report.problems)


def test_verify_catches_an_edited_record(store: AuditStore) -> None:
    ids = _fill(store)
    with store.writing() as conn:
        row = conn.execute(select(events.c.record).where(events.c.event_id == ids[2])).scalar_one()
        edited = json.loads(row)
        edited["user"] = "someone-else"
        conn.execute(update(events).where(events.c.event_id == ids[2]).values(
            record=json.dumps(edited), user_name="someone-else"))
    assert f"({ids[2]}): record was altered" in _problems(store)


def test_verify_catches_an_edited_column(store: AuditStore) -> None:
    ids = _fill(store)
    with store.writing() as conn:
        conn.execute(update(events).where(events.c.event_id == ids[1]).values(decision="allow"))
    assert "column decision differs from the record" in _problems(store)


def test_verify_catches_a_deleted_event(store: AuditStore) -> None:
    ids = _fill(store)
    with store.writing() as conn:
        conn.execute(delete(events).where(events.c.event_id == ids[2]))
    assert f"({ids[3]}): does not follow the previous event" in _problems(store)


def test_verify_catches_deleted_events_at_the_end(store: AuditStore) -> None:
    ids = _fill(store)
    with store.writing() as conn:
        conn.execute(delete(events).where(events.c.event_id == ids[-1]))
    assert "chain head says 5 events" in _problems(store)


def test_verify_catches_an_inserted_event(store: AuditStore) -> None:
    ids = _fill(store, 3)
    with store.writing() as conn:
        first = conn.execute(select(events).where(events.c.event_id == ids[0])).one()
        forged = record(minutes_ago=10)
        conn.execute(insert(events).values(
            event_id=forged["event_id"], time=datetime.now(UTC), kind=forged["kind"], decision="redact",
            user_name="alice", client="", service="", host="", node="", record=json.dumps(forged),
            prev_hash=first.hash, hash="f" * 64))
        conn.execute(update(chain_head).values(length=4))
    assert f"({forged['event_id']}): unkeyed link where every link must be keyed" in _problems(store)


def test_without_the_key_the_chain_cannot_be_checked(audit_url: str, store: AuditStore) -> None:
    _fill(store, 2)
    other = AuditStore.open(audit_url, parse_keys(new_key(), "other"))
    try:
        assert "which is not loaded" in _problems(other)
    finally:
        other.close()


def test_evidence_opens_with_a_reason_and_the_opening_is_chained(store: AuditStore, keys: AuditKeys) -> None:
    r = record(EventKind.BLOCKED)
    store.append([StoredEvent(r, seal([PROMPT], r["event_id"], keys), datetime.now(UTC) + timedelta(days=1))])
    with pytest.raises(ValueError, match="reason"):
        store.open_evidence(r["event_id"], "reviewer1", "   ")
    opened_texts = store.open_evidence(r["event_id"], "reviewer1", "申訴案 113-07 複查", client="10.1.1.1")
    assert opened_texts == [PROMPT]
    opened = list(store.events())[-1]
    assert opened["kind"] == "evidence_opened" and opened["subject"] == r["event_id"]
    assert opened["user"] == "reviewer1" and opened["reason"] == "申訴案 113-07 複查"
    assert store.verify().intact


def test_evidence_is_ciphertext_bound_to_its_event(store: AuditStore, keys: AuditKeys) -> None:
    a, b = record(), record()
    store.append([StoredEvent(a, seal([PROMPT], a["event_id"], keys)), StoredEvent(b)])
    with store.engine.connect() as conn:
        sealed = conn.execute(select(evidence)).one()
    assert NATIONAL_ID.encode() not in sealed.ciphertext
    with store.writing() as conn:  # move the ciphertext to another event: it must not open there
        conn.execute(update(evidence).values(event_id=b["event_id"]))
    with pytest.raises(EvidenceError, match="altered or belongs to another event"):
        store.open_evidence(b["event_id"], "reviewer1", "check")


def test_evidence_past_retention_is_purged(store: AuditStore, keys: AuditKeys) -> None:
    old, new = record(), record()
    store.append([
        StoredEvent(old, seal([PROMPT], old["event_id"], keys), datetime.now(UTC) - timedelta(minutes=1)),
        StoredEvent(new, seal([PROMPT], new["event_id"], keys), datetime.now(UTC) + timedelta(days=30)),
    ])
    assert store.purge() == 1
    assert not store.has_evidence(old["event_id"]) and store.has_evidence(new["event_id"])
    with pytest.raises(LookupError):
        store.open_evidence(old["event_id"], "reviewer1", "check")
    assert store.verify().intact  # purging evidence never breaks the chain


def test_two_nodes_appending_at_once_build_one_chain(audit_url: str, keys: AuditKeys) -> None:
    nodes = [AuditStore.open(audit_url, keys, node=f"node-{i}") for i in range(2)]
    errors: list[BaseException] = []

    def work(store: AuditStore) -> None:
        try:
            for _ in range(25):
                store.append([StoredEvent(record())])
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = nodes[0].verify()
    assert report.intact and report.checked == 50
    assert {e["node"] for e in nodes[1].events()} == {"node-0", "node-1"}
    for n in nodes:
        n.close()


def test_opening_again_finds_the_schema_at_the_newest_migration(audit_url: str) -> None:
    AuditStore.open(audit_url).close()
    store = AuditStore.open(audit_url)
    head = ScriptDirectory(str(resources.files("guard.audit") / "migrations")).get_current_head()
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
    store.close()


@pytest.mark.parametrize("url", ["mysql://u:secret@host/db", "not a url", "sqlite+nosuchdriver:///x"])
def test_a_bad_url_is_a_clear_error_without_the_password(url: str) -> None:
    with pytest.raises(AuditStoreError) as caught:
        AuditStore(url)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("keyed", [True, False])
def test_a_store_written_before_chain_modes_takes_the_mode_of_its_newest_link(audit_url: str,
                                                                             keyed: bool) -> None:
    keys = parse_keys(new_key(), "test") if keyed else None
    old = AuditStore(audit_url, keys)
    config = Config()
    config.set_main_option("script_location", str(resources.files("guard.audit") / "migrations"))
    with old.writing() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    with old.writing() as conn:  # an append as the code before migration 0003 made it (no mode column)
        r = record()
        r["node"], r["chain_key"] = "", keys.current.key_id if keys else ""
        text_ = json.dumps(r, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        link = chain.link(chain.GENESIS, text_, keys.current.chain_key if keys else None)
        conn.execute(insert(events).values(
            event_id=r["event_id"], time=datetime.fromisoformat(r["time"]), kind=r["kind"],
            decision=r["decision"],
            user_name=r["user"], client=r["client"], service=r["service"], host=r["host"], node="",
            record=text_, prev_hash=chain.GENESIS, hash=link))
        conn.execute(insert(event_entities).values(event_seq=1, entity_type="TW_NATIONAL_ID", count=1))
        conn.execute(text("UPDATE chain_head SET last_seq = 1, last_hash = :h, length = 1"), {"h": link})
    old.close()
    store = AuditStore.open(audit_url, keys)
    try:
        report = store.verify()
        assert report.intact and report.mode == ("keyed" if keyed else "keyless")
    finally:
        store.close()
