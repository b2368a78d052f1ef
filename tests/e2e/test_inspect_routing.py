"""Routing by the tunnel, not by what the client says: CONNECT target or SNI decides, Host must agree.

``CONNECT`` to an AI host with another SNI is still opened and inspected; a tunnel whose SNI names an
AI host is opened even when the CONNECT target does not; inside a tunnel a Host header or an absolute
URI naming another host, or two Host headers, is refused with a block reply and an event; a known but
unsupported generative-AI host gets a block page.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from tests.e2e.helpers import NATIONAL_ID, GuardProxy, assert_redacted_upstream, nonce, write_policy
from tests.e2e.raw import chat_body, event_with_id, exchange, http_request
from tests.e2e.upstream import UpstreamServer

CHAT = "/v1/chat/completions"
JSON = (("content-type", "application/json"),)


@pytest.fixture(scope="module")
def routing_proxy(tmp_path_factory: pytest.TempPathFactory, openai_upstream: UpstreamServer,
                  plain_upstream: UpstreamServer) -> Iterator[GuardProxy]:
    """The stand-in OpenAI service, plus the plain host catalogued as a known but unsupported AI service."""
    directory = tmp_path_factory.mktemp("guard-proxy-routing")
    policy = write_policy(directory / "policy.yaml", {"e2e-openai": ("openai", openai_upstream),
                                                      "e2e-unsupported": ("unsupported", plain_upstream)})
    proxy = GuardProxy(confdir=directory, policy=policy, log_path=directory / "proxy.log")
    proxy.start()
    yield proxy
    proxy.stop()


def _chat(tag: str) -> bytes:
    return chat_body(f"請協助回覆民眾陳情，身分證字號 {NATIONAL_ID}，追蹤碼 {tag}。")


def test_connect_to_ai_host_with_another_sni_is_inspected(routing_proxy: GuardProxy,
                                                          openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    target = openai_upstream.host_port
    reply = exchange(routing_proxy, target, http_request("POST", CHAT, target, _chat(tag), JSON),
                     sni="www.example.com")
    assert reply.status == 200
    assert_redacted_upstream(openai_upstream, tag, (NATIONAL_ID,))


@pytest.mark.parametrize(("host", "extra", "absolute"), [
    ("www.example.com", (), ""),                                       # Host names another host
    ("{target}", (("Host", "www.example.com"),), ""),                  # two Host headers
    ("{target}", (("Host", "{target}"),), ""),                         # two, even when equal
    ("{target}", (), "https://www.example.com" + CHAT),                # absolute URI elsewhere
])
def test_a_request_naming_another_host_is_refused(routing_proxy: GuardProxy, openai_upstream: UpstreamServer,
                                                  plain_upstream: UpstreamServer, host: str,
                                                  extra: tuple[tuple[str, str], ...], absolute: str) -> None:
    tag = nonce()
    target = openai_upstream.host_port
    headers = (*JSON, *((k, v.replace("{target}", target)) for k, v in extra))
    request = http_request("POST", CHAT, host.replace("{target}", target), _chat(tag), headers,
                           target=absolute or None)
    reply = exchange(routing_proxy, target, request)
    assert openai_upstream.received(tag) == [] and plain_upstream.received(tag) == []
    assert reply.status in (400, 403)
    if reply.status == 403:  # the guard answered (a parser may refuse it even earlier with 400)
        event = event_with_id(routing_proxy, reply.headers["x-guard-event-id"])
        assert event["decision"] == "block" and event["error"] == "misrouted_request"


def test_sni_naming_an_ai_host_opens_the_tunnel(guard_proxy: GuardProxy,
                                                plain_upstream: UpstreamServer) -> None:
    """CONNECT to a host outside the catalogue, SNI api.openai.com: opened, and the Host must agree."""
    tag = nonce()
    target = plain_upstream.host_port
    reply = exchange(guard_proxy, target, http_request("POST", CHAT, target, _chat(tag), JSON),
                     sni="api.openai.com")
    assert reply.status == 403
    assert plain_upstream.received(tag) == []
    event = event_with_id(guard_proxy, reply.headers["x-guard-event-id"])
    assert event["service"] == "openai-api" and event["error"] == "misrouted_request"


def test_non_ai_host_is_passed_through_undecrypted(guard_proxy: GuardProxy,
                                                   plain_upstream: UpstreamServer) -> None:
    """The guard's CA does not sign for a host it does not open: the client sees the host's own cert."""
    tag = nonce()
    target = plain_upstream.host_port
    with pytest.raises(ssl.SSLCertVerificationError):
        exchange(guard_proxy, target, http_request("GET", f"/{tag}", target))


@pytest.mark.parametrize("navigate", [True, False])
def test_unsupported_ai_host_gets_a_block_page(routing_proxy: GuardProxy, plain_upstream: UpstreamServer,
                                               navigate: bool) -> None:
    tag = nonce()
    target = plain_upstream.host_port
    headers = (("accept", "text/html"), ("sec-fetch-mode", "navigate")) if navigate else JSON
    request = http_request("POST", f"/api/chat?t={tag}", target, _chat(tag), headers)
    reply = exchange(routing_proxy, target, request)
    assert reply.status == 403
    assert plain_upstream.received(tag) == []
    text = reply.body.decode()
    assert "尚未經機關核可" in (text if navigate else reply.json()["error"]["message"])
    event = event_with_id(routing_proxy, reply.headers["x-guard-event-id"])
    assert event["service"] == "e2e-unsupported" and event["error"] == "unsupported_service"
