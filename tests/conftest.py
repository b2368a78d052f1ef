"""Fixtures shared by every test directory: the engine is heavy, so it is built once per session."""

from __future__ import annotations

import pytest

from guard.engine import Engine
from guard.policy import load_policy


@pytest.fixture(scope="session")
def engine() -> Engine:
    built = Engine(load_policy())
    built.warm_up()
    return built
