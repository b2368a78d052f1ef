"""Session fixtures: local HTTPS stand-ins for the AI services, the real ``guard proxy``, the clients."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import REPO, GuardProxy, write_policy
from tests.e2e.upstream import UpstreamServer, make_self_signed_cert

DEFAULT_CLIENT_PYTHON = REPO / ".venv-clients" / "bin" / "python"
CHROMIUM = Path("/usr/bin/chromium")


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
    pytest.skip("no clients' environment: set GUARD_CLIENT_PYTHON or create .venv-clients (python3 -m venv "
                ".venv-clients && .venv-clients/bin/pip install -r tests/clients-requirements.txt)")


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium); apt-get install chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
def curl_available() -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")


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
                 options: tuple[str, ...] = ()) -> Iterator[GuardProxy]:
    policy = write_policy(directory / "policy.yaml", services)
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
