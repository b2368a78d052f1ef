"""The console's pages: sign-in, events, one event (evidence, disposition), dashboard, suggestions, users."""

from __future__ import annotations

import functools
import hashlib
import hmac
import unicodedata
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ParamSpec, cast

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    make_response,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue

from guard.audit.accounts import ROLES, AccountError, add_user, authenticate, set_disabled
from guard.audit.evidence import EvidenceError
from guard.audit.store import MIN_REASON, visible_length
from guard.images import THUMBNAIL_TYPE
from guard.review import auth, dashboard, exports, forms, queries, render
from guard.review.app import console
from guard.review.schema import SUGGESTION_STATUSES

views = Blueprint("views", __name__)
P = ParamSpec("P")

# Messages after a redirect, chosen by a code in the query string (never echoing what was sent).
NOTICES = {
    "disposition": "已儲存處置。",
    "proposed": "已儲存處置，並送出允許清單建議。",
    "suggestion": "已更新建議狀態。",
    "user-added": "已新增使用者。",
    "user-disabled": "已停用帳號，該使用者的登入階段已全部結束。",
    "user-enabled": "已啟用帳號。",
}
SERVICE_LOOKBACK = timedelta(days=90)
MAX_VALUE = 200


View = Callable[P, ResponseReturnValue]


def requires(permission: str) -> Callable[[View[P]], View[P]]:
    """Sign-in first (a GET is sent to the sign-in page), then the role's permission, else 403."""

    def decorate(view: View[P]) -> View[P]:
        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            principal: auth.Principal | None = g.principal
            if principal is None:
                return redirect(url_for("views.login", next=_local_path(request.full_path)), 303)
            if not principal.may(permission):
                abort(403)
            return view(*args, **kwargs)

        return guarded

    return decorate


def _me() -> auth.Principal:
    return cast(auth.Principal, g.principal)


def _client() -> str:
    """The real client address (X-Forwarded-For honoured from trusted proxies only)."""
    return str(g.get("client") or request.remote_addr or "")


def _local_path(value: str | None) -> str:
    """Only a path on this site may be a redirect target.

    Browsers drop tabs and line breaks from a URL and read a backslash as a slash, so ``/\t/evil``
    and ``/\\evil`` mean ``//evil`` (another host): any control, space or backslash is refused, as
    is anything that does not start with exactly one slash.
    """
    value = (value or "").rstrip("?")
    if (not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(c.isspace() or unicodedata.category(c)[0] in "CZ" for c in value)):
        return ""
    return value


def _home(principal: auth.Principal) -> str:
    return url_for("views.events" if principal.may("events") else "views.dashboard_page")


def _notice() -> str:
    return NOTICES.get(request.args.get("done", ""), "")


# ---------------------------------------------------------------- signing in and out

@views.get("/")
def home() -> ResponseReturnValue:
    principal: auth.Principal | None = g.principal
    return redirect(_home(principal) if principal else url_for("views.login"), 303)


def _login_page(error: str = "", status: int = 200) -> Response:
    state = console()
    nonce = auth.new_token()  # double-submit token: a sign-in form posted from elsewhere is refused
    page = render_template("login.html", nonce=nonce, error=error,
                           next=_local_path(request.values.get("next")))
    response = make_response(page, status)
    state.set_cookie(response, state.login_cookie, nonce)
    return response


@views.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    state = console()
    if request.method == "GET":
        principal: auth.Principal | None = g.principal
        return redirect(_home(principal), 303) if principal else _login_page()
    if not auth.same(request.form.get("login_nonce", ""), request.cookies.get(state.login_cookie, "")):
        abort(400)
    name = request.form.get("name", "").strip()[:200]
    password = request.form.get("password", "")[:1024]
    if state.throttle.blocked(name, _client()):
        abort(429)
    role = authenticate(state.store, name, password) if name and password else None
    if role is None:
        state.throttle.failure(name, _client())
        return _login_page("帳號或密碼錯誤，或帳號已停用。", 401)
    state.throttle.success(name, _client())
    old = request.cookies.get(state.session_cookie)
    if old:
        queries.delete_session(state.store, auth.token_hash(old))
    token, csrf_token, now = auth.new_token(), auth.new_token(), state.clock()
    queries.create_session(state.store, auth.token_hash(token), name, role, csrf_token, now,
                           auth.session_expiry(now, now, state.idle))
    principal = auth.Principal(name, role, csrf_token, auth.token_hash(token))
    response = redirect(_local_path(request.form.get("next")) or _home(principal), 303)
    g.drop_session_cookie = False
    state.set_cookie(response, state.session_cookie, token)
    state.clear_cookie(response, state.login_cookie)
    return response


@views.post("/logout")
def logout() -> ResponseReturnValue:
    state = console()
    queries.delete_session(state.store, _me().token_hash)
    response = redirect(url_for("views.login"), 303)
    state.clear_cookie(response, state.session_cookie)
    return response


# ---------------------------------------------------------------- events

@views.get("/events")
@requires("events")
def events() -> ResponseReturnValue:
    state = console()
    form = forms.parse_filter(request.args)
    page = queries.list_events(state.store.engine, form.query, forms.page_number(request.args.get("page")))
    args = {name: value for name, value in form.values.items() if value}
    known_types = set(render.ENTITY_LABELS) | set(queries.entity_types(state.store.engine))
    return render_template(
        "events.html", form=form, page=page, args=args,
        services=queries.services(state.store.engine, state.clock() - SERVICE_LOOKBACK),
        entity_types=sorted(known_types), dispositions=queries.DISPOSITIONS)


@views.get("/events.csv")
@requires("export")
def events_csv() -> ResponseReturnValue:
    state = console()
    form = forms.parse_filter(request.args)
    if form.errors:
        abort(400)
    # An export takes events out of the console: who took which, chained before the first row is sent.
    state.store.record_review("events_exported", _me().name, "", _client(),
                              filter={name: value for name, value in form.values.items() if value})
    rows = queries.iter_events(state.store.engine, form.query)
    response = Response(stream_with_context(exports.csv_lines(rows)), mimetype="text/csv")
    stamp = render.local_time(state.clock()).replace(" ", "-").replace(":", "")
    response.headers["Content-Disposition"] = f'attachment; filename="guard-events-{stamp}.csv"'
    return response


def _record(event_id: str) -> dict[str, Any]:
    record = console().store.event(event_id) if len(event_id) <= 40 else None
    if record is None:
        abort(404)
    return record


def _snippets(record: dict[str, Any]) -> list[tuple[dict[str, Any], list[render.Piece]]]:
    return [(s, render.pieces(str(s.get("text", "")), s.get("findings", [])))
            for s in record.get("snippets") or []]


def _event_page(event_id: str, problem: str = "", status: int = 200, reason: str = "") -> ResponseReturnValue:
    state = console()
    record = _record(event_id)
    engine = state.store.engine
    page = render_template(
        "event.html", record=record, snippets=_snippets(record),
        history=queries.review_history(engine, event_id), disposition=queries.disposition(engine, event_id),
        has_evidence=state.store.has_evidence(event_id), key_loaded=state.store.keys is not None,
        thumbnails=_thumbnails(record), dispositions=queries.DISPOSITIONS, problem=problem,
        notice=_notice(), reason=reason)
    return page, status


def _thumbnails(record: dict[str, Any]) -> list[tuple[int, bool]]:
    """(position, still kept) of each image thumbnail the event's record lists."""
    listed = record.get("thumbnails") or []
    kept = set(console().store.thumbnails_kept(str(record["event_id"]))) if listed else set()
    return [(i, i in kept) for i in range(len(listed))]


@views.get("/events/<event_id>")
@requires("events")
def event(event_id: str) -> ResponseReturnValue:
    return _event_page(event_id)


@views.get("/events/<event_id>/images/<int:position>.jpg")
@requires("events")
def event_thumbnail(event_id: str, position: int) -> ResponseReturnValue:
    """A masked thumbnail of one of the event's images (never the image as it was sent).

    Served like the pages: signed in, with the events permission, ``Cache-Control: no-store`` and
    ``nosniff`` (app.SECURE_HEADERS); a thumbnail whose bytes differ from the chain's digest is 404.
    """
    data = console().store.thumbnail(event_id, position) if len(event_id) <= 40 else None
    if data is None:
        abort(404)
    response = Response(data, mimetype=THUMBNAIL_TYPE)
    response.headers["Content-Disposition"] = f'inline; filename="{event_id}-{position + 1}.jpg"'
    return response


def _proposal_key() -> bytes | None:
    """The key that signs revealed values handed to the browser: derived from the audit key, so every
    console replica shares it and no reviewer ever sees it."""
    keys = console().store.keys
    if keys is None:
        return None
    return hmac.new(keys.current.master, b"guard review allow-list proposals v1", hashlib.sha256).digest()


@views.post("/events/<event_id>/evidence")
@requires("evidence")
def reveal(event_id: str) -> ResponseReturnValue:
    state = console()
    record = _record(event_id)
    reason = request.form.get("reason", "").strip()
    if visible_length(reason) < MIN_REASON:
        return _event_page(event_id, f"請填寫開啟原文的事由（至少 {MIN_REASON} 個可見字元）。", 400,
                           reason)
    if len(reason) > forms.MAX_REASON:
        return _event_page(event_id, f"事由請在 {forms.MAX_REASON} 字以內。", 400)
    if not state.store.has_evidence(event_id):
        return _event_page(event_id, "此事件沒有保存原文（未記錄，或已超過保存期限而清除）。", 410)
    key = _proposal_key()
    if key is None:
        return _event_page(event_id, "主控台未載入稽核金鑰（--audit-key-file 或 GUARD_AUDIT_KEY），"
                                     "無法開啟原文。", 409, reason)
    try:
        texts = state.store.open_evidence(event_id, _me().name, reason, _client())
    except LookupError:
        return _event_page(event_id, "此事件沒有保存原文（未記錄，或已超過保存期限而清除）。", 410)
    except EvidenceError:
        return _event_page(event_id, "原文無法開啟：金鑰不符或資料已遭竄改。此次嘗試已記錄。", 409)
    found, missed = render.revealed_findings(texts, record.get("snippets") or [])
    me = _me()
    proposals = [(f, auth.sign_proposal(key, me.token_hash, event_id, f.entity_type, f.value)) for f in found]
    segments = [render.pieces(text, [{"start": f.start, "end": f.end, "entity_type": f.entity_type,
                                      "action": f.action} for f in found if f.segment == index])
                for index, text in enumerate(texts)]
    # The texts go into this response only: not into the session, a log or the store.
    return render_template("evidence.html", record=record, segments=segments, proposals=proposals,
                           missed=missed, reason=reason, dispositions=queries.DISPOSITIONS,
                           disposition=queries.disposition(state.store.engine, event_id))


@views.post("/events/<event_id>/disposition")
@requires("dispositions")
def set_disposition(event_id: str) -> ResponseReturnValue:
    state = console()
    record = _record(event_id)
    if record.get("decision") == queries.REVIEW_DECISION:
        abort(400)
    status = request.form.get("status", "")
    note = request.form.get("note", "").strip()
    if status not in queries.DISPOSITIONS:
        return _event_page(event_id, "請選擇處置狀態。", 400)
    if len(note) > forms.MAX_NOTE:
        return _event_page(event_id, f"備註請在 {forms.MAX_NOTE} 字以內。", 400)
    tokens = request.form.getlist("propose")
    key = _proposal_key()
    proposals = []
    for token in tokens:
        opened = auth.open_proposal(key, _me().token_hash, event_id, token) if key else None
        if (opened is None or not forms.ENTITY_TYPE.fullmatch(opened[0])
                or not opened[1] or len(opened[1]) > MAX_VALUE):
            abort(400)
        proposals.append(opened)
    if proposals and status != "false_positive":
        return _event_page(event_id, "只有處置為「誤判」時，才能提出允許清單建議。", 400)
    queries.set_disposition(state.store, event_id, status, note, _me().name, _client())
    if proposals:
        queries.add_suggestions(state.store, event_id, _me().name, proposals, _client())
    done = "proposed" if proposals else "disposition"
    return redirect(url_for("views.event", event_id=event_id, done=done), 303)


# ---------------------------------------------------------------- dashboard and policy feedback

@views.get("/dashboard")
@requires("dashboard")
def dashboard_page() -> ResponseReturnValue:
    state = console()
    chosen = forms.parse_range(request.args, dashboard.MAX_DAYS)
    data = dashboard.build(state.store.engine, state.clock(), chosen.since, chosen.until)
    last_day = data.until - timedelta(days=1)
    shown = {"from": render.local_date(data.since), "to": render.local_date(last_day)}
    return render_template("dashboard.html", data=data, chart=dashboard.chart(data.days), shown=shown,
                           errors=chosen.errors, baseline=dashboard.BASELINE_DAYS,
                           trend_days=dashboard.TREND_DAYS, floor=dashboard.UNUSUAL_FLOOR,
                           sigmas=dashboard.UNUSUAL_SIGMAS, may_drill=_me().may("events"))


@views.get("/false-positives")
@requires("false_positives")
def false_positive_list() -> ResponseReturnValue:
    items = queries.false_positives(console().store.engine)
    return render_template("false_positives.html",
                           items=[(record, judged, _snippets(record)) for record, judged in items])


def _statuses(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if value == "all":
        return SUGGESTION_STATUSES
    return (value,) if value in SUGGESTION_STATUSES else default


@views.get("/suggestions")
@requires("suggestions")
def suggestion_list() -> ResponseReturnValue:
    shown = _statuses(request.args.get("status"), ("pending",))
    return render_template("suggestions.html", items=queries.suggestions(console().store.engine, shown),
                           status=request.args.get("status") if len(shown) == 1 else "all",
                           statuses=SUGGESTION_STATUSES, notice=_notice())


@views.get("/suggestions.yaml")
@requires("suggestions")
def suggestion_yaml() -> ResponseReturnValue:
    state = console()
    shown = _statuses(request.args.get("status"), ("pending", "accepted"))
    text = exports.allowlist_yaml(queries.suggestions(state.store.engine, shown), state.clock(), _me().name)
    response = Response(text, mimetype="application/yaml")
    response.headers["Content-Disposition"] = 'attachment; filename="allow-list-suggestions.yaml"'
    return response


@views.post("/suggestions/<int:suggestion_id>")
@requires("suggestions")
def decide_suggestion(suggestion_id: int) -> ResponseReturnValue:
    status = request.form.get("status", "")
    if status not in SUGGESTION_STATUSES:
        abort(400)
    if not queries.decide_suggestion(console().store, suggestion_id, status, _me().name, _client()):
        abort(404)
    return redirect(url_for("views.suggestion_list", done="suggestion"), 303)


# ---------------------------------------------------------------- accounts

_ACCOUNT_PROBLEMS = (("already exists", "此使用者名稱已存在。"),
                     ("password", "密碼至少需要 12 個字元。"),
                     ("role", "請選擇角色。"),
                     ("user name", "使用者名稱須為 1 至 200 個字元，且不含空白。"))


def _users_page(problem: str = "", status: int = 200) -> ResponseReturnValue:
    page = render_template("users.html", accounts=queries.accounts(console().store.engine), roles=ROLES,
                           problem=problem, notice=_notice())
    return page, status


@views.get("/admin/users")
@requires("users")
def user_admin() -> ResponseReturnValue:
    return _users_page()


@views.post("/admin/users")
@requires("users")
def add_account() -> ResponseReturnValue:
    name = request.form.get("name", "")
    try:
        add_user(console().store, name, request.form.get("role", ""), request.form.get("password", ""),
                 actor=_me().name)
    except AccountError as e:
        text = str(e)
        problem = next((chinese for key, chinese in _ACCOUNT_PROBLEMS if key in text), "無法新增使用者。")
        return _users_page(problem, 400)
    return redirect(url_for("views.user_admin", done="user-added"), 303)


@views.post("/admin/users/status")
@requires("users")
def account_status() -> ResponseReturnValue:
    name = request.form.get("name", "")
    disabled = request.form.get("disabled") == "1"
    if disabled and name == _me().name:
        return _users_page("不能停用自己的帳號。", 400)
    if not set_disabled(console().store, name, disabled, _me().name, _client()):
        abort(404)
    return redirect(url_for("views.user_admin", done="user-disabled" if disabled else "user-enabled"), 303)
