"""The guard chained to an agency's existing web gateway (``mode=upstream:``): inspection still happens,
AI traffic leaves through the gateway, and non-AI TLS is tunnelled through it unopened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.gateway import Gateway
from tests.e2e.helpers import (
    GuardProxy,
    assert_block_message,
    assert_never_sent,
    assert_redacted_upstream,
    classified_prompt,
    curl,
    echoed,
    nonce,
    pii_prompt,
)
from tests.e2e.upstream import UpstreamServer

pytestmark = pytest.mark.usefixtures("curl_available")

JSON = {"content-type": "application/json"}


def _chat_body(prompt: str) -> bytes:
    return json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]},
                      ensure_ascii=False).encode()


def test_prompt_is_redacted_before_the_gateway_and_restored_after(
        upstream_mode_proxy: GuardProxy, gateway: Gateway, openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    prompt = pii_prompt(tag)
    url = f"{openai_upstream.base_url}/v1/chat/completions"
    reply = curl(upstream_mode_proxy, url, _chat_body(prompt), JSON)
    assert reply.status == 200
    assert_redacted_upstream(openai_upstream, tag)
    assert reply.json()["choices"][0]["message"]["content"] == echoed(prompt)
    # The way out was the gateway: it was asked for a tunnel to the AI service.
    assert openai_upstream.host_port in gateway.connects


def test_blocked_prompt_never_reaches_the_gateway(upstream_mode_proxy: GuardProxy, gateway: Gateway,
                                                  anthropic_upstream: UpstreamServer) -> None:
    tag = nonce()
    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64,
                       "messages": [{"role": "user", "content": classified_prompt(tag)}]},
                      ensure_ascii=False).encode()
    before = len(gateway.connects)
    reply = curl(upstream_mode_proxy, f"{anthropic_upstream.base_url}/v1/messages", body, JSON)
    assert reply.status == 403
    assert_block_message(reply.json()["error"]["message"])
    assert_never_sent(anthropic_upstream, tag)
    # Connections are opened lazily: a request answered by the guard opens none to the gateway.
    assert anthropic_upstream.host_port not in gateway.connects[before:]


def test_non_ai_host_is_tunnelled_through_the_gateway_unopened(
        upstream_mode_proxy: GuardProxy, gateway: Gateway, plain_upstream: UpstreamServer,
        upstream_cert: tuple[Path, Path]) -> None:
    tag = nonce()
    body = _chat_body(pii_prompt(tag))
    # The client sees the upstream's own certificate: trusting only it works ...
    reply = curl(upstream_mode_proxy, f"{plain_upstream.base_url}/v1/chat/completions", body, JSON,
                 cacert=upstream_cert[0])
    assert reply.status == 200
    (seen,) = plain_upstream.received(tag)
    assert seen.body == body  # not inspected: identifiers and all, byte for byte
    assert plain_upstream.host_port in gateway.connects
    # ... and trusting only the guard's CA does not: the guard never opened this TLS.
    with pytest.raises(AssertionError, match="curl exited 60"):
        curl(upstream_mode_proxy, f"{plain_upstream.base_url}/v1/chat/completions", body, JSON)
