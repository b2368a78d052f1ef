"""The whole request is inspected: method, path, query and header values, GETs included, each with an event.

Prefill links (``chatgpt.com/?q=…``, ``claude.ai/new?q=…``, ``perplexity.ai/search?q=…``), a query on a
POST, a path segment, custom headers, User-Agent and Cookie: the stand-in service never receives the
identifier, not even split across two parameters or two headers; a classified marking in a
percent-encoded query is blocked, and the stored path is masked. Page numbers and retry counts are
not findings.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.e2e.helpers import NATIONAL_ID, GuardProxy, nonce
from tests.e2e.raw import chat_body, event_with_id, exchange, http_request
from tests.e2e.upstream import UpstreamServer

JSON = (("content-type", "application/json"),)


def _never_received(server: UpstreamServer, tag: str) -> None:
    for seen in server.received(tag):
        assert NATIONAL_ID not in seen.path
        assert NATIONAL_ID not in seen.text
        assert all(NATIONAL_ID not in value for value in seen.headers.values())


# (method, path, extra headers, body): where the identifier rides.
CASES = [
    ("GET", "/?q=請查詢身分證 {id} 的資料&t={tag}", (), b""),                 # prefill link, raw
    ("GET", "/new?q=" + quote("請查詢身分證 {id}") + "&t={tag}", (), b""),      # percent-encoded
    ("GET", "/search?q=" + quote("身分證 {id}").replace("%20", "+") + "&t={tag}", (), b""),
    ("GET", "/c/{id}/{tag}", (), b""),                                         # a path segment
    ("POST", "/v1/chat/completions?user={id}&t={tag}", JSON, b"chat"),         # a query on a POST
    ("GET", "/v1/models?t={tag}", (("x-case-note", "身分證 {id}"),), b""),     # a custom header
    ("GET", "/v1/models?t={tag}", (("user-agent", "agency-tool/1.0 ({id})"),), b""),
    ("GET", "/v1/models?t={tag}", (("cookie", "theme=dark; case={id}"),), b""),
    ("GET", "/v1/models?t={tag}", (("x-case-note", quote("身分證 {id}")),), b""),  # percent-encoded header
]


@pytest.mark.parametrize(("method", "path", "headers", "body"), CASES)
def test_identifier_in_url_or_headers_never_reaches_the_service(
        guard_proxy: GuardProxy, openai_upstream: UpstreamServer, method: str, path: str,
        headers: tuple[tuple[str, str], ...], body: bytes) -> None:
    tag = nonce()
    fill = lambda text: text.replace(quote("{id}"), NATIONAL_ID).replace("{id}", NATIONAL_ID)  # noqa: E731
    path = fill(path).replace("{tag}", tag).replace(" ", "%20")
    headers = tuple((k, fill(v)) for k, v in headers)
    payload = chat_body(f"天氣如何？{tag}") if body else b""
    reply = exchange(guard_proxy, openai_upstream.host_port,
                     http_request(method, path, openai_upstream.host_port, payload, headers))
    assert reply.status in (200, 403)
    _never_received(openai_upstream, tag)
    event = event_with_id(guard_proxy, reply.headers["x-guard-event-id"])
    assert event["method"] == method
    assert event["entities"].get("TW_NATIONAL_ID", 0) >= 1
    assert NATIONAL_ID not in json.dumps(event, ensure_ascii=False)   # the stored path is masked too


# A made-up valid identifier (F123456784) in two pieces, each alone a protocol-looking number.
SPLIT = [
    ("/v1/models?a=F12345&b=6784&t={tag}", ()),
    ("/v1/models?t={tag}", (("x-a", "F12345"), ("x-b", "6784"))),
]


@pytest.mark.parametrize(("path", "headers"), SPLIT)
def test_identifier_split_across_parameters_or_headers_never_reaches_the_service(
        guard_proxy: GuardProxy, openai_upstream: UpstreamServer, path: str,
        headers: tuple[tuple[str, str], ...]) -> None:
    tag = nonce()
    target = openai_upstream.host_port
    request = http_request("GET", path.replace("{tag}", tag), target, headers=headers)
    reply = exchange(guard_proxy, target, request)
    assert reply.status == 403                    # one placeholder cannot stand for two parts: blocked
    assert openai_upstream.received(tag) == []
    event = event_with_id(guard_proxy, reply.headers["x-guard-event-id"])
    assert event["decision"] == "block" and event["entities"] == {"TW_NATIONAL_ID": 1}


def test_classified_marking_in_an_encoded_query_is_blocked(guard_proxy: GuardProxy,
                                                           openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    path = "/?q=" + quote(f"密等：機密\n主旨：採購案評選會議紀錄 {tag}")
    target = openai_upstream.host_port
    reply = exchange(guard_proxy, target, http_request("GET", path, target))
    assert reply.status == 403
    assert openai_upstream.received(quote(tag)) == [] and openai_upstream.received(tag) == []
    event = event_with_id(guard_proxy, reply.headers["x-guard-event-id"])
    assert event["decision"] == "block" and event["entities"].get("CLASSIFICATION_MARKER")


def test_clean_get_is_forwarded_unchanged_and_recorded(guard_proxy: GuardProxy,
                                                       openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    path = f"/v1/models?t={tag}&page=2&limit=50&q=" + quote("台灣的夜市文化")
    headers = (("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"), ("x-request-id", "6f1c2b7e-0a47-4c1e"),
               ("x-stainless-retry-count", "0"), ("x-stainless-read-timeout", "600"))
    reply = exchange(guard_proxy, openai_upstream.host_port,
                     http_request("GET", path, openai_upstream.host_port, headers=headers))
    assert reply.status == 200
    seen = openai_upstream.received(tag)
    assert len(seen) == 1 and seen[0].path == path
    assert all(seen[0].headers[name] == value for name, value in headers)
    event = event_with_id(guard_proxy, reply.headers["x-guard-event-id"])
    assert event["method"] == "GET" and event["decision"] == "allow" and event["path"] == "/v1/models"
