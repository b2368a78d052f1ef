"""Who may do what in the console: roles, session tokens, CSRF tokens, the client's address, throttling.

The session cookie holds a random token; the store keeps only its SHA-256, so a copy of the database
does not let anyone sign in. Sessions end after ``idle`` without a request and 8 hours after sign-in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select

from guard.audit.schema import login_failures
from guard.audit.store import AuditStore

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


# ---------------------------------------------------------------- client address and TLS

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def parse_networks(values: Iterable[str]) -> Networks:
    """Trusted proxies as addresses or networks (``10.0.0.5``, ``10.0.0.0/24``); a bad one is named."""
    networks = []
    for value in values:
        for item in value.split(","):
            if item.strip():
                try:
                    networks.append(ipaddress.ip_network(item.strip(), strict=False))
                except ValueError:
                    raise ValueError(f"trusted proxy {item.strip()!r} is not an address or network") from None
    return tuple(networks)


def _trusted(address: str, trusted: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(remote: str, forwarded_for: str, trusted: Networks) -> str:
    """The real client: ``X-Forwarded-For`` is read right to left only while each hop is a trusted
    proxy; the first address that is not is the client. From anyone else the header is ignored."""
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()] if forwarded_for else []
    address = remote
    while _trusted(address, trusted) and hops:
        candidate = hops.pop()
        try:
            address = str(ipaddress.ip_address(candidate))
        except ValueError:
            break  # a malformed hop: the last trusted proxy is as far as we can see
    return address


def forwarded_tls(remote: str, forwarded_proto: str, trusted: Networks) -> bool:
    """The browser reached a trusted TLS proxy over HTTPS (its ``X-Forwarded-Proto``)."""
    return _trusted(remote, trusted) and forwarded_proto.split(",")[0].strip().lower() == "https"


# ---------------------------------------------------------------- throttling

@dataclass(frozen=True)
class Limits:
    """Failed sign-ins allowed within ``window``: per account and address, per account, everywhere.

    The per-account and global limits only refuse addresses that have themselves failed within the
    window: someone spraying names cannot lock a reviewer out of her own, clean address.
    """

    per_address: int = 5
    per_account: int = 20
    overall: int = 100
    window: timedelta = timedelta(minutes=15)


def account_key(name: str) -> str:
    """How a name is kept in the failure table: hashed (a password is sometimes typed as a name)."""
    return hashlib.sha256(name.casefold().encode()).hexdigest()


class Throttle:
    """Failed sign-ins kept in the audit store, so every console replica counts the same failures."""

    def __init__(self, store: AuditStore, clock: Callable[[], datetime], limits: Limits = Limits()) -> None:
        self.store = store
        self.clock = clock
        self.limits = limits

    def blocked(self, name: str, address: str) -> bool:
        now = self.clock()
        since = now - self.limits.window
        account = account_key(name)
        recent = select(func.count()).select_from(login_failures).where(login_failures.c.time > since)
        with self.store.engine.connect() as conn:
            pair = conn.execute(recent.where(login_failures.c.account == account,
                                             login_failures.c.address == address)).scalar_one()
            if pair >= self.limits.per_address:
                return True
            if not conn.execute(recent.where(login_failures.c.address == address)).scalar_one():
                return False
            per_account = conn.execute(recent.where(login_failures.c.account == account)).scalar_one()
            overall = conn.execute(recent).scalar_one()
        return per_account >= self.limits.per_account or overall >= self.limits.overall

    def failure(self, name: str, address: str) -> None:
        now = self.clock()
        with self.store.writing() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.time <= now - self.limits.window))
            conn.execute(insert(login_failures).values(account=account_key(name), address=address[:64],
                                                       time=now))

    def success(self, name: str, address: str) -> None:
        with self.store.writing() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.account == account_key(name),
                                                      login_failures.c.address == address[:64]))
