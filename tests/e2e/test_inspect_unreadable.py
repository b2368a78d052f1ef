"""Nothing the guard cannot read passes silently: mislabelled and unknown bodies, bombs of nesting, trailers.

A JSON body labelled form-encoded follows the service's unreadable rule (block for external services);
a form field *name* is inspected like its value; a 100,000-deep JSON body gets the service's own block
reply and an event (no RecursionError anywhere); a chunked body with trailers gets a proper answer
(HTTP/1 trailer fields are dropped where they are read, so they never leave).
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.e2e.helpers import NATIONAL_ID, GuardProxy, nonce
from tests.e2e.raw import chat_body, event_with_id, exchange, http_request
from tests.e2e.upstream import UpstreamServer

CHAT = "/v1/chat/completions"
FORM = (("content-type", "application/x-www-form-urlencoded"),)
JSON = (("content-type", "application/json"),)


def _send(proxy: GuardProxy, server: UpstreamServer, body: bytes, headers: tuple[tuple[str, str], ...],
          path: str = CHAT) -> dict[str, object]:
    reply = exchange(proxy, server.host_port, http_request("POST", path, server.host_port, body, headers))
    event = event_with_id(proxy, reply.headers["x-guard-event-id"])
    return {"status": reply.status, "event": event, "reply": reply}


def _never_received(server: UpstreamServer, tag: str) -> None:
    for seen in server.received(tag):
        assert NATIONAL_ID not in seen.text and NATIONAL_ID not in seen.path


@pytest.mark.parametrize(("body", "headers", "error"), [
    # JSON labelled as a form: the service may read it as JSON, the guard's form reader cannot
    (chat_body("身分證 {id}，{tag}"), FORM, "unreadable_content"),
    # binary of a type no reader knows
    (b"\x08\x96\x01\x12\x0a{id}\x1a\x04{tag}\xff\xfe", (("content-type", "application/x-protobuf"),),
     "undecodable_body"),
    # 100,000 levels of nesting, and a stream flag the block reply must honour
    (b'{"stream": true, "x": "{tag}", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON,
     "undecodable_body"),
])
def test_unreadable_body_is_blocked_with_an_event(guard_proxy: GuardProxy, openai_upstream: UpstreamServer,
                                                  body: bytes, headers: tuple[tuple[str, str], ...],
                                                  error: str) -> None:
    tag = nonce()
    out = _send(guard_proxy, openai_upstream, body.replace(b"{id}", NATIONAL_ID.encode())
                .replace(b"{tag}", tag.encode()), headers)
    assert out["status"] == 403
    assert openai_upstream.received(tag) == []
    event = out["event"]
    assert isinstance(event, dict) and event["decision"] == "error" and event["error"] == error
    reply = out["reply"]
    assert "【" in reply.json()["error"]["message"]  # type: ignore[attr-defined]  # the native error shape


def test_form_field_name_is_inspected(guard_proxy: GuardProxy, openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    body = f"{quote('身分證 ' + NATIONAL_ID)}=1&prompt={tag}".encode()
    out = _send(guard_proxy, openai_upstream, body, FORM, path="/v1/forms/chat")
    _never_received(openai_upstream, tag)
    event = out["event"]
    assert isinstance(event, dict) and event["entities"].get("TW_NATIONAL_ID") == 1


def _chunked(body: bytes, trailers: tuple[tuple[str, str], ...]) -> bytes:
    chunks = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:20], body[20:]))
    return chunks + b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in trailers) + b"\r\n"


@pytest.mark.parametrize(("prompt", "trailer", "redacted"), [
    ("請用三句話介紹台灣的夜市文化。{tag}", ("x-checksum", "sha256-ok"), False),
    # HTTP/1 trailer fields are dropped where they are read: they never leave, so nothing to redact
    ("請用三句話介紹台灣的夜市文化。{tag}", ("x-case-note", f"身分證 {NATIONAL_ID}"), False),
    (f"身分證字號 {NATIONAL_ID}，{{tag}}", ("x-checksum", "sha256-ok"), True),
])
def test_chunked_body_with_trailers_gets_a_proper_answer(guard_proxy: GuardProxy,
                                                         openai_upstream: UpstreamServer, prompt: str,
                                                         trailer: tuple[str, str], redacted: bool) -> None:
    tag = nonce()
    body = chat_body(prompt.replace("{tag}", tag))
    headers = (*JSON, ("transfer-encoding", "chunked"), ("trailer", trailer[0]))
    request = http_request("POST", CHAT, openai_upstream.host_port, headers=headers)
    reply = exchange(guard_proxy, openai_upstream.host_port, request + _chunked(body, (trailer,)))
    assert reply.status == 200
    seen = openai_upstream.received(tag)
    assert len(seen) == 1
    assert NATIONAL_ID not in seen[0].text and all(NATIONAL_ID not in v for v in seen[0].headers.values())
    assert json.loads(seen[0].text)["messages"][0]["content"] == (
        prompt.replace("{tag}", tag).replace(NATIONAL_ID, "<TW_NATIONAL_ID_1>"))
    event = event_with_id(guard_proxy, reply.headers["x-guard-event-id"])
    assert event["decision"] == ("redact" if redacted else "allow")
