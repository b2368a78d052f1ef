"""Headless Chromium against a real ``guard review`` process: a reviewer's whole round, a hostile prompt."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from guard.audit.keys import new_key, parse_keys
from guard.audit.store import AuditStore
from guard.review import queries
from tests.databases import BACKENDS, audit_database
from tests.e2e.helpers import REPO, free_port, run_client
from tests.review.helpers import (
    HOSTILE_PROMPT,
    MOBILE,
    NATIONAL_ID,
    PII_PROMPT,
    SERVICE_LINE,
    SERVICE_PROMPT,
    event_record,
    finding,
    pii_findings,
    seed,
    seed_many,
)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CLIENT = Path(__file__).resolve().parent / "clients" / "console_client.py"
REVIEWER, REVIEWER_PASSWORD = "vera", "a reviewer's long password"


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@contextlib.contextmanager
def review_console(audit_url: str, key_file: Path, log: Path) -> Iterator[str]:
    """``guard review`` as a subprocess on a free loopback port; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "guard.cli", "review", "--audit-db", audit_url,
               "--audit-key-file", str(key_file), "--listen-port", str(port), "--session-minutes", "15"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"guard review did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _seed(store: AuditStore) -> dict[str, str]:
    now = datetime.now(UTC)
    pii = seed(store, [PII_PROMPT], pii_findings(), user="alice", when=now - timedelta(minutes=30))
    seed(store, [PII_PROMPT], pii_findings(), user="bob", when=now - timedelta(minutes=20))
    seed(store, ["密等：機密"], [finding("密等：機密", "密等：機密", "CLASSIFICATION_MARKER", "block")],
         decision="block", user="alice", when=now - timedelta(minutes=10))
    service_line = seed(store, [SERVICE_PROMPT], [finding(SERVICE_PROMPT, SERVICE_LINE, "PHONE_NUMBER")],
                        user="carol", when=now - timedelta(minutes=5))
    hostile = seed(store, [HOSTILE_PROMPT], [finding(HOSTILE_PROMPT, NATIONAL_ID, "TW_NATIONAL_ID"),
                                             finding(HOSTILE_PROMPT, MOBILE, "PHONE_NUMBER")],
                   user="<b>mallory</b>\u202e", when=now - timedelta(minutes=1))
    seed_many(store, [event_record([f"回電 {MOBILE}"], [finding(f"回電 {MOBILE}", MOBILE, "PHONE_NUMBER")],
                                   user="dave", when=now - timedelta(minutes=40 + i)) for i in range(6)])
    return {"pii": pii.event_id, "false_positive": service_line.event_id, "hostile": hostile.event_id}


@pytest.fixture(scope="module", params=BACKENDS)
def seen(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, client_python: str,
         chromium: Path) -> Iterator[dict[str, Any]]:
    """One browser round per back-end (each a fresh database), shared by this module's tests."""
    directory = tmp_path_factory.mktemp("review-browser")
    key_line = new_key()
    with audit_database(request.param, directory) as audit_url:
        store = AuditStore.open(audit_url, parse_keys(key_line, "test"))
        try:
            key_file = directory / "audit.key"
            key_file.write_text(key_line + "\n", encoding="ascii")
            # The reviewer is added the way an administrator would: guard users add, password on stdin
            # (with the audit key: the store is keyed and every account change is chained).
            added = subprocess.run(
                [sys.executable, "-m", "guard.cli", "users", "add", REVIEWER, "--role", "reviewer",
                 "--password-stdin", "--audit-db", audit_url, "--audit-key-file", str(key_file)],
                input=REVIEWER_PASSWORD + "\n", capture_output=True, text=True, cwd=REPO, timeout=60,
                check=False)
            assert added.returncode == 0, added.stderr
            events = _seed(store)
            with review_console(audit_url, key_file, directory / "review.log") as url:
                output = run_client(
                    client_python, str(CLIENT), "--url", url, "--chromium", str(chromium),
                    "--name", REVIEWER, "--password", REVIEWER_PASSWORD, "--user", "alice",
                    "--event", events["pii"], "--false-positive", events["false_positive"],
                    "--hostile", events["hostile"], timeout=120)
            suggested = [(s.entity_type, s.value, s.proposed_by)
                         for s in queries.suggestions(store.engine, ("pending",))]
            intact = store.verify().intact
            yield output | {"pii": events["pii"], "suggested": suggested, "chain_intact": intact}
        finally:
            store.close()


def test_reviewer_signs_in_and_filters(seen: dict[str, Any]) -> None:
    assert "/login?next=/events" in seen["signed_out_url"]
    assert seen["all_total"] == "11"
    assert "user=alice" in seen["filtered_url"] and "decision=redact" in seen["filtered_url"]
    assert seen["filtered_total"] == "1" and seen["filtered_events"] == [seen["pii"]]


def test_reviewer_opens_an_event_reveals_it_and_sets_a_disposition(seen: dict[str, Any]) -> None:
    assert seen["event_id"] == seen["pii"]
    assert seen["marks"] == [["PERSON", "王○明"], ["TW_NATIONAL_ID", "A12*****89"],
                             ["PHONE_NUMBER", "091*****78"]]
    assert seen["revealed_values"] == ["王小明", NATIONAL_ID, MOBILE]
    assert seen["notice"] == "已儲存處置。"
    assert seen["current_disposition"].startswith("目前：確認屬實")
    assert seen["history"] == ["evidence_opened", "disposition_set"]


def test_reviewer_proposes_a_false_positive(seen: dict[str, Any]) -> None:
    assert seen["proposable"] == [SERVICE_LINE]
    assert "允許清單建議" in seen["proposed_notice"]
    assert seen["suggested"] == [("PHONE_NUMBER", SERVICE_LINE, REVIEWER)]
    assert seen["chain_intact"]


def test_a_hostile_prompt_renders_inert(seen: dict[str, Any]) -> None:
    assert seen["dialogs"] == []
    for page in ("hostile_event", "hostile_evidence"):
        state = seen[page]
        assert state["scripts"] == 0 and state["pwned_elements"] == 0 and not state["window_flag"], page
        assert "U+202E" in state["control_tokens"] and not state["raw_override"], page
    assert seen["hostile_user"] == "<b>mallory</b>U+202E"
    assert "<script>alert(1)</script>" in seen["hostile_original"]
    assert "<img id=pwned src=x onerror=alert(2)>" in seen["hostile_original"]


def test_dashboard_drills_down_to_the_events_behind_each_figure(seen: dict[str, Any]) -> None:
    # The latest day's bar: all ten redactions, or (run just after midnight on the console's clock,
    # UTC+8) the part of them seeded after it; its drill-down lists exactly what the bar counts.
    assert 1 <= seen["bar_redacted"] <= 10 and seen["bar_total"] == seen["bar_redacted"]
    assert "decision=redact" in seen["bar_url"] and "from=" in seen["bar_url"] and "to=" in seen["bar_url"]
    assert seen["total_blocked"] == 1 and seen["total_blocked_listed"] == 1


@pytest.mark.parametrize("page", ["narrow_dashboard", "narrow_events"])
def test_a_narrow_screen_keeps_words_whole_and_the_page_within_the_screen(seen: dict[str, Any],
                                                                          page: str) -> None:
    layout = seen[page]
    assert layout["page_width"] <= layout["screen_width"] == 375
    assert len(layout["nav_links"]) >= 2
    for link in layout["nav_links"]:  # one line each: the issue saw one character per line
        assert link["height"] <= link["line"] * 1.2, link


def test_dashboard_and_roles(seen: dict[str, Any]) -> None:
    assert seen["daily_columns"] == 30
    assert (seen["daily_blocked"], seen["daily_redacted"]) == (1, 10)
    assert seen["unusual"] == ["dave"]                      # six redactions today, none before
    assert seen["entities"][0] == "PHONE_NUMBER"
    assert seen["admin_status"] == 403 and seen["admin_heading"].startswith("沒有權限")
    assert "frame-ancestors 'none'" in seen["csp"]
    assert "/login" in seen["after_sign_out_url"]
