"""A value split over query values, headers or messages never reaches the service, whatever is beside it.

Through the real ``guard proxy`` to a local stand-in service: a national ID whose first piece is lower case
(``f1234`` | ``56784``, ``f`` | ``123456784``) and a phone number in three pieces between a page number, a
``v1`` or a word ending in a digit. Made-up valid values: F123456784, 0912345678.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import GuardProxy, nonce
from tests.e2e.raw import event_with_id, exchange, http_request
from tests.e2e.upstream import UpstreamServer

# (path, headers, entity type): the pieces ride in query values and headers of one GET.
SPLIT = [
    ("/v1/models?x=f1234&y=56784&t={tag}", (), "TW_NATIONAL_ID"),
    ("/v1/models?x=f&y=123456784&t={tag}", (), "TW_NATIONAL_ID"),
    ("/v1/models?t={tag}", (("x-a", "f1234"), ("x-b", "56784")), "TW_NATIONAL_ID"),
    ("/v1/models?a=0912&b=345&c=678&page=2&t={tag}", (), "PHONE_NUMBER"),
    ("/v1/models?n=File1&a=0912&b=345&c=678&t={tag}", (), "PHONE_NUMBER"),
    ("/v1/0912/345/678?t={tag}", (), "PHONE_NUMBER"),
]


@pytest.mark.parametrize(("path", "headers", "entity_type"), SPLIT)
def test_a_split_value_beside_any_neighbour_never_reaches_the_service(
        guard_proxy: GuardProxy, openai_upstream: UpstreamServer, path: str,
        headers: tuple[tuple[str, str], ...], entity_type: str) -> None:
    tag = nonce()
    target = openai_upstream.host_port
    reply = exchange(guard_proxy, target, http_request("GET", path.replace("{tag}", tag), target,
                                                       headers=headers))
    assert reply.status == 403                     # one placeholder cannot stand for two parts: blocked
    assert openai_upstream.received(tag) == []
    event = event_with_id(guard_proxy, reply.headers["x-guard-event-id"])
    assert event["decision"] == "block" and event["entities"] == {entity_type: 1}


def test_a_phone_number_over_three_messages_after_a_word_is_redacted_in_each(
        guard_proxy: GuardProxy, openai_upstream: UpstreamServer) -> None:
    """Messages v1 | 0912 | 345 | 678 | 2: joined end to end the engine read v109123456782, no number."""
    tag = nonce()
    pieces = ["0912", "345", "678"]
    contents = [f"請回電 {tag} v1", *pieces, "2"]
    body = json.dumps({"model": "gpt-4o-mini",
                       "messages": [{"role": "user", "content": c} for c in contents]}).encode()
    headers = (("content-type", "application/json"), ("user-agent", "python-requests/2.31.0"))
    target = openai_upstream.host_port
    reply = exchange(guard_proxy, target, http_request("POST", "/v1/chat/completions", target, body, headers))
    assert reply.status == 200
    received = [json.loads(r.text)["messages"] for r in openai_upstream.received(tag)]
    assert len(received) == 1
    sent = [m["content"] for m in received[0]]
    assert not any(piece in text for piece in pieces for text in sent[1:4]), sent
    assert sent[0] == contents[0] and sent[4] == "2"
    assert "PHONE_NUMBER" in event_with_id(guard_proxy, reply.headers["x-guard-event-id"])["entities"]
