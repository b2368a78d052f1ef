"""Opening evidence, dispositions, and false positives turned into allow-list suggestions."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from ruamel.yaml import YAML
from sqlalchemy import select, update

from guard.audit.schema import dispositions, evidence, sessions
from guard.audit.store import AuditStore
from guard.policy import allow_key, load_policy
from guard.review.app import create_app
from guard.review.schema import allowlist_suggestions
from tests.review.helpers import (
    MOBILE,
    NATIONAL_ID,
    PII_PROMPT,
    SERVICE_LINE,
    SERVICE_PROMPT,
    Client,
    finding,
    pii_findings,
    seed,
)

_PROPOSE = re.compile(r'name="propose" value="([^"]+)"')


def _kinds(store: AuditStore) -> list[str]:
    """What was chained besides the fixture's account set-up."""
    return [e["kind"] for e in store.events() if e["kind"] != "account_changed"]


def test_revealing_needs_a_reason(client: Callable[[str], Client], store: AuditStore) -> None:
    event = seed(store, [PII_PROMPT], pii_findings()).event_id
    response = client("rita").post(f"/events/{event}/evidence", {"reason": "   "})
    assert response.status_code == 400 and "請填寫開啟原文的事由" in response.get_data(as_text=True)
    for hollow in ("x", "\u200b", "\u200b\u200b\u200b\u200b\u200b", "a\u00a0\u2060b", "查　核"):
        again = client("rita").post(f"/events/{event}/evidence", {"reason": hollow})
        assert again.status_code == 400 and "至少 4 個可見字元" in again.get_data(as_text=True), repr(hollow)
    assert NATIONAL_ID not in response.get_data(as_text=True)
    assert _kinds(store) == ["prompt_redacted"]


def test_revealing_shows_the_original_once_and_chains_who_and_why(
        client: Callable[[str], Client], store: AuditStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    event = seed(store, [PII_PROMPT], pii_findings()).event_id
    rita = client("rita")
    response = rita.post(f"/events/{event}/evidence", {"reason": "民眾申訴調查 #12"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    for value in (NATIONAL_ID, MOBILE, "王小明"):
        assert f'<bdi class="value">{value}</bdi>' in page
    assert '<mark data-entity="TW_NATIONAL_ID" title="TW_NATIONAL_ID"><bdi>A123456789</bdi></mark>' in page
    assert "Set-Cookie" not in response.headers
    # Chained: who opened it and why; the chain still verifies.
    opened = [e for e in store.events() if e["kind"] == "evidence_opened"]
    assert [(e["user"], e["subject"], e["reason"]) for e in opened] == [("rita", event, "民眾申訴調查 #12")]
    assert store.verify().intact
    # Kept nowhere else: not in the session row, not in a log line, not on the event's own page.
    with store.engine.connect() as conn:
        assert all(NATIONAL_ID not in str(tuple(row)) for row in conn.execute(select(sessions)))
    assert NATIONAL_ID not in caplog.text
    detail = rita.text(f"/events/{event}")
    assert NATIONAL_ID not in detail
    assert 'data-kind="evidence_opened"' in detail and "民眾申訴調查 #12" in detail


def test_without_the_audit_key_evidence_stays_closed(client: Callable[[str], Client], store: AuditStore,
                                                     audit_url: str) -> None:
    event = seed(store, [PII_PROMPT], pii_findings()).event_id
    keyless = AuditStore.open(audit_url, None)
    try:
        rita = Client(create_app(keyless))
        rita.sign_in("rita")
        assert "主控台未載入稽核金鑰" in rita.text(f"/events/{event}")
        response = rita.post(f"/events/{event}/evidence", {"reason": "例行查核"})
        assert response.status_code == 409
        assert "未載入稽核金鑰" in response.get_data(as_text=True)
        assert NATIONAL_ID not in response.get_data(as_text=True)
    finally:
        keyless.close()
    assert _kinds(store) == ["prompt_redacted"]


def test_purged_evidence_is_explained(client: Callable[[str], Client], store: AuditStore) -> None:
    event = seed(store, [PII_PROMPT], pii_findings()).event_id
    with store.writing() as conn:
        conn.execute(update(evidence).values(expires_at=datetime.now(UTC) - timedelta(days=1)))
    assert store.purge() == 1
    rita = client("rita")
    assert "已超過保存期限而清除" in rita.text(f"/events/{event}")
    response = rita.post(f"/events/{event}/evidence", {"reason": "例行查核"})
    assert response.status_code == 410 and "已超過保存期限而清除" in response.get_data(as_text=True)


def test_dispositions_are_chained_and_the_latest_is_kept(client: Callable[[str], Client],
                                                         store: AuditStore) -> None:
    event = seed(store, [PII_PROMPT], pii_findings()).event_id
    rita, ada = client("rita"), client("ada")
    first = rita.post(f"/events/{event}/disposition", {"status": "follow_up", "note": "待查 <b>x</b>"})
    assert first.status_code == 303 and first.headers["Location"].endswith("done=disposition")
    assert ada.post(f"/events/{event}/disposition", {"status": "confirmed", "note": ""}).status_code == 303
    with store.engine.connect() as conn:
        rows = conn.execute(select(dispositions.c.status, dispositions.c.reviewer)).all()
    assert [tuple(r) for r in rows] == [("confirmed", "ada")]
    chained = [(e["user"], e["status"], e["note"]) for e in store.events() if e["kind"] == "disposition_set"]
    assert chained == [("rita", "follow_up", "待查 <b>x</b>"), ("ada", "confirmed", "")]
    page = rita.text(f"/events/{event}?done=disposition")
    assert "已儲存處置" in page and "待查 &lt;b&gt;x&lt;/b&gt;" in page and 'id="current-disposition"' in page
    assert store.verify().intact
    assert rita.post(f"/events/{event}/disposition", {"status": "maybe"}).status_code == 400


def _reveal_tokens(rita: Client, event: str) -> list[str]:
    page = rita.post(f"/events/{event}/evidence", {"reason": "確認是否為機關代表號"}).get_data(as_text=True)
    return _PROPOSE.findall(page)


@pytest.fixture
def service_line_event(store: AuditStore) -> str:
    return seed(store, [SERVICE_PROMPT], [finding(SERVICE_PROMPT, SERVICE_LINE, "PHONE_NUMBER")]).event_id


def test_a_false_positive_becomes_an_allow_list_suggestion_authors_can_use(
        client: Callable[[str], Client], store: AuditStore, service_line_event: str, tmp_path: Path) -> None:
    event = service_line_event
    rita, arthur = client("rita"), client("arthur")
    (token,) = _reveal_tokens(rita, event)
    saved = rita.post(f"/events/{event}/disposition",
                      {"status": "false_positive", "note": "本局服務專線", "propose": token})
    assert saved.status_code == 303 and saved.headers["Location"].endswith("done=proposed")
    with store.engine.connect() as conn:
        (row,) = conn.execute(select(allowlist_suggestions)).all()
    assert (row.entity_type, row.value, row.event_id, row.proposed_by, row.status) == (
        "PHONE_NUMBER", SERVICE_LINE, event, "rita", "pending")

    # Authors see it among the false positives (masked) and the suggestions (in the clear).
    false_positives = arthur.text("/false-positives")
    assert event in false_positives and "本局服務專線" in false_positives
    assert SERVICE_LINE not in false_positives
    assert SERVICE_LINE in arthur.text("/suggestions")

    # The YAML snippet is a policy's allow_list: a policy extending the default accepts it as is.
    snippet = arthur.get("/suggestions.yaml")
    assert snippet.status_code == 200 and snippet.mimetype == "application/yaml"
    text = snippet.get_data(as_text=True)
    assert YAML(typ="safe").load(text) == {"allow_list": {"PHONE_NUMBER": [SERVICE_LINE]}}
    policy_file = tmp_path / "agency.yaml"
    policy_file.write_text("extends: default\n" + text, encoding="utf-8")
    assert allow_key(SERVICE_LINE) in load_policy(str(policy_file)).allow_list["PHONE_NUMBER"]

    # Accepted stays in the snippet; rejected leaves it.
    assert arthur.post(f"/suggestions/{row.id}", {"status": "accepted"}).status_code == 303
    assert SERVICE_LINE in arthur.get("/suggestions.yaml?status=accepted").get_data(as_text=True)
    assert arthur.post(f"/suggestions/{row.id}", {"status": "rejected"}).status_code == 303
    assert SERVICE_LINE not in arthur.get("/suggestions.yaml").get_data(as_text=True)
    assert arthur.post("/suggestions/99999", {"status": "accepted"}).status_code == 404


def test_proposals_need_a_false_positive_and_a_value_this_session_was_shown(
        client: Callable[[str], Client], store: AuditStore, service_line_event: str, app: Flask) -> None:
    event = service_line_event
    other = seed(store, [PII_PROMPT], pii_findings()).event_id
    rita = client("rita")
    (token,) = _reveal_tokens(rita, event)
    payload, _, mac = token.partition(".")
    attempts = {
        "confirmed, not a false positive": ({"status": "confirmed", "propose": token}, event, 400),
        "value swapped": ({"status": "false_positive", "propose": "WyJQSE9ORV9OVU1CRVIiLCAiMSJd." + mac},
                          event, 400),
        "signature altered": ({"status": "false_positive", "propose": payload + "." + "0" * 64}, event, 400),
        "another event": ({"status": "false_positive", "propose": token}, other, 400),
    }
    for name, (form, target, status) in attempts.items():
        assert rita.post(f"/events/{target}/disposition", form).status_code == status, name
    second = client("rita")                   # the same reviewer, another session
    assert second.post(f"/events/{event}/disposition",
                       {"status": "false_positive", "propose": token}).status_code == 400
    with store.engine.connect() as conn:
        assert conn.execute(select(allowlist_suggestions)).all() == []
        assert conn.execute(select(dispositions)).all() == []


def test_the_same_value_is_suggested_once(client: Callable[[str], Client], store: AuditStore) -> None:
    events = [seed(store, [SERVICE_PROMPT], [finding(SERVICE_PROMPT, SERVICE_LINE, "PHONE_NUMBER")]).event_id
              for _ in range(2)]
    rita = client("rita")
    for event in events:
        (token,) = _reveal_tokens(rita, event)
        assert rita.post(f"/events/{event}/disposition",
                         {"status": "false_positive", "propose": token}).status_code == 303
    with store.engine.connect() as conn:
        assert len(conn.execute(select(allowlist_suggestions)).all()) == 1
