"""The console's security findings of issue 15, each with the attack that found it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from urllib.parse import unquote

import pytest
from flask import Flask
from sqlalchemy import select

from guard.audit import accounts
from guard.audit.accounts import add_user
from guard.audit.keys import AuditKeys
from guard.audit.schema import login_failures
from guard.audit.store import AuditStore, ChainModeError
from guard.review import auth
from guard.review.app import HSTS, create_app
from tests.review.conftest import Clock
from tests.review.helpers import PASSWORD, PII_PROMPT, Client, pii_findings, seed

PROXY = "10.20.0.2"


def _from(app: Flask, remote: str, forwarded_for: str = "", proto: str = "") -> Client:
    client = Client(app)
    client.http.environ_base["REMOTE_ADDR"] = remote
    if forwarded_for:
        client.http.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    if proto:
        client.http.environ_base["HTTP_X_FORWARDED_PROTO"] = proto
    return client


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the real scrypt computations (the sign-in's cost), still computing each one."""
    calls: list[int] = []
    real = hashlib.scrypt

    def counting(*args: object, **kwargs: object) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(accounts.hashlib, "scrypt", counting)
    yield calls


@pytest.mark.parametrize(("name", "password", "disable"), [
    ("rita", PASSWORD, False),                # the right password
    ("rita", "wrong password here", False),   # a known name, a wrong password
    ("nobody-here", PASSWORD, False),         # an unknown name
    ("rita", PASSWORD, True),                 # a disabled account
])
def test_every_sign_in_costs_exactly_one_scrypt(store: AuditStore, app: Flask, scrypt_calls: list[int],
                                                name: str, password: str, disable: bool) -> None:
    if disable:
        accounts.set_disabled(store, "rita", True)
    scrypt_calls.clear()
    accounts.authenticate(store, name, password)
    assert len(scrypt_calls) == 1


@pytest.mark.parametrize("target", ["/%09/evil.example", "/%0a/evil.example", "/%5Cevil.example",
                                    "%2F%2Fevil.example", "/%E3%80%80/evil.example"])
def test_signing_in_never_redirects_off_site(app: Flask, target: str) -> None:
    """The issue's ``/login?next=/%09/evil.example`` gave ``Location: //evil.example``."""
    client = Client(app)
    page = client.http.get(f"/login?next={target}").get_data(as_text=True)
    assert 'name="next" value=""' in page
    nonce = page.split('name="login_nonce" value="')[1].split('"')[0]
    response = client.http.post("/login", data={"login_nonce": nonce, "name": "rita", "password": PASSWORD,
                                                "next": unquote(target)})
    assert response.status_code == 303 and response.headers["Location"] == "/events"


def test_failures_are_counted_in_the_store_so_every_replica_refuses(store: AuditStore, audit_url: str,
                                                                    keys: AuditKeys, clock: Clock) -> None:
    other_store = AuditStore.open(audit_url, keys)
    first, second = create_app(store, clock=clock), create_app(other_store, clock=clock)
    try:
        for _ in range(5):
            assert _from(first, "10.1.1.1").sign_in("rita", "wrong password here").status_code == 401
        assert _from(second, "10.1.1.1").sign_in("rita").status_code == 429
        assert _from(second, "10.1.1.2").sign_in("rita").status_code == 303
    finally:
        other_store.close()


def test_forwarded_for_is_honoured_only_from_trusted_proxies(store: AuditStore, clock: Clock) -> None:
    app = create_app(store, clock=clock, trusted_proxies=auth.parse_networks([PROXY + "/32"]))
    # Behind the proxy, an attacker's failures throttle the attacker, not the reviewer.
    for _ in range(5):
        assert _from(app, PROXY, "203.0.113.66").sign_in("rita", "wrong password here").status_code == 401
    assert _from(app, PROXY, "203.0.113.66").sign_in("rita").status_code == 429
    assert _from(app, PROXY, "10.30.0.7").sign_in("rita").status_code == 303
    # A client that is not a trusted proxy cannot pick its address by sending the header.
    for _ in range(5):
        _from(app, "198.51.100.9", "10.0.0.1").sign_in("arthur", "wrong password here")
    assert _from(app, "198.51.100.9", "10.0.0.99").sign_in("arthur").status_code == 429
    # A spoofed hop left of the proxy's own entry is not believed either.
    assert auth.client_address(PROXY, "10.0.0.1, 203.0.113.5", auth.parse_networks([PROXY])) == "203.0.113.5"
    assert auth.client_address(PROXY, "not-an-ip", auth.parse_networks([PROXY])) == PROXY
    assert auth.client_address("198.51.100.9", "10.0.0.1", auth.parse_networks([PROXY])) == "198.51.100.9"


def test_events_record_the_real_client_address(store: AuditStore, clock: Clock) -> None:
    app = create_app(store, clock=clock, trusted_proxies=auth.parse_networks(["10.20.0.0/24"]))
    event = seed(store, [PII_PROMPT], pii_findings()).event_id
    rita = _from(app, PROXY, "10.30.0.7")
    assert rita.sign_in("rita").status_code == 303
    assert rita.post(f"/events/{event}/evidence", {"reason": "申訴案件複查"}).status_code == 200
    opened = [e for e in store.events() if e["kind"] == "evidence_opened"]
    assert [e["client"] for e in opened] == ["10.30.0.7"]


def test_per_account_and_overall_limits_refuse_failing_addresses_only(app: Flask, store: AuditStore) -> None:
    throttle = app.extensions["guard_review"].throttle
    throttle.limits = auth.Limits(per_address=5, per_account=6, overall=12)
    for i in range(6):  # one failure each from six addresses: the account's limit
        assert _from(app, f"10.5.0.{i}").sign_in("rita", "wrong password here").status_code == 401
    assert _from(app, "10.5.0.1").sign_in("rita").status_code == 429      # an address that failed
    assert _from(app, "10.6.0.1").sign_in("rita").status_code == 303      # the reviewer's clean one
    for i in range(6):  # a spray of names from one address reaches the overall limit
        assert _from(app, "10.7.0.1").sign_in(f"guess{i}", "wrong password here").status_code == 401
    assert _from(app, "10.7.0.1").sign_in("ada").status_code == 429
    assert _from(app, "10.8.0.1").sign_in("ada").status_code == 303


def test_names_in_the_failure_table_are_hashed(app: Flask, store: AuditStore) -> None:
    _from(app, "10.9.0.1").sign_in("my-password-typed-as-name", "x" * 12)
    with store.engine.connect() as conn:
        rows = conn.execute(select(login_failures)).all()
    assert len(rows) == 1 and "my-password" not in str(tuple(rows[0]))


@pytest.mark.parametrize(("remote", "proto", "scheme", "tls"), [
    ("127.0.0.1", "", "http", False),
    ("127.0.0.1", "", "https", True),       # served over TLS
    (PROXY, "https", "http", True),         # behind the trusted TLS proxy
    ("198.51.100.9", "https", "http", False),  # the header from anyone else means nothing
])
def test_secure_cookies_and_hsts_over_tls(store: AuditStore, clock: Clock, remote: str, proto: str,
                                          scheme: str, tls: bool) -> None:
    app = create_app(store, clock=clock, trusted_proxies=auth.parse_networks([PROXY]))
    client = _from(app, remote, proto=proto)
    page = client.http.get("/login", base_url=f"{scheme}://localhost")
    assert ("Strict-Transport-Security" in page.headers) is tls
    if tls:
        assert page.headers["Strict-Transport-Security"] == HSTS
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("__Host-guard-review-login=" if tls else "guard-review-login=")
    assert ("Secure" in cookie) is tls


def test_a_console_without_the_key_of_a_keyed_store_does_not_start(audit_url: str, keys: AuditKeys,
                                                                    store: AuditStore) -> None:
    keyless = AuditStore.open(audit_url)
    try:
        with pytest.raises(ChainModeError, match="keyed: load its audit key"):
            create_app(keyless)
        with pytest.raises(ChainModeError):  # nor can anything else write accounts without it
            add_user(keyless, "mallory", "admin", "a long enough passphrase")
    finally:
        keyless.close()


def test_a_session_row_written_into_the_database_opens_nothing(app: Flask, store: AuditStore) -> None:
    """An insider with write access mints a session for the administrator: no key, no session."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from guard.audit.schema import sessions

    token, now = auth.new_token(), datetime.now(UTC)
    with store.writing() as conn:
        conn.execute(insert(sessions).values(token_hash=auth.token_hash(token), user_name="ada", role="admin",
                                             csrf_token="x" * 43, created_at=now,
                                             expires_at=now + timedelta(hours=1), mac="0" * 64))
    forged = Client(app)
    forged.http.set_cookie("guard-review", token)
    assert forged.get("/admin/users").status_code == 303  # sent to sign in
    real = Client(app)
    assert real.sign_in("ada").status_code == 303 and real.get("/admin/users").status_code == 200


def test_a_role_change_ends_the_session(client: Callable[[str], Client], store: AuditStore) -> None:
    rita = client("rita")
    assert rita.get("/events").status_code == 200
    add_user(store, "rita", "author", PASSWORD, replace=True)
    assert rita.get("/events").status_code == 303


@pytest.mark.parametrize("change", ["password", "role", "enable"])
def test_an_account_changed_in_the_database_does_not_sign_in(app: Flask, store: AuditStore,
                                                             change: str) -> None:
    from sqlalchemy import update

    from guard.audit.schema import users

    if change == "enable":
        accounts.set_disabled(store, "rita", True)
    values = {"password": {"password_hash": accounts.hash_password("insider's own password")},
              "role": {"role": "admin"}, "enable": {"disabled": False}}[change]
    with store.writing() as conn:
        conn.execute(update(users).where(users.c.name == "rita").values(**values))
    password = "insider's own password" if change == "password" else PASSWORD
    assert Client(app).sign_in("rita", password).status_code == 401
    # An administrator resets the password: the chained role comes back, the insider's is undone.
    accounts.reset_password(store, "rita", PASSWORD)
    signed_in = Client(app)
    assert signed_in.sign_in("rita").status_code == 303
    assert signed_in.get("/admin/users").status_code == 403    # a reviewer again, not an admin
    assert store.verify().intact
