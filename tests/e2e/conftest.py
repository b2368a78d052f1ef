"""Session fixtures: local HTTPS stand-ins for the AI services, the real ``guard proxy``, the clients."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.e2e.gateway import Gateway
from tests.e2e.helpers import REPO, GuardProxy, write_policy
from tests.e2e.ldap_server import LdapServer, slapd_available
from tests.e2e.upstream import UpstreamServer, make_self_signed_cert

DEFAULT_CLIENT_PYTHON = REPO / ".venv-clients" / "bin" / "python"
CHROMIUM = Path("/usr/bin/chromium")


def missing(reason: str) -> NoReturn:
    """Skip when a tool is absent, but fail under tests/run.sh, which installs them all (so CI never
    passes by skipping)."""
    if os.environ.get("GUARD_REQUIRE_ALL"):
        pytest.fail(f"{reason} (GUARD_REQUIRE_ALL is set by tests/run.sh)")
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def client_python() -> str:
    """The interpreter of the clients' own environment (openai, anthropic, playwright; h11 >= 0.16)."""
    configured = os.environ.get("GUARD_CLIENT_PYTHON")
    if configured:
        return configured
    if DEFAULT_CLIENT_PYTHON.exists():
        return str(DEFAULT_CLIENT_PYTHON)
    missing("no clients' environment: set GUARD_CLIENT_PYTHON or create .venv-clients (python3 -m venv "
                ".venv-clients && .venv-clients/bin/pip install -r tests/clients-requirements.txt)")


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        missing("Debian chromium is not installed (/usr/bin/chromium); apt-get install chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
def curl_available() -> None:
    if shutil.which("curl") is None:
        missing("curl is not installed")


@pytest.fixture(scope="session")
def upstream_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed_cert(tmp_path_factory.mktemp("upstream-cert"))


def _server(cert: tuple[Path, Path]) -> Iterator[UpstreamServer]:
    server = UpstreamServer(*cert).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def openai_upstream(upstream_cert: tuple[Path, Path]) -> Iterator[UpstreamServer]:
    yield from _server(upstream_cert)


@pytest.fixture(scope="session")
def anthropic_upstream(upstream_cert: tuple[Path, Path]) -> Iterator[UpstreamServer]:
    yield from _server(upstream_cert)


@pytest.fixture(scope="session")
def gemini_upstream(upstream_cert: tuple[Path, Path]) -> Iterator[UpstreamServer]:
    yield from _server(upstream_cert)


@pytest.fixture(scope="session")
def plain_upstream(upstream_cert: tuple[Path, Path]) -> Iterator[UpstreamServer]:
    """A host that is not an AI service: not in the catalogue, so the proxy must not open it."""
    yield from _server(upstream_cert)


def _guard_proxy(directory: Path, services: dict[str, tuple[str, UpstreamServer]],
                 options: tuple[str, ...] = (),
                 actions: dict[str, str] | None = None) -> Iterator[GuardProxy]:
    policy = write_policy(directory / "policy.yaml", services, actions)
    proxy = GuardProxy(confdir=directory, policy=policy, log_path=directory / "proxy.log", options=options)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="session")
def catalogue(openai_upstream: UpstreamServer, anthropic_upstream: UpstreamServer,
              gemini_upstream: UpstreamServer) -> dict[str, tuple[str, UpstreamServer]]:
    return {"e2e-openai": ("openai", openai_upstream), "e2e-anthropic": ("anthropic", anthropic_upstream),
            "e2e-gemini": ("gemini", gemini_upstream)}


@pytest.fixture(scope="session")
def guard_proxy(tmp_path_factory: pytest.TempPathFactory,
                catalogue: dict[str, tuple[str, UpstreamServer]]) -> Iterator[GuardProxy]:
    """``guard proxy`` with the default policy plus the stand-in services, started once per session."""
    yield from _guard_proxy(tmp_path_factory.mktemp("guard-proxy"), catalogue)


@pytest.fixture(scope="session")
def small_limit_proxy(tmp_path_factory: pytest.TempPathFactory,
                      catalogue: dict[str, tuple[str, UpstreamServer]]) -> Iterator[GuardProxy]:
    """A second proxy whose body limit is 64 KiB, for the oversized-body test."""
    yield from _guard_proxy(tmp_path_factory.mktemp("guard-proxy-64k"), catalogue,
                            ("guard_body_limit=64k",))


# ---------------------------------------------------------------- one extra setting each, per module

@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    """The agency's existing web gateway, which the guard chains to in upstream mode."""
    server = Gateway().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def upstream_mode_proxy(tmp_path_factory: pytest.TempPathFactory, gateway: Gateway,
                        catalogue: dict[str, tuple[str, UpstreamServer]]) -> Iterator[GuardProxy]:
    """``guard proxy --set mode=upstream:GATEWAY``: every connection leaves through the gateway."""
    yield from _guard_proxy(tmp_path_factory.mktemp("guard-proxy-upstream"), catalogue,
                            (f"mode=upstream:{gateway.url}",))


@pytest.fixture(scope="module")
def auth_proxy(tmp_path_factory: pytest.TempPathFactory,
               catalogue: dict[str, tuple[str, UpstreamServer]]) -> Iterator[GuardProxy]:
    """Proxy authentication with mitmproxy's own option: one user, alice."""
    yield from _guard_proxy(tmp_path_factory.mktemp("guard-proxy-auth"), catalogue,
                            ("proxyauth=alice:secret",))


@pytest.fixture(scope="module")
def ldap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    """A throwaway slapd with one user, bob (apt-get install slapd)."""
    if not slapd_available():
        missing("Debian slapd is not installed (apt-get install slapd)")
    server = LdapServer(tmp_path_factory.mktemp("slapd"), {"bob": "wonderland"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ldap_auth_proxy(tmp_path_factory: pytest.TempPathFactory, ldap_server: LdapServer,
                    catalogue: dict[str, tuple[str, UpstreamServer]]) -> Iterator[GuardProxy]:
    """Proxy authentication against the directory: mitmproxy's ``proxyauth=ldap:...``."""
    yield from _guard_proxy(tmp_path_factory.mktemp("guard-proxy-ldap"), catalogue,
                            (f"proxyauth={ldap_server.proxyauth()}",))


@pytest.fixture(scope="module")
def warn_proxy(tmp_path_factory: pytest.TempPathFactory,
               catalogue: dict[str, tuple[str, UpstreamServer]]) -> Iterator[GuardProxy]:
    """A policy where phone numbers are sent only with a stated reason (查詢事由)."""
    yield from _guard_proxy(tmp_path_factory.mktemp("guard-proxy-warn"), catalogue,
                            actions={"PHONE_NUMBER": "warn"})
