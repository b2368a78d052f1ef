"""The official openai and anthropic SDKs, plain and streaming, through the running guard proxy over HTTPS."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.e2e.helpers import (
    GuardProxy,
    assert_block_message,
    assert_never_sent,
    assert_redacted_upstream,
    classified_prompt,
    clean_prompt,
    echoed,
    nonce,
    pii_prompt,
    run_sdk,
)
from tests.e2e.upstream import UpstreamServer

SDKS = [
    pytest.param("openai_client.py", "openai_upstream", id="openai"),
    pytest.param("anthropic_client.py", "anthropic_upstream", id="anthropic"),
]
MODES = [pytest.param(False, id="plain"), pytest.param(True, id="stream")]


def _error_message(body: Any) -> str:
    """The message of an OpenAI (``body`` is the error object) or Anthropic (the whole envelope) error."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    return str(body.get("message", "")) if isinstance(body, dict) else ""


@pytest.mark.parametrize(("script", "upstream"), SDKS)
@pytest.mark.parametrize("stream", MODES)
def test_identifiers_are_redacted_upstream_and_restored_for_the_user(
        request: pytest.FixtureRequest, client_python: str, guard_proxy: GuardProxy,
        script: str, upstream: str, stream: bool) -> None:
    server: UpstreamServer = request.getfixturevalue(upstream)
    tag = nonce()
    prompt = pii_prompt(tag)
    result = run_sdk(client_python, script, guard_proxy, server, prompt, stream)
    assert "error" not in result, result
    upstream_text = assert_redacted_upstream(server, tag)
    assert "<PHONE_NUMBER_1>" in upstream_text
    assert result["text"] == echoed(prompt)  # the reply the user sees has the original values back
    if stream:
        # The stand-in split every placeholder over several deltas; none of them leaks a fragment.
        assert len(result["deltas"]) > 5
        assert not any("<" in delta for delta in result["deltas"])
        if "final" in result:
            assert result["final"] == echoed(prompt)


@pytest.mark.parametrize(("script", "upstream"), SDKS)
@pytest.mark.parametrize("stream", MODES)
def test_classified_prompt_gets_the_native_permission_error_and_never_leaves(
        request: pytest.FixtureRequest, client_python: str, guard_proxy: GuardProxy,
        script: str, upstream: str, stream: bool) -> None:
    server: UpstreamServer = request.getfixturevalue(upstream)
    tag = nonce()
    result = run_sdk(client_python, script, guard_proxy, server, classified_prompt(tag), stream)
    assert result.get("error", {}).get("class") == "PermissionDeniedError", result
    assert result["error"]["status"] == 403
    message = _error_message(result["error"]["body"])
    assert_block_message(message)
    assert "第3點" in message and "機密等級標示" in message
    assert_never_sent(server, tag)


@pytest.mark.parametrize(("script", "upstream"), SDKS)
@pytest.mark.parametrize("stream", MODES)
def test_clean_prompt_reaches_the_upstream_byte_for_byte(
        request: pytest.FixtureRequest, client_python: str, guard_proxy: GuardProxy,
        script: str, upstream: str, stream: bool) -> None:
    server: UpstreamServer = request.getfixturevalue(upstream)
    tag = nonce()
    prompt = clean_prompt(tag)
    result = run_sdk(client_python, script, guard_proxy, server, prompt, stream)
    assert "error" not in result, result
    seen = server.received(tag)
    assert len(seen) == 1
    assert seen[0].body == base64.b64decode(result["sent"])  # exactly the bytes the SDK sent
    assert result["text"] == echoed(prompt)
