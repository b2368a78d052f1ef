"""Through the running proxy: text forms a model still reads, and values split across parts or messages.

Every row of the engine's evasion tables (tests/engine/test_normalisation.py) is sent as a real
Gemini ``generateContent`` request through ``guard proxy`` to a local stand-in service. The stand-in
must never receive the value in any part's text (it is redacted, or the request is blocked), and
the guard must record an event that names the entity type.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.helpers import GuardProxy, curl, event_for, nonce
from tests.e2e.raw import event_with_id, exchange, http_request
from tests.e2e.upstream import UpstreamServer
from tests.engine.test_normalisation import EVASIONS, SPLIT

pytestmark = pytest.mark.usefixtures("curl_available")

JSON = {"content-type": "application/json"}


def _send(proxy: GuardProxy, server: UpstreamServer, tag: str, contents: list[dict[str, Any]]) -> int:
    body = json.dumps({"contents": contents}, ensure_ascii=False).encode()
    reply = curl(proxy, f"{server.base_url}/v1beta/models/{tag}:generateContent?key=e2e", body, JSON)
    return reply.status


def _texts_received(server: UpstreamServer, tag: str) -> list[str]:
    """Every part's text the stand-in received for ``tag`` (JSON-decoded: escapes cannot hide a value)."""
    texts = []
    for request in server.received(tag):
        for content in json.loads(request.text)["contents"]:
            texts.extend(part.get("text", "") for part in content["parts"])
    return texts


def _assert_stopped(proxy: GuardProxy, server: UpstreamServer, tag: str, status: int,
                    values: list[str], entity_type: str) -> None:
    received = _texts_received(server, tag)
    if status == 200:
        assert received, "the request was neither forwarded nor blocked"
    for value in values:
        assert not any(value in text for text in received), "the value reached the service"
    event = event_for(proxy, tag)
    assert event["decision"] in ("redact", "block")
    assert entity_type in event["entities"]


@pytest.mark.parametrize(("text", "entity_type", "value"), EVASIONS)
def test_an_evasion_never_reaches_the_service(guard_proxy: GuardProxy, gemini_upstream: UpstreamServer,
                                              text: str, entity_type: str, value: str) -> None:
    tag = nonce()
    status = _send(guard_proxy, gemini_upstream, tag, [{"role": "user", "parts": [{"text": text}]}])
    _assert_stopped(guard_proxy, gemini_upstream, tag, status, [value], entity_type)


@pytest.mark.parametrize(("segments", "entity_type", "pieces"), SPLIT)
def test_a_value_split_across_parts_never_reaches_the_service(
        guard_proxy: GuardProxy, gemini_upstream: UpstreamServer, segments: list[str], entity_type: str,
        pieces: list[str]) -> None:
    tag = nonce()
    parts = [{"text": s} for s in segments]
    status = _send(guard_proxy, gemini_upstream, tag, [{"role": "user", "parts": parts}])
    values = ["".join(pieces), *(p for p in pieces if p)]  # "": a neighbouring part with no piece
    _assert_stopped(guard_proxy, gemini_upstream, tag, status, values, entity_type)


def test_a_value_split_across_two_messages_never_reaches_the_service(
        guard_proxy: GuardProxy, gemini_upstream: UpstreamServer) -> None:
    tag = nonce()
    contents = [  # sent one after the other, as a chat client sends a message typed in two goes
        {"role": "user", "parts": [{"text": "我的身分證字號是 F12345"}]},
        {"role": "user", "parts": [{"text": "6784，請幫我查詢"}]},
    ]
    status = _send(guard_proxy, gemini_upstream, tag, contents)
    received = "".join(_texts_received(gemini_upstream, tag))
    assert status == 200
    assert "F12345" not in received and "6784" not in received
    assert "TW_NATIONAL_ID" in event_for(guard_proxy, tag)["entities"]


@pytest.mark.parametrize("last", ["6784", "6784\n"])
def test_a_value_ending_the_last_message_is_not_glued_to_the_bodys_field_names(
        guard_proxy: GuardProxy, openai_upstream: UpstreamServer, last: str) -> None:
    """A script's request (python-requests: no header or URL part worth reading) has the body's
    other strings (``model``, ``messages``…) as its only other piece; read straight after the
    prompts, F12345 | 6784 | model became F123456784model, which is no identifier."""
    tag = nonce()
    body = json.dumps({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": f"請幫我查詢 {tag}"},
        {"role": "user", "content": "F12345"},
        {"role": "user", "content": last},
    ]}).encode()
    headers = (("content-type", "application/json"), ("user-agent", "python-requests/2.31.0"))
    reply = exchange(guard_proxy, openai_upstream.host_port,
                     http_request("POST", "/v1/chat/completions", openai_upstream.host_port, body, headers))
    received = [json.loads(r.text)["messages"] for r in openai_upstream.received(tag)]
    assert reply.status in (200, 403)
    assert not any("F12345" in m["content"] or "6784" in m["content"] for ms in received for m in ms)
    assert "TW_NATIONAL_ID" in event_with_id(guard_proxy, reply.headers["x-guard-event-id"])["entities"]
