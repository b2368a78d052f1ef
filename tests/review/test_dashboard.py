"""The dashboard: per-day, per-service, per-type and per-user figures, and unusual patterns."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from guard.audit.masking import FoundAt
from guard.audit.store import AuditStore
from guard.review.dashboard import unusual_users
from guard.review.queries import LOCAL_TZ, local_midnight
from tests.review.helpers import Client, event_record, finding, seed_many

# last-24-hours count, then the 14 daily counts before it → flagged?
UNUSUAL = [
    ("quiet fortnight, then 5", [5] + [0] * 14, True),             # the floor of 5 is reached
    ("quiet fortnight, then 4", [4] + [0] * 14, False),            # under the floor
    ("steady 6 a day, 6 today", [6] + [6] * 14, True),             # mean + 3·0 = 6
    ("4 and 8 alternately, 8 today", [8] + [4, 8] * 7, False),     # threshold 6 + 3·2 = 12
    ("4 and 8 alternately, 12 today", [12] + [4, 8] * 7, True),
    ("one busy day before, 9 today", [9] + [30] + [0] * 13, False),  # 2.14 + 3·7.73 ≈ 25.3
    ("nothing at all", [0] * 15, False),
]


@pytest.mark.parametrize(("counts", "flagged"), [(c, f) for _, c, f in UNUSUAL],
                         ids=[n for n, _, _ in UNUSUAL])
def test_unusual_users_stand_out_against_their_own_fortnight(counts: list[int], flagged: bool) -> None:
    found = unusual_users({"someone": counts})
    assert bool(found) is flagged
    if found:
        assert found[0].last_day == counts[0] and found[0].threshold >= 5


def _text(entity: str) -> tuple[str, list[FoundAt]]:
    text = {"PHONE_NUMBER": "回電 0912345678", "TW_NATIONAL_ID": "身分證 A123456789",
            "CLASSIFICATION_MARKER": "密等：機密"}[entity]
    value = text.split(" ")[-1] if entity != "CLASSIFICATION_MARKER" else text
    return text, [finding(text, value, entity)]


def test_dashboard_counts_blocks_and_redactions(client: Callable[[str], Client], store: AuditStore) -> None:
    now = datetime.now(UTC)
    today = max(local_midnight(now) + timedelta(seconds=1), now - timedelta(minutes=1))
    records = []

    def add(user: str, when: datetime, decision: str, entity: str, service: str = "chatgpt") -> None:
        text, findings = _text(entity)
        records.append(event_record([text], findings, decision=decision, user=user, service=service,
                                    when=when))

    for _ in range(7):                                            # mallory: nothing before, 7 today
        add("mallory", today, "redact", "TW_NATIONAL_ID")
    for day in range(1, 15):                                      # steady: 2 a day, 2 today
        for _ in range(2):
            add("steady", now - timedelta(days=day, hours=2), "redact", "PHONE_NUMBER", service="claude")
    for _ in range(2):
        add("steady", today, "redact", "PHONE_NUMBER", service="claude")
    add("bob", today, "block", "CLASSIFICATION_MARKER", service="gemini")
    add("old", now - timedelta(days=40), "block", "CLASSIFICATION_MARKER")       # outside the 30 days
    records.append(event_record(["你好"], [], decision="allow", user="mallory", when=today))  # not counted
    seed_many(store, records)

    page = client("arthur").text("/dashboard")
    days = re.findall(r'<g data-day="([^"]+)" data-block="(\d+)" data-redact="(\d+)" data-error="\d+">', page)
    assert len(days) == 30
    assert days[-1] == (today.astimezone(LOCAL_TZ).strftime("%m-%d"), "1", "9")
    assert sum(int(b) for _, b, _ in days) == 1 and sum(int(r) for _, _, r in days) == 7 + 30
    by_service = page[page.index('id="by-service"'):page.index('id="by-entity"')]
    for service, blocked, redacted in (("chatgpt", 0, 7), ("claude", 0, 30), ("gemini", 1, 0)):
        cells = f'<td class="num">{blocked}</td><td class="num">{redacted}</td>'
        assert re.search(rf'data-service="{service}">.*?{cells}', by_service, re.S), service
    by_entity = page[page.index('id="by-entity"'):page.index('id="top-users"')]
    assert re.findall(r'data-entity="(\w+)"', by_entity) == ["PHONE_NUMBER", "TW_NATIONAL_ID",
                                                             "CLASSIFICATION_MARKER"]
    top = page[page.index('id="top-users"'):page.index('id="unusual"')]
    assert re.findall(r"<bdi>(\w+)</bdi>", top) == ["steady", "mallory", "bob"]
    unusual = page[page.index('id="unusual"'):]
    assert re.findall(r'data-user="(\w+)"', unusual) == ["mallory"]
    assert "old" not in page


def test_an_empty_dashboard_renders(client: Callable[[str], Client]) -> None:
    page = client("rita").text("/dashboard")
    assert "目前沒有異常" in page and page.count('data-block="0"') == 30
    assert re.search(r'id="total-all">(<a [^>]*>)?0<', page)


def test_totals_shares_failures_range_and_drill_down(client: Callable[[str], Client],
                                                     store: AuditStore) -> None:
    """Every figure a reviewer sees leads to the events behind it, and those events add up to it."""
    day = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)          # 12:00 in Taiwan, 10 March
    texts = {d: _text("TW_NATIONAL_ID") for d in ("redact", "block")}
    records = [event_record([texts["redact"][0]], texts["redact"][1], decision="redact", user="amy",
                            service="chatgpt", when=day) for _ in range(3)]
    records += [event_record([texts["block"][0]], texts["block"][1], decision="block", user="",
                             service="openai-api", when=day + timedelta(days=1))]
    records += [event_record(["你好"], [], decision="allow", user="amy", when=day) for _ in range(4)]
    records += [event_record(["壞掉的請求"], [], decision="error", user="amy", when=day, error="parse_failed")
                for _ in range(2)]
    records += [event_record(["範圍外"], [], decision="block", user="amy", when=day - timedelta(days=20))]
    seed_many(store, records)
    rita = client("rita")
    page = rita.text("/dashboard?from=2026-03-01&to=2026-03-15")
    assert len(re.findall(r"<g data-day=", page)) == 15
    totals = dict(re.findall(r'data-decision="(\w+)" data-count="(\d+)"', page))
    assert totals == {"allow": "4", "warn": "0", "redact": "3", "block": "1", "error": "2"}
    assert 'data-decision="redact" data-count="3" data-percent="30.0"' in page
    assert re.search(r'id="total-all"><a [^>]*>10</a>', page)
    assert "ChatGPT 網頁版" in page and "OpenAI 程式介面" in page and "未識別" in page
    assert re.search(r'data-day="03-10" data-block="0" data-redact="3" data-error="2"', page)
    # Each count's link lists exactly that many events.
    links = re.findall(r'<a href="(/events\?[^"]+)"[^>]*>(\d+)</a>', page)
    assert len(links) >= 8
    for href, count in links:
        listed = rita.text(href.replace("&amp;", "&"))
        assert re.search(rf'共 <span id="total">{count}</span> 筆', listed), (href, count)
    bars = re.findall(r'<a href="(/events\?[^"]+)" class="drill">', page)
    assert len(bars) == 3   # 10 March: redact, error; 11 March: block; nothing else in range
    for href in bars:
        assert 'id="total">0<' not in rita.text(href.replace("&amp;", "&"))
    bad = rita.text("/dashboard?from=2026-03-15&to=2026-03-01")
    assert "結束日期須在開始日期之後" in bad and len(re.findall(r"<g data-day=", bad)) == 30
