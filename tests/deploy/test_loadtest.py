"""deploy/loadtest.py at a small size, against real guard nodes: no errors, and several nodes sharing one
PostgreSQL store write one intact hash chain."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from tests.databases import postgres_database
from tests.deploy.conftest import DEPLOY

pytestmark = pytest.mark.postgres


def loadtest(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(DEPLOY / "loadtest.py"), "--start-local", "--json", *args],
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.stdout.strip(), done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == 0, json.dumps(report, ensure_ascii=False)
    return report


def assert_clean(report: dict[str, Any]) -> None:
    """Every answer was right (blocked when classified, else the original prompt echoed back)."""
    assert report["errors"] == {} and report["inspection_failures"] == {}
    assert report["requests"] > 0 and set(report["answers"]) <= {"200", "403"}
    assert report["decisions"].get("block", 0) > 0 and report["decisions"].get("redact", 0) > 0
    assert sum(report["decisions"].values()) == report["requests"]
    assert set(report["by_api"]) == {"openai", "anthropic", "gemini"}


def test_load_through_one_node_has_no_errors() -> None:
    report = loadtest("--users", "5", "--duration", "10", "--think", "0.3", "--workers", "1")
    assert_clean(report)
    # The load test runs without an audit key: a keyless store, which verify reports as such.
    assert report["audit_verify"].startswith(f"audit chain intact: {report['requests']} events, keyless")


def test_two_nodes_on_one_postgresql_store_write_one_intact_chain() -> None:
    with postgres_database() as url:
        report = loadtest("--nodes", "2", "--workers", "1", "--audit-db", url,
                          "--users", "6", "--duration", "10", "--think", "0.3")
        assert_clean(report)
        assert report["audit_verify"].startswith(f"audit chain intact: {report['requests']} events, keyless")
        command = [sys.executable, "-m", "guard.cli", "audit", "list", "--jsonl", "--audit-db", url]
        listed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    nodes = Counter(json.loads(line)["node"] for line in listed.splitlines())
    assert set(nodes) == {"node-1", "node-2"}, nodes  # both nodes wrote, into the one chain
    assert sum(nodes.values()) == report["requests"]
