"""An insider with write access to the audit database, on a real SQLite file and a real PostgreSQL
database: every way of rewriting the trail the issue lists, and ``verify`` naming what was touched."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, delete, insert, select, update

from guard.audit import chain, checkpoints
from guard.audit.accounts import add_user, hash_password
from guard.audit.events import EventKind
from guard.audit.evidence import seal
from guard.audit.keys import AuditKeys, new_key, parse_keys
from guard.audit.schema import chain_head, dispositions, event_entities, events, evidence, users
from guard.audit.store import AuditStore, StoredEvent
from guard.review import queries
from guard.review.schema import allowlist_suggestions
from tests.audit.helpers import PROMPT, record


@dataclass
class Trail:
    """A store as the proxy and the console leave it, and a checkpoint file taken afterwards."""

    store: AuditStore
    ids: list[str]            # inspection events, oldest first
    checkpoint_file: Path

    def problems(self, use_checkpoints: bool = True) -> str:
        read = checkpoints.read(self.checkpoint_file) if use_checkpoints else []
        report = self.store.verify(read)
        assert not report.cannot_verify
        assert not report.intact, "verify did not notice"
        return "\n".join(str(p) for p in report.problems)


@pytest.fixture
def keys() -> AuditKeys:
    return parse_keys(new_key(), "test")


@pytest.fixture
def trail(audit_url: str, keys: AuditKeys, tmp_path: Path) -> Trail:
    store = AuditStore.open(audit_url, keys, node="node-a")
    ids = []
    for i in range(6):
        r = record(EventKind.BLOCKED if i % 2 else EventKind.REDACTED, user=f"user{i}", minutes_ago=60 - i)
        sealed = seal([PROMPT], r["event_id"], keys) if i == 1 else None
        store.append([StoredEvent(r, sealed, datetime.now(UTC) + timedelta(days=30) if sealed else None)])
        ids.append(r["event_id"])
    add_user(store, "rita", "reviewer", "a long enough passphrase")
    queries.set_disposition(store, ids[1], "confirmed", "已通知單位", "rita", "10.0.0.9")
    queries.add_suggestions(store, ids[3], "rita", [("TW_UBN", "04595257")])
    path = tmp_path / "checkpoints.jsonl"
    head = store.head()
    checkpoints.CheckpointLog(path).write(checkpoints.take(head.seq, head.length, head.hash, keys))
    report = store.verify(checkpoints.read(path))
    assert report.intact, [str(p) for p in report.problems]
    assert report.checkpoints == 1 and report.mode == "keyed"
    yield Trail(store, ids, path)
    store.close()


def _rows(conn: Connection) -> list:  # type: ignore[type-arg]
    return list(conn.execute(select(events).order_by(events.c.seq)))


def _relink_without_key(conn: Connection, forged: dict | None = None) -> None:  # type: ignore[type-arg]
    """What an insider without the key can do: strip the key from every record and recompute plain
    SHA-256 links (optionally appending a forged event), then move the head to match."""
    prev, last_seq = chain.GENESIS, 0
    rows = _rows(conn)
    for row in rows:
        data = json.loads(row.record)
        data["chain_key"] = ""
        text = chain.canonical(data)
        link = chain.link(prev, text, None)
        conn.execute(update(events).where(events.c.seq == row.seq)
                     .values(record=text, prev_hash=prev, hash=link))
        prev, last_seq = link, row.seq
    count = len(rows)
    if forged is not None:
        text = chain.canonical(forged)
        link = chain.link(prev, text, None)
        last_seq = conn.execute(insert(events).values(
            event_id=forged["event_id"], time=datetime.fromisoformat(forged["time"]), kind=forged["kind"],
            decision=forged["decision"], user_name=forged["user"], client=forged["client"],
            service=forged["service"], host=forged["host"], node=forged["node"], record=text,
            prev_hash=prev, hash=link).returning(events.c.seq)).scalar_one()
        prev, count = link, count + 1
    conn.execute(update(chain_head).values(last_seq=last_seq, last_hash=prev, length=count))


def _edit_record(t: Trail, conn: Connection) -> str:
    row = conn.execute(select(events).where(events.c.event_id == t.ids[2])).one()
    data = json.loads(row.record)
    data["user"] = "someone-else"
    conn.execute(update(events).where(events.c.seq == row.seq).values(record=chain.canonical(data),
                                                                       user_name="someone-else"))
    return f"({t.ids[2]}): record was altered"


def _edit_column(t: Trail, conn: Connection) -> str:
    conn.execute(update(events).where(events.c.event_id == t.ids[1]).values(decision="allow"))
    return f"({t.ids[1]}): column decision differs from the record"


def _delete_middle(t: Trail, conn: Connection) -> str:
    conn.execute(delete(events).where(events.c.event_id == t.ids[2]))
    return f"({t.ids[3]}): does not follow the previous event"


def _swap_seq(t: Trail, conn: Connection) -> str:
    """Two events change places in the order (their contents swapped between the two sequence numbers)."""
    a, b = (conn.execute(select(events).where(events.c.event_id == i)).one() for i in (t.ids[2], t.ids[3]))
    content = ("event_id", "time", "kind", "decision", "user_name", "client", "service", "host", "node",
               "record", "prev_hash", "hash")
    conn.execute(update(events).where(events.c.seq == a.seq).values(event_id="moving"))
    conn.execute(update(events).where(events.c.seq == b.seq).values({c: getattr(a, c) for c in content}))
    conn.execute(update(events).where(events.c.seq == a.seq).values({c: getattr(b, c) for c in content}))
    return "does not follow the previous event"


def _truncate_tail(t: Trail, conn: Connection) -> str:
    conn.execute(delete(events).where(events.c.event_id.in_(t.ids[4:])))
    return "chain head says"


def _truncate_tail_and_rewind_head(t: Trail, conn: Connection) -> str:
    last_kept = conn.execute(select(events).where(events.c.event_id == t.ids[3])).one()
    conn.execute(delete(events).where(events.c.seq > last_kept.seq))
    conn.execute(update(chain_head).values(last_seq=last_kept.seq, last_hash=last_kept.hash, length=4))
    return "checkpoint at line 1"


def _wipe_and_reset(t: Trail, conn: Connection) -> str:
    conn.execute(delete(events))
    conn.execute(update(chain_head).values(last_seq=0, last_hash=chain.GENESIS, length=0))
    return "the store holds 0 events but this checkpoint saw"


def _rebuild_unkeyed(t: Trail, conn: Connection) -> str:
    conn.execute(delete(events).where(events.c.event_id == t.ids[0]))  # the edit being hidden
    _relink_without_key(conn)
    return "unkeyed link where every link must be keyed"


def _rebuild_unkeyed_as_keyless_store(t: Trail, conn: Connection) -> str:
    _relink_without_key(conn)
    conn.execute(update(chain_head).values(mode="keyless"))
    return "the store says it is keyless, yet an audit key is loaded"


def _append_forged_keyless_event(t: Trail, conn: Connection) -> str:
    forged = record(EventKind.BLOCKED, user="framed.user")
    forged["node"], forged["chain_key"] = "node-a", ""
    last = _rows(conn)[-1]
    text = chain.canonical(forged)
    link = chain.link(last.hash, text, None)
    seq = conn.execute(insert(events).values(
        event_id=forged["event_id"], time=datetime.fromisoformat(forged["time"]), kind=forged["kind"],
        decision="block", user_name="framed.user", client=forged["client"], service=forged["service"],
        host=forged["host"], node="node-a", record=text, prev_hash=last.hash, hash=link,
    ).returning(events.c.seq)).scalar_one()
    head = conn.execute(select(chain_head)).one()
    conn.execute(update(chain_head).values(last_seq=seq, last_hash=link, length=head.length + 1))
    return f"({forged['event_id']}): unkeyed link where every link must be keyed"


def _edit_entities(t: Trail, conn: Connection) -> str:
    seq = conn.execute(select(events.c.seq).where(events.c.event_id == t.ids[2])).scalar_one()
    conn.execute(update(event_entities).where(event_entities.c.event_seq == seq).values(entity_type="PERSON"))
    return f"event #{seq}: its entity rows (event_entities) differ from its record"


def _delete_entities(t: Trail, conn: Connection) -> str:
    seq = conn.execute(select(events.c.seq).where(events.c.event_id == t.ids[4])).scalar_one()
    conn.execute(delete(event_entities).where(event_entities.c.event_seq == seq))
    return f"event #{seq}: its entity rows (event_entities) differ from its record"


def _edit_evidence(t: Trail, conn: Connection) -> str:
    row = conn.execute(select(evidence).where(evidence.c.event_id == t.ids[1])).one()
    flipped = bytes([row.ciphertext[0] ^ 1]) + row.ciphertext[1:]
    conn.execute(update(evidence).where(evidence.c.event_id == t.ids[1]).values(ciphertext=flipped))
    return f"evidence of event {t.ids[1]}: evidence does not open"


def _extend_evidence_retention(t: Trail, conn: Connection) -> str:
    conn.execute(update(evidence).where(evidence.c.event_id == t.ids[1]).values(
        expires_at=datetime.now(UTC) + timedelta(days=3650)))
    return f"evidence of event {t.ids[1]}: its key or retention differs"


def _delete_evidence_early(t: Trail, conn: Connection) -> str:
    conn.execute(delete(evidence).where(evidence.c.event_id == t.ids[1]))
    return f"evidence of event {t.ids[1]}: deleted before its retention ended"


def _move_evidence(t: Trail, conn: Connection) -> str:
    conn.execute(update(evidence).where(evidence.c.event_id == t.ids[1]).values(event_id=t.ids[0]))
    return f"evidence of event {t.ids[0]}: no chained event says this evidence was kept"


def _edit_disposition(t: Trail, conn: Connection) -> str:
    conn.execute(update(dispositions).where(dispositions.c.event_id == t.ids[1])
                 .values(status="false_positive"))
    return f"disposition of event {t.ids[1]}: differs from the newest chained disposition_set"


def _insert_disposition(t: Trail, conn: Connection) -> str:
    conn.execute(insert(dispositions).values(event_id=t.ids[5], status="false_positive", note="",
                                             reviewer="rita", updated_at=datetime.now(UTC)))
    return f"disposition of event {t.ids[5]}: differs from the newest chained disposition_set"


def _promote_account(t: Trail, conn: Connection) -> str:
    conn.execute(update(users).where(users.c.name == "rita").values(role="admin"))
    return "account rita: role differs from the chained record"


def _replace_password(t: Trail, conn: Connection) -> str:
    insider_hash = hash_password("insider-chosen-pw")
    conn.execute(update(users).where(users.c.name == "rita").values(password_hash=insider_hash))
    return "account rita: password differs from the chained record"


def _insert_account(t: Trail, conn: Connection) -> str:
    conn.execute(insert(users).values(name="mallory", role="admin", password_hash=hash_password("x" * 12),
                                      created_at=datetime.now(UTC), disabled=False))
    return "account mallory: not in the chain (added outside guard)"


def _edit_suggestion(t: Trail, conn: Connection) -> str:
    conn.execute(update(allowlist_suggestions).values(value="A123456789", status="accepted"))
    return "allow-list suggestion 1: status, value differs from the chained record"


def _insert_suggestion(t: Trail, conn: Connection) -> str:
    conn.execute(insert(allowlist_suggestions).values(
        entity_type="TW_NATIONAL_ID", value="A123456789", event_id=t.ids[0], proposed_by="rita",
        created_at=datetime.now(UTC), status="accepted"))
    return "not in the chain (added outside guard)"


TAMPERING: list[Callable[[Trail, Connection], str]] = [
    _edit_record, _edit_column, _delete_middle, _swap_seq, _truncate_tail, _truncate_tail_and_rewind_head,
    _wipe_and_reset, _rebuild_unkeyed, _rebuild_unkeyed_as_keyless_store, _append_forged_keyless_event,
    _edit_entities, _delete_entities, _edit_evidence, _extend_evidence_retention, _delete_evidence_early,
    _move_evidence, _edit_disposition, _insert_disposition, _promote_account, _replace_password,
    _insert_account, _edit_suggestion, _insert_suggestion,
]


@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda f: f.__name__.strip("_"))
def test_verify_names_what_an_insider_changed(trail: Trail,
                                              tamper: Callable[[Trail, Connection], str]) -> None:
    with trail.store.writing() as conn:
        expected = tamper(trail, conn)
    assert expected in trail.problems()


def test_rewinding_the_head_goes_unseen_without_checkpoints_and_is_caught_with_them(
        trail: Trail, keys: AuditKeys) -> None:
    before = trail.store.head()
    trail.store.append([StoredEvent(record(user="late1")), StoredEvent(record(user="late2"))])
    head = trail.store.head()
    checkpoints.CheckpointLog(trail.checkpoint_file).write(
        checkpoints.take(head.seq, head.length, head.hash, keys))
    with trail.store.writing() as conn:
        conn.execute(delete(events).where(events.c.seq > before.seq))
        conn.execute(update(chain_head).values(last_seq=before.seq, last_hash=before.hash,
                                              length=before.length))
    assert trail.store.verify().intact  # a consistent prefix: only a record kept elsewhere shows the loss
    problems = trail.problems()
    assert "checkpoint at line 1" not in problems
    assert "checkpoint at line 2" in problems
    assert f"the store holds {before.length} events but this checkpoint saw {head.length}" in problems


def test_a_forged_checkpoint_is_refused(trail: Trail) -> None:
    data = json.loads(trail.checkpoint_file.read_text())
    data["length"] += 10
    trail.checkpoint_file.write_text(json.dumps(data) + "\n")
    assert "checkpoint at line 1" in trail.problems() and "signature does not match" in trail.problems()


def test_a_siem_export_of_the_json_log_serves_as_checkpoints(trail: Trail, tmp_path: Path) -> None:
    line = json.loads(trail.checkpoint_file.read_text())
    siem = tmp_path / "siem.jsonl"
    siem.write_text(json.dumps({"event": "prompt_blocked", "seq": 1}) + "\n"
                    + json.dumps({**line, "logged_at": "2026-11-28T10:00:00Z", "level": "info"}) + "\n")
    assert trail.store.verify(checkpoints.read(siem)).intact
    with trail.store.writing() as conn:
        _wipe_and_reset(trail, conn)
    report = trail.store.verify(checkpoints.read(siem))
    assert any("checkpoint at line 2" in str(p) for p in report.problems)


def test_without_the_key_a_keyed_store_cannot_be_verified(trail: Trail, audit_url: str) -> None:
    keyless = AuditStore.open(audit_url)
    try:
        report = keyless.verify()
        assert report.cannot_verify and "keyed" in report.cannot_verify and not report.problems
        with trail.store.writing() as conn:  # even after a rewrite that claims keyless mode
            conn.execute(update(chain_head).values(mode="keyless"))
        assert keyless.verify().cannot_verify
    finally:
        keyless.close()


def test_a_keyless_store_is_a_mode_of_its_own_and_refuses_a_key_later(audit_url: str,
                                                                       keys: AuditKeys) -> None:
    store = AuditStore.open(audit_url)
    store.append([StoredEvent(record())])
    report = store.verify()
    assert report.intact and report.mode == "keyless"
    keyed = AuditStore.open(audit_url, keys)
    try:
        with pytest.raises(Exception, match="created keyless"):
            keyed.append([StoredEvent(record())])
    finally:
        keyed.close()
        store.close()


def test_a_keyed_store_refuses_a_writer_without_the_key(trail: Trail, audit_url: str) -> None:
    keyless = AuditStore.open(audit_url)
    try:
        with pytest.raises(Exception, match="keyed: load its audit key"):
            keyless.append([StoredEvent(record())])
    finally:
        keyless.close()


def test_checkpoints_in_the_store_hold_no_value(trail: Trail) -> None:
    text = trail.checkpoint_file.read_text()
    assert set(json.loads(text)) == {"event", "seq", "length", "hash", "time", "key_id", "mac"}
    assert base64.b64encode(b"A123456789").decode() not in text and "A123456789" not in text


def test_checkpoints_logged_in_elastic_common_schema_are_read_too(trail: Trail, tmp_path: Path) -> None:
    from guard.audit.logging import to_ecs

    line = json.loads(trail.checkpoint_file.read_text())
    ecs = to_ecs(None, "info", dict(line))
    siem = tmp_path / "siem-ecs.jsonl"
    siem.write_text(json.dumps(ecs) + "\n")
    read = checkpoints.read(siem)
    assert [r.checkpoint for r in read] == [checkpoints.read(trail.checkpoint_file)[0].checkpoint]
    assert trail.store.verify(read).intact
