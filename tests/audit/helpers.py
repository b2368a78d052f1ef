"""Events shaped as the proxy records them, for the audit store's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from guard.audit.events import EventKind, InspectionEvent, new_event_id
from guard.audit.masking import FoundAt, snippets

NATIONAL_ID = "A123456789"
PROMPT = f"請查身分證 {NATIONAL_ID} 的戶籍資料"
DECISIONS = {EventKind.ALLOWED: "allow", EventKind.REDACTED: "redact", EventKind.BLOCKED: "block",
             EventKind.WARNED: "warn", EventKind.FAILED: "error"}


def record(kind: EventKind = EventKind.REDACTED, user: str = "alice", minutes_ago: float = 0,
           text: str = PROMPT, **extra: Any) -> dict[str, Any]:
    start = text.find(NATIONAL_ID)
    found = ([FoundAt("TW_NATIONAL_ID", 0, start, start + len(NATIONAL_ID), 1.0, "redact")]
             if start >= 0 else [])
    when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    event = InspectionEvent(
        event_id=new_event_id(when), kind=kind, decision=DECISIONS[kind],
        time=when.isoformat(timespec="milliseconds"), user=user, client="10.0.0.7", service="openai",
        host="api.openai.com", path="/v1/chat/completions", method="POST",
        entities={"TW_NATIONAL_ID": 1} if found else {}, policy_name="default", policy_version="1",
        snippets=tuple(snippets([text], found)),
    )
    fields = event.fields()
    fields.update(extra)
    return fields
