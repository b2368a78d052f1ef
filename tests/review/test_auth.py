"""Signing in and out, sessions, throttling, roles, CSRF and the headers on every answer."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from http.cookies import SimpleCookie

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from guard.audit.schema import dispositions, sessions, users
from guard.audit.store import AuditStore
from guard.review.app import SECURE_HEADERS, create_app
from tests.review.conftest import Clock
from tests.review.helpers import PASSWORD, PII_PROMPT, Client, pii_findings, seed


def _cookie(response: TestResponse, name: str) -> tuple[str, dict[str, str]]:
    """A Set-Cookie header's value and attributes (lower-case names; flags map to '')."""
    for header in response.headers.getlist("Set-Cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            morsel = jar[name]
            flags = {k: str(v) for k, v in morsel.items() if v}
            lowered = header.lower()
            for flag in ("httponly", "secure"):
                if f"; {flag}" in lowered:
                    flags[flag] = ""
            return morsel.value, flags
    raise AssertionError(f"no Set-Cookie for {name}")


def test_sign_in_sets_a_strict_http_only_cookie_and_stores_only_its_hash(app: Flask,
                                                                        store: AuditStore) -> None:
    response = Client(app).sign_in("rita")
    assert response.status_code == 303 and response.headers["Location"] == "/events"
    token, attributes = _cookie(response, "guard-review")
    assert "httponly" in attributes and "secure" not in attributes
    assert attributes["samesite"] == "Strict" and attributes["path"] == "/"
    with store.engine.connect() as conn:
        rows = conn.execute(select(sessions)).all()
    assert [row.token_hash for row in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert all(token not in str(tuple(row)) for row in rows)


def test_secure_cookies_are_secure_and_host_prefixed(store: AuditStore) -> None:
    response = Client(create_app(store, secure_cookies=True)).sign_in("rita")
    _, attributes = _cookie(response, "__Host-guard-review")
    assert "secure" in attributes and "httponly" in attributes and attributes["samesite"] == "Strict"


def test_authors_land_on_the_dashboard(app: Flask) -> None:
    assert Client(app).sign_in("arthur").headers["Location"] == "/dashboard"


@pytest.mark.parametrize(("name", "password"), [
    ("rita", "wrong password here"),      # right name, wrong password
    ("nobody", PASSWORD),                 # unknown name
    ("rita", ""),                         # empty password
])
def test_bad_sign_ins_are_refused_alike(app: Flask, name: str, password: str) -> None:
    response = Client(app).sign_in(name, password)
    assert response.status_code == 401
    assert "帳號或密碼錯誤" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers or "guard-review=" not in response.headers["Set-Cookie"]


def test_repeated_failures_are_throttled_per_name_and_address(app: Flask, clock: Clock) -> None:
    client = Client(app)
    for _ in range(5):
        assert client.sign_in("rita", "wrong password here").status_code == 401
    refused = client.sign_in("rita")            # even the right password, for a while
    assert refused.status_code == 429 and "嘗試次數過多" in refused.get_data(as_text=True)
    assert Client(app).sign_in("arthur").status_code == 303            # another name from the same address
    other = Client(app)
    other.http.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    assert other.sign_in("rita").status_code == 303                    # the same name from another address
    clock.advance(minutes=15)
    assert client.sign_in("rita").status_code == 303


def test_sign_in_form_posted_without_its_own_token_is_refused(app: Flask) -> None:
    response = app.test_client().post("/login", data={"name": "rita", "password": PASSWORD})
    assert response.status_code == 400


def test_sign_out_ends_the_session(app: Flask, store: AuditStore) -> None:
    client = Client(app)
    client.sign_in("rita")
    assert client.post("/logout").status_code == 303
    assert client.get("/events").status_code == 303
    with store.engine.connect() as conn:
        assert conn.execute(select(sessions)).all() == []


def test_idle_sessions_expire(app: Flask, clock: Clock) -> None:
    client = Client(app)
    client.sign_in("rita")
    clock.advance(minutes=29)
    assert client.get("/events").status_code == 200     # activity slides the idle expiry
    clock.advance(minutes=29)
    assert client.get("/events").status_code == 200
    clock.advance(minutes=31)
    expired = client.get("/events")
    assert expired.status_code == 303 and expired.headers["Location"].startswith("/login")


def test_sessions_end_eight_hours_after_sign_in_however_active(app: Flask, clock: Clock) -> None:
    client = Client(app)
    client.sign_in("rita")
    for _ in range(16):                                  # a request every 29 minutes: 7 h 44 min
        clock.advance(minutes=29)
        assert client.get("/events").status_code == 200
    clock.advance(minutes=17)
    assert client.get("/events").status_code == 303


def test_a_disabled_account_is_signed_out_at_once(client: Callable[[str], Client], app: Flask) -> None:
    rita, ada = client("rita"), client("ada")
    assert ada.post("/admin/users/status", {"name": "rita", "disabled": "1"}).status_code == 303
    assert rita.get("/events").status_code == 303
    assert Client(rita.http.application).sign_in("rita").status_code == 401  # type: ignore[arg-type]
    assert ada.post("/admin/users/status", {"name": "ada", "disabled": "1"}).status_code == 400  # not oneself
    assert ada.post("/admin/users/status", {"name": "rita", "disabled": "0"}).status_code == 303
    assert Client(rita.http.application).sign_in("rita").status_code == 303  # type: ignore[arg-type]


def test_admins_add_users(client: Callable[[str], Client], store: AuditStore) -> None:
    ada = client("ada")
    added = ada.post("/admin/users", {"name": "rex", "role": "reviewer", "password": "a long enough one"})
    assert added.status_code == 303
    assert "rex" in ada.text("/admin/users")
    short = ada.post("/admin/users", {"name": "rex2", "role": "reviewer", "password": "short"})
    assert short.status_code == 400 and "至少需要 12 個字元" in short.get_data(as_text=True)
    again = ada.post("/admin/users", {"name": "rex", "role": "author", "password": "a long enough one"})
    assert again.status_code == 400 and "已存在" in again.get_data(as_text=True)
    with store.engine.connect() as conn:
        assert conn.execute(select(users.c.role).where(users.c.name == "rex")).scalar_one() == "reviewer"


# Each role against each page: 200 (allowed) or 403 (a Chinese page), never anything else.
PAGES = ("/events", "/events.csv", "/events/{event}", "/dashboard", "/false-positives", "/suggestions",
         "/suggestions.yaml", "/admin/users")
ALLOWED = {
    "rita": {"/events", "/events.csv", "/events/{event}", "/dashboard"},
    "arthur": {"/dashboard", "/false-positives", "/suggestions", "/suggestions.yaml"},
    "ada": set(PAGES),
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_each_role_sees_only_its_pages(client: Callable[[str], Client], store: AuditStore, name: str) -> None:
    event = seed(store, [PII_PROMPT], pii_findings()).event_id
    user = client(name)
    for page in PAGES:
        response = user.get(page.format(event=event))
        expected = 200 if page in ALLOWED[name] else 403
        assert response.status_code == expected, (name, page, response.status_code)
        if expected == 403:
            assert "沒有權限" in response.get_data(as_text=True)


@pytest.mark.parametrize(("name", "path", "form"), [
    ("arthur", "/events/{event}/evidence", {"reason": "例行查核"}),
    ("arthur", "/events/{event}/disposition", {"status": "confirmed"}),
    ("rita", "/admin/users", {"name": "eve", "role": "admin", "password": "a long enough one"}),
    ("rita", "/suggestions/1", {"status": "accepted"}),
])
def test_roles_are_enforced_on_actions_too(client: Callable[[str], Client], store: AuditStore, name: str,
                                           path: str, form: dict[str, str]) -> None:
    event = seed(store, [PII_PROMPT], pii_findings()).event_id
    response = client(name).post(path.format(event=event), form)
    assert response.status_code == 403 and "沒有權限" in response.get_data(as_text=True)
    with store.engine.connect() as conn:
        assert conn.execute(select(dispositions)).all() == []
        assert conn.execute(select(users.c.name).where(users.c.name == "eve")).first() is None


def test_signed_out_visitors_are_sent_to_sign_in_and_back_but_never_off_site(app: Flask) -> None:
    response = app.test_client().get("/events?user=alice")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=")
    client = Client(app)
    page = client.http.get("/login?next=/events%3Fuser%3Dalice").get_data(as_text=True)
    assert 'name="next" value="/events?user=alice"' in page
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.example",
                   "/\n/evil.example", "/\r/evil.example", " //evil.example", "/ /evil.example",
                   "/%09/evil.example".replace("%09", "\x0b"), "/\x00/evil.example", "/\u3000/evil.example",
                   "/\u200b/evil.example", "\\\\evil.example", "/events\\..\\\\evil.example",
                   "javascript:alert(1)", "evil.example"):
        page = client.http.get("/login", query_string={"next": target}).get_data(as_text=True)
        assert 'name="next" value=""' in page, target


@pytest.mark.parametrize(("path", "form"), [
    ("/events/{event}/disposition", {"status": "confirmed", "note": "ok"}),
    ("/events/{event}/evidence", {"reason": "例行查核"}),
    ("/admin/users", {"name": "mallory", "role": "admin", "password": "a long enough one"}),
    ("/admin/users/status", {"name": "rita", "disabled": "1"}),
    ("/logout", {}),
])
@pytest.mark.parametrize("token", ["", "forged-token"])
def test_posts_without_the_session_csrf_token_are_refused(client: Callable[[str], Client], store: AuditStore,
                                                          path: str, form: dict[str, str],
                                                          token: str) -> None:
    event = seed(store, [PII_PROMPT], pii_findings()).event_id
    ada = client("ada")
    response = ada.post(path.format(event=event), {**form, "csrf_token": token}, csrf=False)
    assert response.status_code == 400
    assert ada.get("/events").status_code == 200            # still signed in: /logout did nothing
    with store.engine.connect() as conn:
        assert conn.execute(select(dispositions)).all() == []
        assert conn.execute(select(users.c.name).where(users.c.name == "mallory")).first() is None
        assert conn.execute(select(users.c.disabled).where(users.c.name == "rita")).scalar_one() is False
    chained = [e["kind"] for e in store.events() if e["kind"] != "account_changed"]
    assert chained == ["prompt_redacted"]   # nothing chained


def test_a_post_without_a_session_is_refused(app: Flask, store: AuditStore) -> None:
    event = seed(store, [PII_PROMPT], pii_findings()).event_id
    response = app.test_client().post(f"/events/{event}/disposition", data={"status": "confirmed"})
    assert response.status_code == 403


def test_every_answer_carries_the_secure_headers(client: Callable[[str], Client], store: AuditStore,
                                                 app: Flask) -> None:
    event = seed(store, [PII_PROMPT], pii_findings()).event_id
    rita = client("rita")
    answers = [
        rita.get("/events"), rita.get(f"/events/{event}"), rita.get("/events.csv"), rita.get("/dashboard"),
        rita.get("/admin/users"), rita.get("/no-such-page"), rita.get("/static/console.css"),
        rita.post("/events/x/disposition", {"csrf_token": "bad"}, csrf=False),
        app.test_client().get("/login"), app.test_client().get("/events"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 403, 404, 200, 400, 200, 303]
    for answer in answers:
        for name, value in SECURE_HEADERS.items():
            assert answer.headers.get(name) == value, (answer.request.path, name)
    csp = SECURE_HEADERS["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
