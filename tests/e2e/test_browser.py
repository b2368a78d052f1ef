"""Headless Chromium (Debian chromium via Playwright) uses a local chat page through the guard proxy."""

from __future__ import annotations

from pathlib import Path
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
    run_client,
    spki_hash,
)
from tests.e2e.upstream import UpstreamServer

pytestmark = pytest.mark.browser

TAGS = {"pii": nonce(), "classified": nonce(), "clean": nonce()}
PROMPTS = {"pii": pii_prompt(TAGS["pii"]), "classified": classified_prompt(TAGS["classified"]),
           "clean": clean_prompt(TAGS["clean"])}


@pytest.fixture(scope="module")
def page_results(client_python: str, chromium: Path, guard_proxy: GuardProxy,
                 openai_upstream: UpstreamServer) -> dict[str, dict[str, Any]]:
    """One browser session: load the chat page through the proxy, send each prompt, read the page."""
    args = ["--proxy", guard_proxy.url, "--spki", spki_hash(guard_proxy.ca), "--chromium", str(chromium),
            "--url", f"{openai_upstream.base_url}/chat"]
    for prompt in PROMPTS.values():
        args += ["--prompt", prompt]
    output = run_client(client_python, "browser_client.py", *args, timeout=90)
    return dict(zip(PROMPTS, output["results"], strict=True))


def test_page_loads_only_through_the_proxy_ca(page_results: dict[str, dict[str, Any]],
                                              openai_upstream: UpstreamServer) -> None:
    # The browser trusts the proxy CA's key and nothing else: the page loaded, so the proxy opened the TLS.
    assert any(r.method == "GET" and r.path == "/chat" for r in openai_upstream.requests)
    assert all(result["error"] is None for result in page_results.values()), page_results


def test_page_shows_the_restored_reply_while_the_service_saw_placeholders(
        page_results: dict[str, dict[str, Any]], openai_upstream: UpstreamServer) -> None:
    result = page_results["pii"]
    assert result["status"] == "200"
    assert result["text"] == echoed(PROMPTS["pii"])
    assert_redacted_upstream(openai_upstream, TAGS["pii"])


def test_page_shows_the_chinese_block_message_for_a_classified_prompt(
        page_results: dict[str, dict[str, Any]], openai_upstream: UpstreamServer) -> None:
    result = page_results["classified"]
    assert result["status"] == "403"
    assert_block_message(result["text"])
    assert "第3點" in result["text"]
    assert_never_sent(openai_upstream, TAGS["classified"])


def test_page_streams_a_clean_prompt_unchanged(page_results: dict[str, dict[str, Any]],
                                               openai_upstream: UpstreamServer) -> None:
    assert page_results["clean"]["text"] == echoed(PROMPTS["clean"])
    (seen,) = openai_upstream.received(TAGS["clean"])
    assert PROMPTS["clean"] in seen.text
