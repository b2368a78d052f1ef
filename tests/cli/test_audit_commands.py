"""``guard audit`` and ``guard users add`` as an operator runs them (subprocesses, both back-ends)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import delete, update

from guard.audit.accounts import authenticate
from guard.audit.events import EventKind
from guard.audit.keys import load_keys, new_key
from guard.audit.schema import chain_head, events
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


def test_verify_exit_codes_keyed_store_checkpoints_and_no_key(audit_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "audit.key"
    key_file.write_text(new_key() + "\n")
    store = AuditStore.open(audit_url, load_keys(str(key_file)))
    rows = [record() for _ in range(3)]
    store.append([StoredEvent(r) for r in rows])
    marks = tmp_path / "checkpoints.jsonl"
    taken = guard("audit", "checkpoint", "--checkpoints", str(marks), "--audit-db", audit_url,
                  "--audit-key-file", str(key_file))
    assert taken.returncode == 0, taken.stderr
    intact = guard("audit", "verify", "--checkpoints", str(marks), "--audit-db", audit_url,
                   "--audit-key-file", str(key_file))
    assert intact.returncode == 0 and "intact: 3 events, keyed" in intact.stdout
    assert "1 checkpoint(s) agree" in intact.stdout
    no_key = guard("audit", "verify", "--audit-db", audit_url)
    assert no_key.returncode == 3 and "NOT VERIFIED" in no_key.stderr and "BROKEN" not in no_key.stderr
    with store.writing() as conn:  # wipe the store and reset its head
        conn.execute(delete(events))
        conn.execute(update(chain_head).values(last_seq=0, last_hash="0" * 64, length=0))
    reset = guard("audit", "verify", "--checkpoints", str(marks), "--audit-db", audit_url,
                  "--audit-key-file", str(key_file))
    assert reset.returncode == 1 and "checkpoint at line 1" in reset.stderr
    assert "the store holds 0 events but this checkpoint saw 3" in reset.stderr
    missing = guard("audit", "verify", "--checkpoints", str(tmp_path / "nope"), "--audit-db", audit_url,
                    "--audit-key-file", str(key_file))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    store.close()


def test_list_filters_by_decision_user_service_relative_time_and_limit(audit_url: str) -> None:
    store = AuditStore.open(audit_url)
    old = record(EventKind.BLOCKED, user="amy", minutes_ago=60 * 30)
    blocked = [record(EventKind.BLOCKED, user="amy", minutes_ago=m) for m in (50, 40, 30)]
    other = record(EventKind.REDACTED, user="bob", minutes_ago=20)
    anonymous = record(EventKind.BLOCKED, user="", minutes_ago=10)
    store.append([StoredEvent(r) for r in (old, *blocked, other, anonymous)])

    def ids(*args: str) -> list[str]:
        done = guard("audit", "list", "--audit-db", audit_url, "--jsonl", *args)
        assert done.returncode == 0, done.stderr
        return [json.loads(line)["event_id"] for line in done.stdout.splitlines()]

    assert ids("--since", "24h", "--decision", "block", "--user", "amy") == [r["event_id"] for r in blocked]
    assert ids("--since", "24h", "--decision", "block", "--user", "amy", "--limit", "2") == [
        r["event_id"] for r in blocked[1:]]
    assert ids("--since", "2d", "--user", "amy") == [r["event_id"] for r in (old, *blocked)]
    assert ids("--service", "openai", "--decision", "redact") == [other["event_id"]]
    assert ids("--user", "", "--decision", "block") == [anonymous["event_id"]]
    assert ids("--until", "45m", "--since", "1d") == [blocked[0]["event_id"]]
    plain = guard("audit", "list", "--audit-db", audit_url, "--since", "15m")
    assert "(unidentified)" in plain.stdout and "block" in plain.stdout
    bad = guard("audit", "list", "--audit-db", audit_url, "--since", "yesterday")
    assert bad.returncode != 0 and "24h" in bad.stderr
    store.close()


def test_users_list_disable_enable_reset_are_chained(audit_url: str) -> None:
    assert guard("users", "add", "rita", "--role", "reviewer", "--password-stdin", "--audit-db", audit_url,
                 stdin="a long enough passphrase\n").returncode == 0
    listed = guard("users", "list", "--audit-db", audit_url)
    assert listed.returncode == 0 and "rita" in listed.stdout and "enabled" in listed.stdout
    assert guard("users", "disable", "rita", "--audit-db", audit_url).returncode == 0
    assert "disabled" in guard("users", "list", "--audit-db", audit_url).stdout
    store = AuditStore.open(audit_url)
    assert authenticate(store, "rita", "a long enough passphrase") is None
    assert guard("users", "enable", "rita", "--audit-db", audit_url).returncode == 0
    reset = guard("users", "reset", "rita", "--password-stdin", "--audit-db", audit_url,
                  stdin="a brand new passphrase\n")
    assert reset.returncode == 0, reset.stderr
    assert authenticate(store, "rita", "a brand new passphrase") == "reviewer"
    assert authenticate(store, "rita", "a long enough passphrase") is None
    no_terminal = guard("users", "reset", "rita", "--audit-db", audit_url)  # stdin is not a terminal
    assert no_terminal.returncode == 2 and "--password-stdin" in no_terminal.stderr
    unknown = guard("users", "disable", "nobody", "--audit-db", audit_url)
    assert unknown.returncode == 2 and "no user nobody" in unknown.stderr
    changes = [e for e in store.events() if e["kind"] == "account_changed"]
    assert [e["change"] for e in changes] == ["added", "disabled", "enabled", "password_reset"]
    assert all(e["subject"] == "rita" and e["user"].startswith("guard users") for e in changes)
    assert store.verify().intact
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
