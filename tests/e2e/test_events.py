"""Every inspected request leaves one structured event in the proxy's log, and no raw value is ever logged."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.e2e.helpers import RAW_VALUES, GuardProxy, classified_prompt, curl, event_for, nonce, pii_prompt
from tests.e2e.upstream import UpstreamServer

pytestmark = pytest.mark.usefixtures("curl_available")


def _post(proxy: GuardProxy, server: UpstreamServer, tag: str, body: bytes) -> Any:
    reply = curl(proxy, f"{server.base_url}/v1beta/models/{tag}:generateContent", body,
                 {"content-type": "application/json"})
    return reply


def _body(prompt: str) -> bytes:
    return json.dumps({"contents": [{"parts": [{"text": prompt}]}]}, ensure_ascii=False).encode()


def _event_reference(message: str) -> str:
    match = re.search(r"事件編號：(\S+?)（", message)
    assert match, message
    return match.group(1)


def test_redaction_event(guard_proxy: GuardProxy, gemini_upstream: UpstreamServer) -> None:
    tag = nonce()
    assert _post(guard_proxy, gemini_upstream, tag, _body(pii_prompt(tag))).status == 200
    event = event_for(guard_proxy, tag)
    assert event["decision"] == "redact" and event["event"] == "prompt_redacted"
    assert event["entities"] == {"TW_NATIONAL_ID": 1, "PHONE_NUMBER": 1}
    assert event["service"] == "e2e-gemini" and event["tier"] == "external"
    assert event["policy_name"] == "policy" and event["policy_version"]  # a child is named after its file
    assert event["client"] == "127.0.0.1" and event["latency_ms"] > 0


def test_block_event_matches_the_reference_the_user_was_given(guard_proxy: GuardProxy,
                                                              gemini_upstream: UpstreamServer) -> None:
    tag = nonce()
    reply = _post(guard_proxy, gemini_upstream, tag, _body(classified_prompt(tag)))
    assert reply.status == 403
    event = event_for(guard_proxy, tag)
    assert event["decision"] == "block" and event["entities"] == {"CLASSIFICATION_MARKER": 1}
    assert _event_reference(reply.json()["error"]["message"]) == event["event_id"]


def test_fail_closed_event(guard_proxy: GuardProxy, gemini_upstream: UpstreamServer) -> None:
    tag = nonce()
    reply = _post(guard_proxy, gemini_upstream, tag, b'{"contents": [{"parts": [{"text": "')
    assert reply.status == 403
    event = event_for(guard_proxy, tag)
    assert event["decision"] == "error" and event["error"] == "undecodable_body"
    assert event["action_taken"] == "answered"
    assert _event_reference(reply.json()["error"]["message"]) == event["event_id"]


def test_no_raw_value_in_the_proxy_log(guard_proxy: GuardProxy, gemini_upstream: UpstreamServer) -> None:
    tag = nonce()
    assert _post(guard_proxy, gemini_upstream, tag, _body(pii_prompt(tag))).status == 200
    event_for(guard_proxy, tag)
    log = guard_proxy.log()
    for value in RAW_VALUES:
        assert value not in log
