"""``guard pac`` run in a real PAC engine (node + pac-resolver): AI hosts to the guard, the rest elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from guard.pac import parse_fallback, parse_proxy
from guard.policy import load_policy

GUARD = "PROXY guard.agency.example:8080; PROXY guard2.agency.example:8080"
OTHER = "PROXY gateway.agency.example:3128; DIRECT"

# A policy with the catalogue shapes the bundled one lacks: host:port, an IP, IPv6, a wildcard with a port.
EXTRA_SERVICES = """\
extends: default
services:
  - {name: agency-llm, hosts: ["llm.agency.example:9100", "10.0.0.5:9100", "[fd00::5]:9100"],
     api: openai, tier: approved_onprem}
  - {name: agency-models, hosts: ["*.models.agency.example:8443"], api: generic}
"""

# (url, host as the browser passes it or None for the URL's own, goes to the guard?)
CASES = [
    # catalogued AI hosts, any port unless the catalogue names one
    ("https://api.openai.com/", None, True),
    ("https://chatgpt.com/", None, True),
    ("https://chat.openai.com/backend-api/conversation", None, True),
    ("https://foo.openai.azure.com/", None, True),
    ("https://a.b.openai.azure.com/", None, True),
    ("https://openai.azure.com/", None, True),               # *.domain covers the domain, as in the guard
    ("https://api.openai.com:8443/", None, True),
    ("http://api.anthropic.com/v1/messages", None, True),
    ("wss://copilot.microsoft.com/c/api/chat", None, True),
    ("https://api.openai.com/", "API.OpenAI.com", True),     # the host as typed, in capitals
    ("https://api.openai.com./", "api.openai.com.", True),   # a fully qualified name
    # look-alikes and everything else
    ("https://openai.azure.com.evil.example/", None, False),
    ("https://api.openai.com.evil.example/", None, False),
    ("https://evilopenai.azure.com/", None, False),
    ("https://notchatgpt.com/", None, False),
    ("https://azure.com/", None, False),
    ("https://example.gov.tw/", None, False),
    ("https://www.gov.tw/News.aspx?n=1", None, False),
    ("http://203.0.113.7/", None, False),
    ("https://203.0.113.7:8443/", None, False),
    ("http://intranet/", None, False),
    # host:port entries: only that port (PAC sees the port in the URL, or the scheme's default)
    ("https://llm.agency.example:9100/v1/chat/completions", None, True),
    ("https://llm.agency.example/", None, False),
    ("http://llm.agency.example:9101/", None, False),
    ("http://10.0.0.5:9100/v1/models", None, True),
    ("http://10.0.0.5/", None, False),
    ("https://user:pw@10.0.0.5:9100/", None, True),
    ("https://[fd00::5]:9100/", None, True),
    ("https://[fd00::5]/", None, False),
    ("https://x.models.agency.example:8443/", None, True),
    ("https://models.agency.example:8443/", None, True),
    ("https://x.models.agency.example/", None, False),
]


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pac") / "agency.yaml"
    path.write_text(EXTRA_SERVICES, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pac_answers(pac_engine: list[str], policy_file: Path) -> list[str]:
    """Every case's FindProxyForURL answer, from a PAC written by the real ``guard pac`` command."""
    pac = policy_file.with_suffix(".pac")
    subprocess.run([sys.executable, "-m", "guard.cli", "pac", "--policy", str(policy_file),
                    "--proxy", "guard.agency.example:8080", "--proxy", "guard2.agency.example:8080",
                    "--fallback", OTHER, "--output", str(pac)], check=True, timeout=60)
    cases = json.dumps([[url, host] for url, host, _ in CASES])
    done = subprocess.run([*pac_engine, str(pac)], input=cases, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    answers: list[str] = json.loads(done.stdout)
    return answers


@pytest.mark.parametrize(("index", "url", "host", "to_guard"),
                         [(i, url, host, to_guard) for i, (url, host, to_guard) in enumerate(CASES)],
                         ids=[url for url, _, _ in CASES])
def test_pac_routes_only_ai_hosts_to_the_guard(pac_answers: list[str], index: int, url: str,
                                               host: str | None, to_guard: bool) -> None:
    assert pac_answers[index] == (GUARD if to_guard else OTHER)


@pytest.mark.parametrize(("url", "to_guard"), [(url, to_guard) for url, _, to_guard in CASES],
                         ids=[url for url, _, _ in CASES])
def test_pac_agrees_with_the_proxy_catalogue(policy_file: Path, url: str, to_guard: bool) -> None:
    """What the PAC sends to the guard is exactly what the guard then opens and inspects."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "ws": 80, "https": 443, "wss": 443}[parts.scheme]
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # the catalogue spells IPv6 literals with brackets
    assert (load_policy(policy_file).service_for_host(host, port) is not None) == to_guard


@pytest.mark.parametrize(("value", "expected"), [
    ("guard.agency.example:8080", "PROXY guard.agency.example:8080"),
    ("10.1.2.3:3128", "PROXY 10.1.2.3:3128"),
    ("[fd00::1]:8080", "PROXY [fd00::1]:8080"),
])
def test_parse_proxy(value: str, expected: str) -> None:
    assert parse_proxy(value) == expected


@pytest.mark.parametrize("value", ["guard.agency.example", "http://guard:8080", "g:8080; DIRECT", '"x":1'])
def test_parse_proxy_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_proxy(value)


@pytest.mark.parametrize(("value", "expected"), [
    ("DIRECT", "DIRECT"),
    ("PROXY gw:3128", "PROXY gw:3128"),
    ("PROXY gw:3128;DIRECT", "PROXY gw:3128; DIRECT"),
    ("SOCKS5 socks.agency.example:1080; DIRECT", "SOCKS5 socks.agency.example:1080; DIRECT"),
])
def test_parse_fallback(value: str, expected: str) -> None:
    assert parse_fallback(value) == expected


@pytest.mark.parametrize("value", ["", "direct", "PROXY gw", "PROXY gw:3128 DIRECT", 'DIRECT"; alert(1); "'])
def test_parse_fallback_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="DIRECT or PROXY"):
        parse_fallback(value)


def test_pac_command_refuses_a_bad_proxy() -> None:
    done = subprocess.run([sys.executable, "-m", "guard.cli", "pac", "--proxy", "guard"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "HOST:PORT" in done.stderr and not done.stdout
