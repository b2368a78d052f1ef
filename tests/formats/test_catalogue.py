"""The bundled catalogue: each service's current hosts reach the format that reads it; others stay closed."""

from __future__ import annotations

import pytest

from guard.formats import FORMATS
from guard.policy import load_policy

POLICY = load_policy(None)


@pytest.mark.parametrize(("host", "api"), [
    # web apps
    ("chatgpt.com", "chatgpt_web"), ("chat.openai.com", "chatgpt_web"), ("claude.ai", "claude_web"),
    ("gemini.google.com", "gemini_web"), ("www.perplexity.ai", "perplexity"),
    ("chat.deepseek.com", "deepseek"),
    ("grok.com", "grok_web"), ("www.meta.ai", "meta_ai"), ("graph.meta.ai", "meta_ai"),
    ("chat.mistral.ai", "le_chat"), ("poe.com", "poe_web"), ("tch123456.tch.poe.com", "poe_web"),
    ("aistudio.google.com", "generic"),
    # Copilot: the consumer app and the SignalR chat hubs
    ("copilot.microsoft.com", "copilot"), ("sydney.bing.com", "copilot"),
    ("edgeservices.bing.com", "copilot"), ("copilot.cloud.microsoft", "copilot"),
    # APIs
    ("api.openai.com", "openai"), ("agency-east.openai.azure.com", "openai"),
    ("agency.services.ai.azure.com", "openai"), ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "gemini"), ("aiplatform.googleapis.com", "gemini"),
    ("asia-east1-aiplatform.googleapis.com", "gemini"), ("api.mistral.ai", "openai"),
    ("api.groq.com", "openai"), ("api.together.xyz", "openai"), ("openrouter.ai", "openai"),
    ("api.deepseek.com", "openai"), ("api.x.ai", "openai"),
])
def test_catalogued_host_reaches_its_format(host: str, api: str) -> None:
    service = POLICY.service_for_host(host, 443)
    assert service is not None and service.api == api


@pytest.mark.parametrize("host", ["substrate.office.com", "x.com", "www.bing.com", "www.google.com",
                                  "mistral.ai"])
def test_hosts_that_carry_other_traffic_are_not_opened(host: str) -> None:
    assert POLICY.service_for_host(host, 443) is None


def test_every_catalogued_api_has_a_format() -> None:
    assert {s.api for s in POLICY.services} <= FORMATS.keys()
