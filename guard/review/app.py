"""The console's Flask application: sessions and CSRF on every request, secure headers on every answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, current_app, g, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from guard.audit.accounts import warm_up_sign_in
from guard.audit.store import AuditStore, ChainModeError
from guard.review import auth, queries, render

CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
SECURE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
ERROR_MESSAGES = {
    400: ("請求無效", "表單已過期或內容不正確，請回上一頁重新整理後再試。"),
    401: ("需要登入", "請先登入。"),
    403: ("沒有權限", "您的角色無法使用此頁面或功能。"),
    404: ("找不到頁面", "此頁面或事件不存在。"),
    405: ("不支援的操作", "此頁面不接受這種請求。"),
    413: ("內容過大", "送出的內容超過上限。"),
    409: ("無法記錄", "此稽核資料庫以金鑰保護，主控台未載入稽核金鑰（--audit-key-file 或 GUARD_AUDIT_KEY），"
                     "無法記錄此動作。"),
    429: ("嘗試次數過多", "登入失敗次數過多，請 15 分鐘後再試。"),
    500: ("系統錯誤", "處理時發生錯誤，請稍後再試；若持續發生請聯絡系統管理者。"),
}
REFRESH_STEP = timedelta(minutes=1)   # slide the idle expiry at most once a minute: each slide is a write


HSTS = "max-age=31536000"


@dataclass
class Console:
    """What every request needs: the store, session settings, the sign-in throttle and the clock."""

    store: AuditStore
    idle: timedelta
    secure_cookies: bool
    clock: Callable[[], datetime]
    trusted_proxies: auth.Networks = ()
    throttle: auth.Throttle = field(init=False)

    def __post_init__(self) -> None:
        self.throttle = auth.Throttle(self.store, self.clock)

    @property
    def tls(self) -> bool:
        """This request reached the console over HTTPS: directly, or through a trusted TLS proxy
        (``--secure-cookies`` says so for every request)."""
        return (self.secure_cookies or request.scheme == "https"
                or auth.forwarded_tls(request.remote_addr or "", request.headers.get("X-Forwarded-Proto", ""),
                                      self.trusted_proxies))

    @property
    def session_cookie(self) -> str:
        # The __Host- prefix makes browsers insist on Secure, Path=/ and no Domain.
        return "__Host-guard-review" if self.tls else "guard-review"

    @property
    def login_cookie(self) -> str:
        return "__Host-guard-review-login" if self.tls else "guard-review-login"

    def set_cookie(self, response: BaseResponse, name: str, value: str) -> None:
        response.set_cookie(name, value, path="/", httponly=True, samesite="Strict", secure=self.tls)

    def clear_cookie(self, response: BaseResponse, name: str) -> None:
        response.delete_cookie(name, path="/", httponly=True, samesite="Strict", secure=self.tls)


def console() -> Console:
    value: Console = current_app.extensions["guard_review"]
    return value


def create_app(store: AuditStore, *, session_minutes: int = 30, secure_cookies: bool = False,
               clock: Callable[[], datetime] | None = None, trusted_proxies: auth.Networks = ()) -> Flask:
    from guard.review.views import views

    # The console writes chained actions and checks accounts and sessions against keyed fingerprints:
    # on a keyed store it needs the key, on a keyless one it must not have one (ChainModeError).
    store.check_writable()
    app = Flask(__name__)
    # Flask's own cookie session is not used: sessions live in the store (guard.review.auth).
    app.config.update(MAX_CONTENT_LENGTH=256 * 1024, TEMPLATES_AUTO_RELOAD=False)
    app.extensions["guard_review"] = Console(store, timedelta(minutes=session_minutes), secure_cookies,
                                             clock or (lambda: datetime.now(UTC)), trusted_proxies)
    warm_up_sign_in()  # the stand-in hash for unknown names exists before the first sign-in
    app.jinja_env.filters.update(visible=render.visible, local_time=render.local_time,
                                 user_label=render.user_label, service_label=render.service_label)
    app.jinja_env.globals.update(
        label=render.label, ENTITY_LABELS=render.ENTITY_LABELS, DECISION_LABELS=render.DECISION_LABELS,
        ACTION_LABELS=render.ACTION_LABELS, UNIDENTIFIED=render.UNIDENTIFIED,
        KIND_LABELS=render.KIND_LABELS, DISPOSITION_LABELS=render.DISPOSITION_LABELS,
        ROLE_LABELS=render.ROLE_LABELS, SUGGESTION_LABELS=render.SUGGESTION_LABELS)
    app.context_processor(lambda: {"principal": g.get("principal")})
    app.before_request(_load_principal)
    app.after_request(_secure_headers)
    app.register_error_handler(HTTPException, _error_page)
    app.register_error_handler(ChainModeError, lambda _e: _error_response(409))
    app.register_error_handler(Exception, _unexpected)
    app.register_blueprint(views)
    return app


def _load_principal() -> Response | None:
    """Find the session behind the cookie; refuse any POST without a session and its CSRF token."""
    g.principal = None
    g.drop_session_cookie = False
    if request.endpoint == "static":
        return None
    state = console()
    g.client = auth.client_address(request.remote_addr or "", request.headers.get("X-Forwarded-For", ""),
                                   state.trusted_proxies)
    token = request.cookies.get(state.session_cookie, "")
    if token:
        now = state.clock()
        row = queries.find_session(state.store, auth.token_hash(token), now)
        if row is not None and row.created_at + auth.ABSOLUTE_LIFETIME > now:
            g.principal = auth.Principal(row.user_name, row.role, row.csrf_token, row.token_hash)
            expires = auth.session_expiry(row.created_at, now, state.idle)
            if expires - row.expires_at >= REFRESH_STEP:
                queries.extend_session(state.store, row.token_hash, expires)
        else:
            g.drop_session_cookie = True
    if request.method == "POST" and request.endpoint != "views.login":
        if g.principal is None:
            return _error_response(403)
        if not auth.same(request.form.get("csrf_token", ""), g.principal.csrf_token):
            return _error_response(400)
    return None


def _secure_headers(response: Response) -> Response:
    for name, value in SECURE_HEADERS.items():
        response.headers[name] = value
    if console().tls:
        response.headers["Strict-Transport-Security"] = HSTS
    if g.get("drop_session_cookie"):
        console().clear_cookie(response, console().session_cookie)
    return response


def _error_response(code: int) -> Response:
    title, message = ERROR_MESSAGES.get(code, ERROR_MESSAGES[400])
    page = render_template("error.html", code=code, title=title, message=message)
    return Response(page, status=code, mimetype="text/html")


def _error_page(error: HTTPException) -> Any:
    if error.code is None or error.code < 400:
        return error
    return _error_response(error.code)


def _unexpected(error: Exception) -> Response:
    current_app.logger.error("review console: unexpected %s", error.__class__.__name__)
    return _error_response(500)
