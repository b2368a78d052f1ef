"""Console accounts: local users with a role and a scrypt password hash (stdlib, memory-hard)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy import insert, select, update

from guard.audit.schema import users
from guard.audit.store import AuditStore

ROLES = ("reviewer", "author", "admin")
_N, _R, _P = 2**15, 8, 1  # ~32 MiB and tens of milliseconds per check: slow for a guesser, fine at sign-in
_MIN_PASSWORD = 12


class AccountError(ValueError):
    pass


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=64 * 1024**2, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), maxmem=64 * 1024**2, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def add_user(store: AuditStore, name: str, role: str, password: str, replace: bool = False) -> None:
    name = name.strip()
    if not name or len(name) > 200 or any(c.isspace() for c in name):
        raise AccountError("a user name is 1 to 200 characters without spaces")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < _MIN_PASSWORD:
        raise AccountError(f"a password needs at least {_MIN_PASSWORD} characters")
    hashed = hash_password(password)
    with store.writing() as conn:
        exists = conn.execute(select(users.c.name).where(users.c.name == name)).first() is not None
        if exists and not replace:
            raise AccountError(f"user {name} already exists (use --replace to set a new password or role)")
        if exists:
            conn.execute(update(users).where(users.c.name == name).values(
                role=role, password_hash=hashed, disabled=False))
        else:
            conn.execute(insert(users).values(name=name, role=role, password_hash=hashed,
                                              created_at=datetime.now(UTC), disabled=False))


def authenticate(store: AuditStore, name: str, password: str) -> str | None:
    """The user's role when the password is right and the account enabled; else None."""
    with store.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.name == name)).one_or_none()
    if row is None:
        check_password(password, hash_password("timing-equaliser"))  # same work for unknown names
        return None
    if row.disabled or not check_password(password, row.password_hash):
        return None
    return str(row.role)
