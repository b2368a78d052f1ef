"""Console accounts: local users with a role and a scrypt password hash (stdlib, memory-hard).

Every change to an account is chained (``account_changed``: role, disabled, a keyed fingerprint of
the password hash) in the same transaction as the row, so ``guard audit verify`` notices an account
added, promoted, re-enabled or given a new password by writing to the database directly.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, insert, select, update

from guard.audit import chain
from guard.audit.integrity import ACCOUNT_CHANGED
from guard.audit.schema import events, sessions, users
from guard.audit.store import AuditStore, ChainWriter

log = logging.getLogger("guard.review")
ROLES = ("reviewer", "author", "admin")
_N, _R, _P = 2**15, 8, 1  # ~32 MiB and tens of milliseconds per check: slow for a guesser, fine at sign-in
MIN_PASSWORD = 12


class AccountError(ValueError):
    pass


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    created_at: datetime
    disabled: bool


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


@functools.cache
def _stand_in_hash() -> str:
    """A hash checked for unknown names and disabled accounts: one scrypt, like a real check."""
    return hash_password(secrets.token_urlsafe(16))


def warm_up_sign_in() -> None:
    """Compute the stand-in hash now, so the first unknown name is not slower than the rest."""
    _stand_in_hash()


def _valid(name: str, role: str, password: str | None) -> str:
    name = name.strip()
    if not name or len(name) > 200 or any(c.isspace() for c in name):
        raise AccountError("a user name is 1 to 200 characters without spaces")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    return name


def _chain(chainer: ChainWriter, actor: str, name: str, change: str, role: str, disabled: bool,
           password_hash: str, client: str = "") -> None:
    chainer.review(ACCOUNT_CHANGED, actor, name, client, change=change, role=role, disabled=disabled,
                   password=chain.digest(password_hash, chainer.digest_key))


def add_user(store: AuditStore, name: str, role: str, password: str, replace: bool = False,
             actor: str = "guard users") -> None:
    name = _valid(name, role, password)
    hashed = hash_password(password)
    with store.transaction() as chainer:
        conn = chainer.conn
        exists = conn.execute(select(users.c.name).where(users.c.name == name)).first() is not None
        if exists and not replace:
            raise AccountError(f"user {name} already exists (use --replace to set a new password or role)")
        if exists:
            conn.execute(update(users).where(users.c.name == name).values(
                role=role, password_hash=hashed, disabled=False))
        else:
            conn.execute(insert(users).values(name=name, role=role, password_hash=hashed,
                                              created_at=datetime.now(UTC), disabled=False))
        _chain(chainer, actor, name, "replaced" if exists else "added", role, False, hashed)


def reset_password(store: AuditStore, name: str, password: str, actor: str = "guard users") -> None:
    """A new password; the user's sessions end."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    hashed = hash_password(password)
    with store.transaction() as chainer:
        row = chainer.conn.execute(select(users).where(users.c.name == name)).one_or_none()
        if row is None:
            raise AccountError(f"no user {name}")
        role = _chained_role(chainer.conn, name, row.role)
        chainer.conn.execute(update(users).where(users.c.name == name)
                             .values(password_hash=hashed, role=role))
        chainer.conn.execute(delete(sessions).where(sessions.c.user_name == name))
        _chain(chainer, actor, name, "password_reset", role, bool(row.disabled), hashed)


def set_disabled(store: AuditStore, name: str, disabled: bool, actor: str = "guard users",
                 client: str = "") -> bool:
    """Disable (ending the user's sessions at once) or enable an account; False if there is none."""
    with store.transaction() as chainer:
        row = chainer.conn.execute(select(users).where(users.c.name == name)).one_or_none()
        if row is None:
            return False
        role = _chained_role(chainer.conn, name, row.role)
        chainer.conn.execute(update(users).where(users.c.name == name).values(disabled=disabled, role=role))
        if disabled:
            chainer.conn.execute(delete(sessions).where(sessions.c.user_name == name))
        _chain(chainer, actor, name, "disabled" if disabled else "enabled", role, disabled,
               row.password_hash, client)
    return True


def list_users(store: AuditStore) -> list[Account]:
    with store.engine.connect() as conn:
        return [Account(row.name, row.role, row.created_at, bool(row.disabled))
                for row in conn.execute(select(users).order_by(users.c.name))]


def chained_account(conn: Connection, name: str) -> tuple[str, bool, str] | None:
    """The newest chained state of an account (role, disabled, password fingerprint), or None."""
    needle = '"subject":' + json.dumps(name, ensure_ascii=False)
    query = (select(events.c.record)
             .where(events.c.decision == "review", events.c.kind == ACCOUNT_CHANGED,
                    events.c.record.contains(needle, autoescape=True))
             .order_by(events.c.seq.desc()))
    for record_json in conn.scalars(query):
        record = json.loads(record_json)
        if record.get("subject") == name:
            return (str(record.get("role", "")), bool(record.get("disabled")),
                    str(record.get("password", "")))
    return None


def _chained_role(conn: Connection, name: str, row_role: str) -> str:
    """The role to keep when an administrator resets or (en|dis)ables an account: the chained one,
    so a role written into the database directly is undone rather than laundered into the chain."""
    chained = chained_account(conn, name)
    return chained[0] if chained else row_role


def authenticate(store: AuditStore, name: str, password: str) -> str | None:
    """The user's role when the password is right, the account enabled and its row what the chain
    last recorded for it; else None.

    Exactly one scrypt whatever the outcome: unknown names and disabled accounts take as long as a
    wrong password, so timing does not tell which names exist. An account row changed in the
    database (a new password hash, a role, re-enabled) no longer matches its chained record and
    does not sign in.
    """
    with store.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.name == name)).one_or_none()
    if row is None or row.disabled:
        check_password(password, _stand_in_hash())
        return None
    if not check_password(password, row.password_hash):
        return None
    key = store.keys.current.digest_key if store.keys else None
    with store.engine.connect() as conn:
        chained = chained_account(conn, name)
    if chained != (row.role, False, chain.digest(row.password_hash, key)):
        log.error("account %s does not match its chained record (changed outside guard, or added "
                  "before accounts were chained): sign-in refused; `guard users reset %s` re-chains it",
                  name, name)
        return None
    return str(row.role)
