"""Shared pieces of the console's tests: events built the way the proxy builds them, a browser-like client."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from guard.audit.events import new_event_id
from guard.audit.evidence import seal
from guard.audit.masking import FoundAt, snippets
from guard.audit.store import AuditStore, StoredEvent

PASSWORD = "correct horse battery staple"
USERS = {"rita": "reviewer", "arthur": "author", "ada": "admin"}

NATIONAL_ID = "A123456789"
MOBILE = "0912345678"
SERVICE_LINE = "02-2311-3456"   # an agency's public number: the false positive reviewers propose
PII_PROMPT = f"請協助回覆民眾陳情，陳情人王小明，身分證字號 {NATIONAL_ID}，手機 {MOBILE}，追蹤進度。"
CLASSIFIED_PROMPT = "密等：機密\n主旨：採購案評選會議紀錄，請幫我摘要重點。"
SERVICE_PROMPT = f"請把本局服務專線 {SERVICE_LINE} 寫進公告稿的最後一行。"
# Markup, a script, an event handler and a right-to-left override: must all render as inert text.
# The findings sit close together, so the masked snippet holds nearly all of it.
HOSTILE_PROMPT = (f"<script>alert(1)</script>{NATIONAL_ID}<img id=pwned src=x onerror=alert(2)>"
                  f"\u202e{MOBILE}\"'&</td></tr></table>")


def finding(text: str, value: str, entity_type: str, action: str = "redact", segment: int = 0,
            score: float = 1.0) -> FoundAt:
    start = text.index(value)
    return FoundAt(entity_type, segment, start, start + len(value), score, action)


PII_FINDINGS = (("王小明", "PERSON"), (NATIONAL_ID, "TW_NATIONAL_ID"), (MOBILE, "PHONE_NUMBER"))


def pii_findings(text: str = PII_PROMPT) -> list[FoundAt]:
    return [finding(text, value, entity) for value, entity in PII_FINDINGS]


@dataclass(frozen=True)
class Seeded:
    event_id: str
    record: dict[str, Any]


def event_record(texts: Sequence[str], findings: Sequence[FoundAt], *, decision: str = "redact",
                 user: str = "alice", service: str = "chatgpt", when: datetime | None = None,
                 **fields: Any) -> dict[str, Any]:
    """An event record shaped like the proxy's (``InspectionEvent.fields()``)."""
    when = when or datetime.now(UTC)
    kinds = {"allow": "prompt_allowed", "redact": "prompt_redacted", "block": "prompt_blocked",
             "warn": "prompt_warned", "error": "inspection_failed"}
    entities: dict[str, int] = {}
    for f in findings:
        entities[f.entity_type] = entities.get(f.entity_type, 0) + 1
    record = {
        "event_id": new_event_id(when), "time": when.isoformat(timespec="milliseconds"),
        "kind": kinds[decision], "decision": decision, "user": user, "client": "10.1.2.3",
        "service": service, "host": f"{service}.example", "path": "/v1/chat/completions", "method": "POST",
        "entities": entities, "policy_name": "default", "policy_version": "1", "tier": "external",
        "latency_ms": 4.2, "request_bytes": sum(len(t.encode()) for t in texts), "segments": len(texts),
        "action_taken": {"redact": "rewritten", "block": "answered"}.get(decision, "forwarded"),
        "reason": "", "error": "", "snippets": snippets(texts, findings),
    }
    record.update(fields)
    return record


def seed(store: AuditStore, texts: Sequence[str], findings: Sequence[FoundAt], *,
         evidence: bool = True, **fields: Any) -> Seeded:
    """Append one event through the store, with its sealed evidence when the store has a key."""
    record = event_record(texts, findings, **fields)
    sealed = seal(texts, record["event_id"], store.keys) if evidence and store.keys else None
    store.append([StoredEvent(record, sealed, datetime.now(UTC) + timedelta(days=30))])
    return Seeded(record["event_id"], record)


def seed_many(store: AuditStore, records: Sequence[dict[str, Any]]) -> None:
    store.append([StoredEvent(r) for r in records])


# ---------------------------------------------------------------- a browser-like client

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_NONCE = re.compile(r'name="login_nonce" value="([^"]+)"')


class Client:
    """Flask's test client used the way a browser uses the console: forms, cookies, hidden tokens."""

    def __init__(self, app: Flask) -> None:
        self.http: FlaskClient = app.test_client()

    def sign_in(self, name: str, password: str = PASSWORD) -> TestResponse:
        page = self.http.get("/login")
        nonce = _NONCE.search(page.get_data(as_text=True))
        assert nonce, "the sign-in page carries a login token"
        form = {"login_nonce": nonce.group(1), "name": name, "password": password}
        return self.http.post("/login", data=form)

    def csrf(self) -> str:
        page = self.http.get("/", follow_redirects=True)
        token = _CSRF.search(page.get_data(as_text=True))
        assert token, "a signed-in page carries the CSRF token"
        return token.group(1)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, csrf: bool = True) -> TestResponse:
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf()
        return self.http.post(path, data=form)

    def text(self, path: str) -> str:
        response = self.http.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)
