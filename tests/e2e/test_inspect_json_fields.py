"""Every string of a JSON request is inspected, not only the fields a format knows; ambiguous JSON is refused.

Real request shapes (OpenAI Chat Completions with tools and structured output, Anthropic Messages with
tools and metadata, Gemini with function declarations) carry an identifier where the service formats
do not look; the stand-in service must never receive it, and each request leaves an event.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.helpers import NATIONAL_ID, GuardProxy, nonce
from tests.e2e.raw import event_with_id, exchange, http_request
from tests.e2e.upstream import UpstreamServer

JSON = (("content-type", "application/json"),)
GEMINI_PATH = "/v1beta/models/gemini-2.0-flash:generateContent"
NAME = "陳志明"


def _openai(tag: str, **fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"天氣如何？{tag}"}], **fields}


def _anthropic(tag: str, **fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 64,
            "messages": [{"role": "user", "content": f"天氣如何？{tag}"}], **fields}


def _gemini(tag: str, **fields: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": f"天氣如何？{tag}"}]}], **fields}


def _tool(description: str, enum: list[str] | None = None) -> dict[str, Any]:
    who: dict[str, Any] = {"type": "string", **({"enum": enum} if enum else {})}
    return {"type": "function", "function": {"name": "lookup_case", "description": description,
                                             "parameters": {"type": "object", "properties": {"who": who}}}}


# (service, path, body builder): the identifier sits where no format selects text.
HIDDEN = [
    ("openai", "/v1/chat/completions", lambda t: _openai(t, tools=[_tool(f"查詢 {NATIONAL_ID} 的案件")])),
    ("openai", "/v1/chat/completions", lambda t: _openai(t, tools=[_tool("查詢案件", [NATIONAL_ID])])),
    ("openai", "/v1/chat/completions", lambda t: _openai(t, response_format={
        "type": "json_schema", "json_schema": {"name": "r", "schema": {"description": NATIONAL_ID}}})),
    ("openai", "/v1/chat/completions", lambda t: _openai(t, metadata={"case": NATIONAL_ID})),
    ("openai", "/v1/chat/completions", lambda t: _openai(t, user=NATIONAL_ID)),
    ("openai", "/v1/chat/completions", lambda t: {"model": "gpt-4o-mini", "messages": [
        {"role": "user", "name": NATIONAL_ID, "content": f"天氣如何？{t}"}]}),
    ("openai", "/v1/chat/completions", lambda t: {"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": [{"type": "text", "text": f"天氣如何？{t}"},
                                     {"type": "x_new_part", "x_new_part": {"note": NATIONAL_ID}}]}]}),
    ("openai", "/v1/chat/completions", lambda t: _openai(t, **{NATIONAL_ID: True})),       # an object key
    ("openai", "/v1/chat/completions", lambda t: _openai(t, metadata={
        "link": f"https://case.agency.gov.tw/view?id={NATIONAL_ID}&x=1"})),                    # a URL string
    ("anthropic", "/v1/messages", lambda t: _anthropic(t, tools=[
        {"name": "lookup", "description": NATIONAL_ID, "input_schema": {"type": "object"}}])),
    ("anthropic", "/v1/messages", lambda t: _anthropic(t, metadata={"user_id": NATIONAL_ID})),
    ("gemini", GEMINI_PATH, lambda t: _gemini(t, tools=[{"functionDeclarations": [
        {"name": "lookup", "description": f"查 {NATIONAL_ID}"}]}])),
    ("gemini", GEMINI_PATH, lambda t: {"contents": [{"role": "user", "parts": [
        {"text": f"天氣如何？{t}"}, {"text": NATIONAL_ID, "thought": True}]}]}),
]
# The same places holding a person's name.
HIDDEN_NAMES = [
    ("openai", "/v1/chat/completions", lambda t: _openai(t, tools=[_tool("查詢承辦人", [NAME, "林美華"])])),
    ("openai", "/v1/chat/completions", lambda t: _openai(t, metadata={"owner": f"承辦人{NAME}"})),
    ("anthropic", "/v1/messages", lambda t: _anthropic(t, tools=[
        {"name": "lookup", "description": f"查詢{NAME}先生的資料", "input_schema": {"type": "object"}}])),
]
CASES = [(*case, NATIONAL_ID, "TW_NATIONAL_ID") for case in HIDDEN] + \
        [(*case, NAME, "PERSON") for case in HIDDEN_NAMES]


@pytest.fixture
def upstreams(openai_upstream: UpstreamServer, anthropic_upstream: UpstreamServer,
              gemini_upstream: UpstreamServer) -> dict[str, UpstreamServer]:
    return {"openai": openai_upstream, "anthropic": anthropic_upstream, "gemini": gemini_upstream}


def _post(proxy: GuardProxy, server: UpstreamServer, path: str, body: bytes) -> Any:
    return exchange(proxy, server.host_port, http_request("POST", path, server.host_port, body, JSON))


@pytest.mark.parametrize(("service", "path", "build", "value", "entity"), CASES)
def test_value_outside_the_known_fields_never_reaches_the_service(
        guard_proxy: GuardProxy, upstreams: dict[str, UpstreamServer], service: str, path: str,
        build: Any, value: str, entity: str) -> None:
    server, tag = upstreams[service], nonce()
    reply = _post(guard_proxy, server, path, json.dumps(build(tag), ensure_ascii=False).encode())
    for seen in server.received(tag):
        assert value not in seen.text
    event = event_with_id(guard_proxy, reply.headers["x-guard-event-id"])
    assert event["entities"].get(entity, 0) >= 1
    assert value not in json.dumps(event, ensure_ascii=False)


DUPLICATE_MESSAGES = ('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ID {id} {tag}"}],'
                      '"messages":[{"role":"user","content":"{tag}"}]}')


@pytest.mark.parametrize("body", [
    DUPLICATE_MESSAGES,  # Python keeps the last "messages", a service may read the first
    '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"{id}","content":"{tag}"}]}',
    '{"model":"gpt-4o-mini","temperature":NaN,"messages":[{"role":"user","content":"{tag}"}]}',
])
def test_ambiguous_json_gets_a_block_reply_and_an_event(guard_proxy: GuardProxy,
                                                        openai_upstream: UpstreamServer, body: str) -> None:
    tag = nonce()
    raw = body.replace("{tag}", tag).replace("{id}", NATIONAL_ID).encode()
    reply = _post(guard_proxy, openai_upstream, "/v1/chat/completions", raw)
    assert reply.status == 403
    assert "已攔截" in reply.json()["error"]["message"]
    assert openai_upstream.received(tag) == []
    event = event_with_id(guard_proxy, reply.headers["x-guard-event-id"])
    assert event["decision"] == "error" and event["error"] == "ambiguous_request"


def test_clean_tool_call_request_reaches_the_service_byte_for_byte(guard_proxy: GuardProxy,
                                                                   openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    body = json.dumps(_openai(tag, tools=[_tool("查詢天氣預報", ["台北", "高雄"])], tool_choice="auto",
                              metadata={"trace": "6f1c2b7e-0a47-4c1e-9a55-3f0f6b7a2d11"}, user="user-17"),
                      ensure_ascii=False, indent=1).encode()
    reply = _post(guard_proxy, openai_upstream, "/v1/chat/completions", body)
    assert reply.status == 200
    seen = openai_upstream.received(tag)
    assert len(seen) == 1 and seen[0].body == body
    event = event_with_id(guard_proxy, reply.headers["x-guard-event-id"])
    assert event["decision"] == "allow" and event["action_taken"] == "forwarded"
