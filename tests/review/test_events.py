"""The event list (filters, paging, CSV) and one event's page, including a hostile prompt."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from guard.audit.store import AuditStore
from guard.review import queries
from guard.review.queries import LOCAL_TZ
from tests.review.helpers import (
    CLASSIFIED_PROMPT,
    HOSTILE_PROMPT,
    MOBILE,
    NATIONAL_ID,
    PII_PROMPT,
    Client,
    event_record,
    finding,
    pii_findings,
    seed,
    seed_many,
)


def _day(days_ago: int) -> str:
    return (datetime.now(LOCAL_TZ) - timedelta(days=days_ago)).strftime("%Y-%m-%d")


@pytest.fixture
def seeded(store: AuditStore) -> dict[str, str]:
    """Four events across users, services, decisions, entity types and days; one with a disposition."""
    now = datetime.now(UTC)
    events = {
        "alice_redact": seed(store, [PII_PROMPT], pii_findings(), user="alice", service="chatgpt",
                             when=now - timedelta(minutes=5)),
        "bob_block": seed(store, [CLASSIFIED_PROMPT],
                          [finding(CLASSIFIED_PROMPT, "密等：機密", "CLASSIFICATION_MARKER", "block")],
                          decision="block", user="bob", service="claude", when=now - timedelta(days=3)),
        "alice_allow": seed(store, ["請用三句話介紹台灣的夜市文化。"], [], decision="allow", user="alice",
                            service="gemini", when=now - timedelta(days=10), evidence=False),
        "carol_phone": seed(store, [f"回電 {MOBILE}"], [finding(f"回電 {MOBILE}", MOBILE, "PHONE_NUMBER")],
                            user="carol", service="chatgpt", when=now - timedelta(days=1)),
    }
    ids = {name: e.event_id for name, e in events.items()}
    queries.set_disposition(store, ids["carol_phone"], "follow_up", "請主管確認", "rita", "127.0.0.1")
    return ids


def _filters() -> list[tuple[dict[str, str], list[str]]]:
    """Filter (query string) → the events it shows, newest first; dates computed when the test runs,
    as the events are seeded (at collection time they could name the day before a midnight)."""
    return [
    ({}, ["alice_redact", "carol_phone", "bob_block", "alice_allow"]),
    ({"user": "alice"}, ["alice_redact", "alice_allow"]),
    ({"user": "ali"}, []),                                        # exact names, not substrings
    ({"service": "chatgpt"}, ["alice_redact", "carol_phone"]),
    ({"decision": "block"}, ["bob_block"]),
    ({"decision": "redact", "user": "carol"}, ["carol_phone"]),
    ({"entity": "TW_NATIONAL_ID"}, ["alice_redact"]),
    ({"entity": "PHONE_NUMBER"}, ["alice_redact", "carol_phone"]),
    ({"entity": "CLASSIFICATION_MARKER"}, ["bob_block"]),
    ({"disposition": "follow_up"}, ["carol_phone"]),
    ({"disposition": "none"}, ["alice_redact", "bob_block", "alice_allow"]),
    ({"disposition": "false_positive"}, []),
    ({"from": _day(2)}, ["alice_redact", "carol_phone"]),
    ({"from": _day(11), "to": _day(4)}, ["alice_allow"]),
    ({"to": _day(3)}, ["bob_block", "alice_allow"]),              # "to" is inclusive of the whole day
    ]


def test_filters_narrow_the_list(client: Callable[[str], Client], seeded: dict[str, str]) -> None:
    rita = client("rita")
    for args, expected in _filters():
        page = rita.get("/events", query_string=args).get_data(as_text=True)
        shown = [name for name, event_id in sorted(seeded.items(), key=lambda kv: page.find(kv[1]))
                 if f'data-event="{event_id}"' in page]
        assert shown == expected, args
        assert f'<span id="total">{len(expected)}</span>' in page, args


def test_reviewer_actions_are_listed_only_when_asked_for(client: Callable[[str], Client],
                                                         seeded: dict[str, str]) -> None:
    page = client("rita").text("/events?decision=review")
    # The fixture's three accounts (each chained as 帳號異動) and one disposition.
    assert '<span id="total">4</span>' in page and "設定處置" in page and page.count("帳號異動") == 3


def test_a_bad_filter_is_reported_and_ignored(client: Callable[[str], Client],
                                              seeded: dict[str, str]) -> None:
    rita = client("rita")
    page = rita.get("/events", query_string={"from": "yesterday", "decision": "<b>"}).get_data(as_text=True)
    assert "日期格式不正確" in page and "未知的決定類型" in page and "<b>" not in page
    assert '<span id="total">4</span>' in page
    assert rita.get("/events.csv", query_string={"from": "yesterday"}).status_code == 400


def test_pages_hold_fifty_events_newest_first(client: Callable[[str], Client], store: AuditStore) -> None:
    start = datetime.now(UTC) - timedelta(hours=5)
    records = [event_record([f"第 {i} 件"], [], decision="allow", user=f"u{i:03d}",
                            when=start + timedelta(seconds=i)) for i in range(120)]
    seed_many(store, records)
    rita = client("rita")

    def users(page: str) -> list[str]:
        return [f"u{i:03d}" for i in range(119, -1, -1) if f"<bdi>u{i:03d}</bdi>" in page]

    first, third = rita.text("/events?page=1"), rita.text("/events?page=3")
    assert users(first) == [f"u{i:03d}" for i in range(119, 69, -1)]
    assert users(third) == [f"u{i:03d}" for i in range(19, -1, -1)]
    assert "第 1 / 3 頁" in first and 'id="next"' in first and 'id="prev"' not in first
    assert 'id="next"' not in third
    assert users(rita.text("/events?page=99")) == users(third)           # past the end: the last page
    assert users(rita.text("/events?page=abc")) == users(first)
    filtered = rita.text("/events?decision=allow&page=2")
    assert 'href="/events?page=3&amp;decision=allow"' in filtered or \
           'href="/events?decision=allow&amp;page=3"' in filtered


def test_csv_export_has_metadata_and_counts_but_no_prompt_text(client: Callable[[str], Client],
                                                              seeded: dict[str, str]) -> None:
    response = client("rita").get("/events.csv", query_string={"service": "chatgpt"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["event_id"] for r in rows] == [seeded["alice_redact"], seeded["carol_phone"]]
    assert rows[0]["entities"] == "PERSON=1;PHONE_NUMBER=1;TW_NATIONAL_ID=1"
    assert rows[1]["disposition"] == "follow_up"
    for leaked in (NATIONAL_ID, MOBILE, "A12*****89", "王○明", "陳情", "請主管確認"):
        assert leaked not in text


@pytest.mark.parametrize(("user", "cell"), [
    ("=HYPERLINK(\"http://evil.example\",\"x\")", "'=HYPERLINK(\"http://evil.example\",\"x\")"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1", "'\t=1"),
    ("王大明", "王大明"),
])
def test_csv_cells_cannot_become_formulas(client: Callable[[str], Client], store: AuditStore, user: str,
                                          cell: str) -> None:
    seed(store, [PII_PROMPT], pii_findings(), user=user)
    text = client("rita").get("/events.csv").get_data(as_text=True)
    (row,) = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    assert row["user"] == cell


def test_event_page_shows_masked_snippets_findings_and_actions(client: Callable[[str], Client],
                                                               seeded: dict[str, str]) -> None:
    page = client("rita").text(f"/events/{seeded['alice_redact']}")
    assert '<mark data-entity="TW_NATIONAL_ID" title="TW_NATIONAL_ID"><bdi>A12*****89</bdi></mark>' in page
    assert '<mark data-entity="PERSON" title="PERSON"><bdi>王○明</bdi></mark>' in page
    assert '<mark data-entity="PHONE_NUMBER" title="PHONE_NUMBER"><bdi>091*****78</bdi></mark>' in page
    assert "身分證統一編號·遮蔽" in page and "遮蔽後送出" in page
    for value in (NATIONAL_ID, MOBILE, "王小明"):
        assert value not in page
    assert "尚無審查紀錄" in page and 'id="reveal-form"' in page


def test_event_page_lists_reviewer_actions_on_it(client: Callable[[str], Client],
                                                 seeded: dict[str, str]) -> None:
    page = client("rita").text(f"/events/{seeded['carol_phone']}")
    assert 'data-kind="disposition_set"' in page and "請主管確認" in page and "待追蹤" in page
    assert "尚無審查紀錄" not in page
    other = client("rita").text(f"/events/{seeded['alice_redact']}")
    assert 'data-kind="disposition_set"' not in other


def test_unknown_events_are_404(client: Callable[[str], Client], seeded: dict[str, str]) -> None:
    rita = client("rita")
    for path in ("/events/20260101-000000000000", "/events/" + "x" * 300):
        response = rita.get(path)
        assert response.status_code == 404 and "找不到" in response.get_data(as_text=True)


HOSTILE_USER = "<b>bob</b>\u202e"


def _assert_inert(page: str) -> None:
    assert "<script" not in page and "<img" not in page and "</td></tr></table>" not in page
    assert "&lt;/script&gt;" in page and "&lt;img id=pwned" in page and "&lt;/td&gt;&lt;/tr&gt;" in page
    assert "\u202e" not in page                              # shown as a visible token instead
    assert '<span class="ctl" title="不可見字元">U+202E</span>' in page


def test_a_hostile_prompt_and_user_name_render_as_inert_text(client: Callable[[str], Client],
                                                             store: AuditStore) -> None:
    findings = [finding(HOSTILE_PROMPT, NATIONAL_ID, "TW_NATIONAL_ID"),
                finding(HOSTILE_PROMPT, MOBILE, "PHONE_NUMBER")]
    event = seed(store, [HOSTILE_PROMPT], findings,
                 user=HOSTILE_USER, service="chatgpt<i>")
    rita = client("rita")
    listing = rita.text("/events")
    assert "<b>bob</b>" not in listing and "&lt;b&gt;bob&lt;/b&gt;" in listing
    assert '<bdi>&lt;b&gt;bob&lt;/b&gt;<span class="ctl" title="不可見字元">U+202E</span></bdi>' in listing
    assert "chatgpt<i>" not in listing
    detail = rita.text(f"/events/{event.event_id}")
    _assert_inert(detail)
    revealed = rita.post(f"/events/{event.event_id}/evidence", {"reason": "<script>alert(3)</script>"})
    assert revealed.status_code == 200
    page = revealed.get_data(as_text=True)
    _assert_inert(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert NATIONAL_ID in page                                # the original, escaped, on this page only
    assert "alert(3)" in page and "<script>alert(3)" not in page


def test_the_console_names_the_types_a_policy_adds(store: AuditStore, clock: Any) -> None:
    """`guard review --policy` passes the policy's display names: reviewers never read a raw code."""
    from guard.policy import load_policy
    from guard.review.app import create_app

    text = "請查詢該員前科紀錄，陳情人王小明"
    seeded = seed(store, [text], [finding(text, "前科", "CRIMINAL_RECORD", "warn"),
                                  finding(text, "王小明", "PERSON")], decision="warn")
    names = load_policy("sensitive-cases").display_names
    reviewer = Client(create_app(store, clock=clock, entity_names=names))
    assert reviewer.sign_in("rita").status_code == 303
    page = reviewer.text(f"/events/{seeded.event_id}")
    assert "前科紀錄·" in page and "姓名·" in page
