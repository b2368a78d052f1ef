"""Who may do what in the console: roles, session tokens, CSRF tokens and sign-in throttling.

The session cookie holds a random token; the store keeps only its SHA-256, so a copy of the database
does not let anyone sign in. Sessions end after ``idle`` without a request and 8 hours after sign-in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

ABSOLUTE_LIFETIME = timedelta(hours=8)

# What each role may open. Reviewers investigate events; authors tune the policy from false positives.
PERMISSIONS: dict[str, frozenset[str]] = {
    "reviewer": frozenset({"events", "evidence", "dispositions", "dashboard", "export"}),
    "author": frozenset({"dashboard", "false_positives", "suggestions"}),
}
PERMISSIONS["admin"] = frozenset().union(*PERMISSIONS.values(), {"users"})


@dataclass(frozen=True)
class Principal:
    """The signed-in user of one request."""

    name: str
    role: str
    csrf_token: str
    token_hash: str

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(given: str, expected: str) -> bool:
    """Constant-time comparison; an empty expected value never matches."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def session_expiry(created_at: datetime, now: datetime, idle: timedelta) -> datetime:
    return min(now + idle, created_at + ABSOLUTE_LIFETIME)


# ---------------------------------------------------------------- signed allow-list proposals

def sign_proposal(key: bytes, session: str, event_id: str, entity_type: str, value: str) -> str:
    """A form value carrying a revealed finding, bound to the session and the event.

    The console keeps no revealed text between requests: the reveal page hands each value to the
    browser inside a token only the server's key could have produced, so a proposal can only name a
    value this reviewer was actually shown for this event.
    """
    payload = base64.urlsafe_b64encode(json.dumps([entity_type, value], ensure_ascii=False).encode()).decode()
    return payload + "." + _mac(key, session, event_id, payload)


def open_proposal(key: bytes, session: str, event_id: str, token: str) -> tuple[str, str] | None:
    payload, _, mac = token.partition(".")
    if not same(mac, _mac(key, session, event_id, payload)):
        return None
    try:
        entity_type, value = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, binascii.Error, TypeError):
        return None
    return (entity_type, value) if isinstance(entity_type, str) and isinstance(value, str) else None


def _mac(key: bytes, session: str, event_id: str, payload: str) -> str:
    message = f"{session}\x00{event_id}\x00{payload}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- throttling

class Throttle:
    """Failed sign-ins per (name, address) in memory: after ``limit`` failures within ``window``,
    that pair is refused until the oldest failure leaves the window."""

    def __init__(self, clock: Callable[[], datetime], limit: int = 5,
                 window: timedelta = timedelta(minutes=15), max_keys: int = 10_000) -> None:
        self._clock = clock
        self.limit = limit
        self.window = window
        self._max_keys = max_keys
        self._failures: dict[tuple[str, str], deque[datetime]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        failures = self._failures.get(key, deque())
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        return failures

    def blocked(self, name: str, address: str) -> bool:
        key = (name.casefold(), address)
        with self._lock:
            return len(self._recent(key, self._clock())) >= self.limit

    def failure(self, name: str, address: str) -> None:
        key, now = (name.casefold(), address), self._clock()
        with self._lock:
            if len(self._failures) >= self._max_keys:  # memory stays bounded under a spray of names
                for stale in [k for k, v in self._failures.items() if not self._recent(k, now)]:
                    del self._failures[stale]
            failures = self._recent(key, now)
            failures.append(now)
            self._failures[key] = failures

    def success(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop((name.casefold(), address), None)
