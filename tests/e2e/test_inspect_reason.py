"""The 查詢事由 line a user adds under a ``warn`` policy is taken out of what is forwarded, and kept masked.

The reason line often carries what the policy itself detects (a case's national ID, a phone number):
the stand-in service receives the prompt without the line, and the event keeps the reason with every
detected value masked. A reason in the X-Guard-Reason header is masked the same way and never leaves.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.e2e.helpers import MOBILE, NATIONAL_ID, GuardProxy, nonce
from tests.e2e.raw import chat_body, event_with_id, exchange, http_request
from tests.e2e.upstream import UpstreamServer

CHAT = "/v1/chat/completions"
JSON = (("content-type", "application/json"),)


@pytest.mark.parametrize(("reason_line", "kept"), [
    (f"查詢事由：協查 {NATIONAL_ID} 之陳情案", "協查 A12*****89 之陳情案"),
    (f"查詢事由：回電民眾 {MOBILE} 確認地址", "回電民眾 091*****78 確認地址"),
    ("事由: follow-up of petition 117", "follow-up of petition 117"),
])
def test_reason_line_is_removed_from_what_is_forwarded(warn_proxy: GuardProxy,
                                                       openai_upstream: UpstreamServer,
                                                       reason_line: str, kept: str) -> None:
    tag = nonce()
    prompt = f"請幫我草擬回覆，民眾電話 {MOBILE}。追蹤碼 {tag}\n{reason_line}\n語氣請正式。"
    target = openai_upstream.host_port
    reply = exchange(warn_proxy, target, http_request("POST", CHAT, target, chat_body(prompt), JSON))
    assert reply.status == 200
    (seen,) = openai_upstream.received(tag)
    content = json.loads(seen.text)["messages"][0]["content"]
    assert "事由" not in content and NATIONAL_ID not in content
    assert content.startswith("請幫我草擬回覆") and content.endswith("語氣請正式。")
    event = event_with_id(warn_proxy, reply.headers["x-guard-event-id"])
    assert event["reason"] == kept
    assert NATIONAL_ID not in json.dumps(event, ensure_ascii=False)


def test_reason_header_is_masked_in_the_event_and_never_leaves(warn_proxy: GuardProxy,
                                                               openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    target = openai_upstream.host_port
    headers = (*JSON, ("x-guard-reason", quote(f"回電民眾 {MOBILE}，案號 {tag}")))
    body = chat_body(f"請幫我草擬回覆，民眾電話 {MOBILE}。追蹤碼 {tag}")
    reply = exchange(warn_proxy, target, http_request("POST", CHAT, target, body, headers))
    assert reply.status == 200
    (seen,) = openai_upstream.received(tag)
    assert "x-guard-reason" not in seen.headers and seen.body == body
    event = event_with_id(warn_proxy, reply.headers["x-guard-event-id"])
    assert event["reason"] == f"回電民眾 091*****78，案號 {tag}"
    assert MOBILE not in json.dumps(event, ensure_ascii=False)
