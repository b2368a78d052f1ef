"""``guard audit`` and ``guard users add`` as an operator runs them (subprocesses, both back-ends)."""

from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import delete

from guard.audit.accounts import authenticate
from guard.audit.events import EventKind
from guard.audit.schema import events
from guard.audit.store import AuditStore, StoredEvent
from tests.audit.helpers import NATIONAL_ID, record


def guard(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "guard.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=120, check=False)


def test_list_prints_one_json_line_per_event_newest_last(audit_url: str) -> None:
    store = AuditStore.open(audit_url)
    older, newer = record(EventKind.BLOCKED, minutes_ago=90), record(EventKind.REDACTED, minutes_ago=1)
    store.append([StoredEvent(older), StoredEvent(newer)])
    done = guard("audit", "list", "--audit-db", audit_url, "--jsonl")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["event_id"] for e in lines] == [older["event_id"], newer["event_id"]]
    assert lines[0]["decision"] == "block" and lines[0]["entities"] == {"TW_NATIONAL_ID": 1}
    assert NATIONAL_ID not in done.stdout
    since = newer["time"][:16]  # minutes precision: only the newer event
    recent = guard("audit", "list", "--audit-db", audit_url, "--since", since, "--jsonl")
    assert [json.loads(line)["event_id"] for line in recent.stdout.splitlines()] == [newer["event_id"]]
    store.close()


def test_verify_exits_zero_when_intact_and_one_when_a_row_is_deleted(audit_url: str) -> None:
    store = AuditStore.open(audit_url)
    rows = [record() for _ in range(4)]
    store.append([StoredEvent(r) for r in rows])
    intact = guard("audit", "verify", "--audit-db", audit_url)
    assert intact.returncode == 0 and "intact: 4 events" in intact.stdout
    with store.writing() as conn:
        conn.execute(delete(events).where(events.c.event_id == rows[1]["event_id"]))
    broken = guard("audit", "verify", "--audit-db", audit_url)
    assert broken.returncode == 1
    assert rows[2]["event_id"] in broken.stderr and "deleted or inserted" in broken.stderr
    store.close()


def test_users_add_reads_the_password_from_stdin(audit_url: str) -> None:
    done = guard("users", "add", "rita", "--role", "reviewer", "--password-stdin", "--audit-db", audit_url,
                 stdin="a long enough passphrase\n")
    assert done.returncode == 0, done.stderr
    store = AuditStore.open(audit_url)
    assert authenticate(store, "rita", "a long enough passphrase") == "reviewer"
    assert authenticate(store, "rita", "wrong passphrase here") is None
    again = guard("users", "add", "rita", "--role", "admin", "--password-stdin", "--audit-db", audit_url,
                  stdin="another long passphrase\n")
    assert again.returncode == 2 and "already exists" in again.stderr
    short = guard("users", "add", "sam", "--role", "author", "--password-stdin", "--audit-db", audit_url,
                  stdin="short\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    store.close()


def test_a_bad_store_url_is_named_without_its_password() -> None:
    done = guard("audit", "verify", "--audit-db", "mysql://auditor:hunter2@db/audit")
    assert done.returncode == 2
    assert "only sqlite:/// and postgresql://" in done.stderr and "hunter2" not in done.stderr


def test_purge_and_keygen(audit_url: str) -> None:
    purge = guard("audit", "purge", "--audit-db", audit_url)
    assert purge.returncode == 0 and "purged evidence of 0 event(s)" in purge.stdout
    key = guard("audit", "keygen")
    assert key.returncode == 0 and len(key.stdout.strip()) == 44
