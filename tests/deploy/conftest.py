"""Fixtures for the deployment tests: the tools that check the files (installed by tests/run.sh)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import missing
from tests.e2e.helpers import REPO

DEPLOY = REPO / "deploy"
DEPLOY_TOOLS = REPO / ".venv-deploy" / "bin"  # hadolint, kubernetes-validate, check-jsonschema
PAC_HARNESS = Path(__file__).parent / "pac"


def tool(name: str, hint: str) -> str:
    """The path of a checking tool: .venv-deploy first, then PATH; missing() when absent."""
    local = DEPLOY_TOOLS / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed ({hint}; tests/run.sh installs it)")
    return found


@pytest.fixture(scope="session")
def pac_engine() -> list[str]:
    """The command that runs a PAC file in node with pac-resolver: append the PAC path."""
    node = tool("node", "Debian/NodeSource nodejs")
    if not (PAC_HARNESS / "node_modules" / "pac-resolver").exists():
        missing("pac-resolver is not installed: npm ci --prefix tests/deploy/pac")
    return [node, str(PAC_HARNESS / "find_proxy.mjs")]
