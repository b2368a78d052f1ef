"""Fixtures of the console's tests: a real store (SQLite and PostgreSQL), its accounts, the app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from guard.audit.accounts import add_user
from guard.audit.keys import AuditKeys, new_key, parse_keys
from guard.audit.store import AuditStore
from guard.review.app import create_app
from tests.e2e import conftest as e2e
from tests.review.helpers import PASSWORD, USERS, Client

# The clients' interpreter (Playwright) and Debian's chromium, as the end-to-end tests find them.
client_python = e2e.client_python
chromium = e2e.chromium


@pytest.fixture
def key_line() -> str:
    """An audit key as a key file holds it."""
    return new_key()


@pytest.fixture
def keys(key_line: str) -> AuditKeys:
    return parse_keys(key_line, "test")


@pytest.fixture
def store(audit_url: str, keys: AuditKeys) -> Iterator[AuditStore]:
    opened = AuditStore.open(audit_url, keys)
    for name, role in USERS.items():
        add_user(opened, name, role, PASSWORD)
    yield opened
    opened.close()


class Clock:
    """The real time plus an offset the test moves forward (session expiry, throttling)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(store: AuditStore, clock: Clock) -> Flask:
    return create_app(store, session_minutes=30, clock=clock)


@pytest.fixture
def client(app: Flask) -> Callable[[str], Client]:
    """A new client signed in as one of USERS."""

    def signed_in(name: str) -> Client:
        c = Client(app)
        assert c.sign_in(name).status_code == 303
        return c

    return signed_in
