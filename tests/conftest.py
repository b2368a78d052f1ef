"""Fixtures shared by every test directory: the engine is heavy, so it is built once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.engine import Engine
from guard.policy import load_policy
from tests.databases import BACKENDS, audit_database


@pytest.fixture(scope="session")
def engine() -> Engine:
    built = Engine(load_policy())
    built.warm_up()
    return built


@pytest.fixture(params=BACKENDS)
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty audit database URL, once on SQLite and once on PostgreSQL (the same tests for both)."""
    with audit_database(request.param, tmp_path) as url:
        yield url
