"""What the user is told, in Traditional Chinese, when a prompt is blocked, held back or not inspected."""

from __future__ import annotations

import base64
import enum
import hashlib
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from guard.verdict import Decision

GUIDELINE = "「行政院及所屬機關（構）使用生成式 AI 參考指引」"

#: Chinese names of the built-in entity types (CONTRACT.md); values are never shown, only these names.
#: Notices and the review console both use this table; a policy names the types it adds
#: (``display_names:``, or ``display_name:`` on a declared recognizer).
ENTITY_NAMES_ZH: dict[str, str] = {
    "TW_NATIONAL_ID": "身分證統一編號",
    "TW_RESIDENT_ID": "居留證統一證號",
    "TW_LICENSE_PLATE": "車牌號碼",
    "PERSON": "姓名",
    "PHONE_NUMBER": "電話號碼",
    "EMAIL_ADDRESS": "電子郵件",
    "CLASSIFICATION_MARKER": "機密等級標示",
    "TW_UBN": "統一編號",
    "TW_PASSPORT": "護照號碼",
    "TW_NHI_CARD": "健保卡號",
    "CREDIT_CARD": "信用卡號",
    "IBAN_CODE": "銀行帳號",
    "TW_BANK_ACCOUNT": "銀行帳號",
    "LOCATION": "地址",
    "TW_ADDRESS": "地址",
    "DATE_OF_BIRTH": "出生日期",
}


class Reason(enum.StrEnum):
    """Why a notice is shown; stored in events as ``reason_code``."""

    CLASSIFIED = "classified"
    PERSONAL_DATA = "personal_data"
    CONFIRM_REQUIRED = "confirm_required"
    UNREADABLE_CONTENT = "unreadable_content"
    INSPECTION_FAILED = "inspection_failed"
    INSPECTION_TIMEOUT = "inspection_timeout"
    BODY_TOO_LARGE = "body_too_large"
    UNDECODABLE_BODY = "undecodable_body"
    AUDIT_UNAVAILABLE = "audit_unavailable"


_FAILURE_ZH = {
    Reason.INSPECTION_FAILED: "檢查程序發生錯誤",
    Reason.INSPECTION_TIMEOUT: "檢查逾時",
    Reason.BODY_TOO_LARGE: "內容超過可檢查的大小上限",
    Reason.UNDECODABLE_BODY: "內容格式無法解析",
    Reason.AUDIT_UNAVAILABLE: "稽核紀錄無法寫入",
}


@dataclass(frozen=True)
class BlockNotice:
    """What a notice may say: entity types (never values), the guideline point, an event reference."""

    event_id: str
    entity_types: tuple[str, ...]
    guideline_point: int
    decision: Decision
    reason_code: str
    # The policy's Traditional Chinese names for the types it adds (built-in types have ENTITY_NAMES_ZH).
    display_names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_entity_types(cls, event_id: str, entity_types: Iterable[str],
                          decision: Decision = Decision.BLOCK,
                          display_names: Mapping[str, str] | None = None) -> BlockNotice:
        """A notice for findings: point 3 when a classification marking is present, point 4 otherwise."""
        types = tuple(dict.fromkeys(entity_types))
        classified = "CLASSIFICATION_MARKER" in types
        if decision is Decision.WARN:
            reason = Reason.CONFIRM_REQUIRED
        else:
            reason = Reason.CLASSIFIED if classified else Reason.PERSONAL_DATA
        return cls(event_id, types, 3 if classified else 4, decision, reason, dict(display_names or {}))

    @property
    def entity_names(self) -> str:
        return entity_names(self.entity_types, self.display_names)

    @classmethod
    def failure(cls, event_id: str, reason: Reason = Reason.INSPECTION_FAILED) -> BlockNotice:
        """A fail-closed notice: the request was not inspected, so it was not sent."""
        return cls(event_id, (), 4, Decision.BLOCK, reason)


def entity_names(entity_types: Iterable[str], display_names: Mapping[str, str] | None = None) -> str:
    """``姓名、身分證統一編號``: the policy's name for a type, else the built-in one (never a code)."""
    names = [(display_names or {}).get(t) or ENTITY_NAMES_ZH.get(t) or "其他敏感資料" for t in entity_types]
    return "、".join(dict.fromkeys(names)) or "敏感資料"


def _appeal(notice: BlockNotice) -> str:
    return f"事件編號：{notice.event_id}（如認為判斷有誤，請將此編號提供給資安或個資窗口申覆）。"


def short_message(notice: BlockNotice) -> str:
    """One paragraph for API error messages and chat replies."""
    reason = notice.reason_code
    if reason == Reason.CONFIRM_REQUIRED:
        return confirm_message(notice)
    if reason == Reason.UNREADABLE_CONTENT:
        return ("【已攔截】上傳的檔案無法讀取內容以進行檢查（例如加密、掃描影像或不支援的格式），"
                f"依機關政策不得送往外部生成式 AI 服務，本次內容未送出。{_appeal(notice)}")
    if reason in _FAILURE_ZH:
        return inspection_failed_message(notice)
    if notice.guideline_point == 3:
        return (f"【已攔截】此訊息含有{notice.entity_names}。依{GUIDELINE}第3點，"
                "機密文書應由業務承辦人親自撰寫，禁止使用生成式 AI，本次內容未送出。"
                f"{_appeal(notice)}")
    return (f"【已攔截】此訊息含有個人資料或機密資訊（{notice.entity_names}）。"
            f"依{GUIDELINE}第4點，不得向生成式 AI 提供機密、個人或未經機關同意公開的資訊，"
            f"本次內容未送出；請刪除或改寫後再試。{_appeal(notice)}")


#: How a reason is stated in the prompt itself (guard.addon reads exactly this): a line of its own.
REASON_SYNTAX = "查詢事由："
REASON_EXAMPLE = "查詢事由：辦理民眾陳情案件回覆"


def confirm_message(notice: BlockNotice) -> str:
    """The warn/confirm notice: the prompt goes out only after the user states a reason (查詢事由)."""
    return (f"【需確認】此訊息可能含有{notice.entity_names}。依{GUIDELINE}第4點及機關稽核規定，"
            "涉及個人資料的查詢須載明查詢事由。請在訊息最後另起一行，以「" + REASON_SYNTAX + "」開頭寫明事由"
            f"（至少4個字，例如「{REASON_EXAMPLE}」）後重新送出，或修改內容；"
            f"您填寫的事由將記錄於稽核紀錄。{_appeal(notice)}")


# Failures a retry cannot cure, with what the user can do instead. Nothing was judged, so there is
# nothing to appeal either: the event number is for the IT desk.
_WHAT_TO_CHANGE = {
    Reason.UNDECODABLE_BODY: "請改以一般文字或服務支援的格式重新送出；如持續發生請洽資訊單位",
    Reason.BODY_TOO_LARGE: "請縮短內容或分次送出",
}


def inspection_failed_message(notice: BlockNotice) -> str:
    """Fail closed: nothing un-inspected reaches an AI service."""
    cause = _FAILURE_ZH.get(notice.reason_code, _FAILURE_ZH[Reason.INSPECTION_FAILED])  # type: ignore[call-overload]
    change = _WHAT_TO_CHANGE.get(notice.reason_code)  # type: ignore[call-overload]
    if change:
        return (f"【未送出】系統無法檢查此內容（{cause}），因此本次訊息未送往生成式 AI 服務；"
                f"內容並未經過判斷。{change}。事件編號：{notice.event_id}（洽詢資訊單位時請提供）。")
    return (f"【未送出】系統無法完成內容檢查（{cause}）。為避免機關資料在未經檢查下送往生成式 AI 服務，"
            f"本次訊息未送出，請稍後再試；如持續發生請洽資訊單位。{_appeal(notice)}")


_STYLE = (
    "body{font-family:system-ui,'Noto Sans TC','Microsoft JhengHei',sans-serif;max-width:44rem;"
    "margin:3rem auto;padding:0 1rem;line-height:1.7;color:#1f2328;background:#fff}"
    "h1{font-size:1.5rem;color:#b42318}h2{font-size:1.1rem;margin-top:1.6rem}"
    ".ref{font-family:ui-monospace,monospace;background:#f6f8fa;padding:.1rem .4rem;border-radius:4px}"
    ".box{border-left:4px solid #b42318;background:#fef3f2;padding:.8rem 1rem}"
    "label{display:block;margin-top:1rem}textarea{width:100%;min-height:5rem}"
    "button{margin-top:.8rem;padding:.4rem 1.2rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()


def page_headers() -> tuple[tuple[str, str], ...]:
    """Headers for the HTML pages: a CSP allowing only the page's own inline style and same-origin forms."""
    return (
        ("content-type", "text/html; charset=utf-8"),
        ("content-security-policy",
         f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
         "frame-ancestors 'none'; base-uri 'none'"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    )


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"zh-Hant\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


_LEGAL = (
    "<h2>為什麼這很重要</h2>"
    "<p>公務員洩漏或交付應秘密的文書、消息，依<strong>刑法第132條</strong>可處三年以下有期徒刑，"
    "即使只是疏忽也可能處一年以下有期徒刑。違法提供他人個人資料而造成損害，依"
    "<strong>個人資料保護法第41條</strong>可處五年以下有期徒刑，公務員假借職務犯之者加重其刑（第44條）。"
    "送到外部生成式 AI 服務的內容會離開機關的管控範圍，可能被保存、被用於訓練或外洩，無法收回。</p>"
)


def block_page_html(notice: BlockNotice) -> str:
    """A full page for browser navigations: what happened, the rule, the stakes, how to appeal."""
    esc = html.escape
    if notice.reason_code == Reason.CONFIRM_REQUIRED:
        return _page("送出前請確認查詢事由", (
            "<h1>送出前請確認查詢事由</h1>"
            f"<p class=\"box\">{esc(confirm_message(notice))}</p>{_LEGAL}"
            f"<p>事件編號：<span class=\"ref\">{esc(notice.event_id)}</span></p>"))
    if notice.reason_code in _FAILURE_ZH:
        return _page("未送出：無法完成內容檢查", (
            "<h1>未送出：無法完成內容檢查</h1>"
            f"<p class=\"box\">{esc(inspection_failed_message(notice))}</p>"
            f"<p>事件編號：<span class=\"ref\">{esc(notice.event_id)}</span></p>"))
    if notice.guideline_point == 3:
        rule = (f"<p>依{esc(GUIDELINE)}第3點，"
                "<strong>機密文書應由業務承辦人親自撰寫，禁止使用生成式 AI</strong>。"
                "「機密文書」包括國家機密文書及一般公務機密文書（依文書處理手冊之定義）。"
                "文件上出現「密」、「機密」、「極機密」、「絕對機密」等密等標示時，"
                "即不得交由生成式 AI 處理。</p>")
    else:
        rule = (f"<p>依{esc(GUIDELINE)}第4點，"
                "<strong>不得向生成式 AI 提供機密、個人資料或未經機關同意公開的資訊</strong>，"
                "也不得詢問可能涉及機密業務或個人資料的問題。身分證統一編號、居留證號、姓名、電話、車牌等都是個人資料。"
                "經確認環境安全的封閉式地端模型，得依文件機密等級使用。</p>")
    found = esc(notice.entity_names) if notice.entity_types else "無法檢查的內容"
    body = (
        "<h1>已攔截：此內容不能送往生成式 AI 服務</h1>"
        f"<p class=\"box\">偵測到：{found}。內容<strong>沒有</strong>送出，服務端沒有收到任何資料。</p>"
        f"<h2>適用規定</h2>{rule}{_LEGAL}"
        "<h2>接下來可以怎麼做</h2><ul><li>刪除或改寫其中的個人資料、機密內容後再試。</li>"
        "<li>需要處理機密或個人資料時，請改用機關核可的地端（封閉式）AI 服務。</li>"
        "<li>如認為判斷有誤，請將下列事件編號提供給資安或個資窗口申覆。</li></ul>"
        f"<p>事件編號：<span class=\"ref\">{esc(notice.event_id)}</span></p>"
    )
    return _page("已攔截：此內容不能送往生成式 AI 服務", body)


@dataclass(frozen=True)
class RenderedPage:
    """An HTML page with the headers it must be served with."""

    headers: tuple[tuple[str, str], ...]
    body: bytes


def render_block_page(notice: BlockNotice, form_action: str | None = None, token: str = "") -> RenderedPage:
    """The page for a navigation: the confirm form when asked for one, the block page otherwise."""
    if notice.reason_code == Reason.CONFIRM_REQUIRED and form_action:
        text = confirm_page_html(notice, form_action, token)
    else:
        text = block_page_html(notice)
    return RenderedPage(page_headers(), text.encode("utf-8"))


def render_confirm_expired_page() -> RenderedPage:
    """The answer to a confirmation whose held message is gone (expired, used, or never held here)."""
    body = ("<h1>確認已逾時，訊息未送出</h1>"
            "<p class=\"box\">這個確認表單已逾時或已使用過，原訊息<strong>沒有</strong>送出。"
            "請回到原頁面重新送出，並依提示填寫查詢事由。</p>")
    return RenderedPage(page_headers(), _page("確認已逾時，訊息未送出", body).encode("utf-8"))


def confirm_page_html(notice: BlockNotice, form_action: str, token: str) -> str:
    """The warn page: a form asking for 查詢事由, posted back to ``form_action`` with ``token``."""
    esc = html.escape
    body = (
        "<h1>送出前請確認查詢事由</h1>"
        f"<p class=\"box\">{esc(confirm_message(notice))}</p>{_LEGAL}"
        f"<form method=\"post\" action=\"{esc(form_action, quote=True)}\">"
        f"<input type=\"hidden\" name=\"token\" value=\"{esc(token, quote=True)}\">"
        "<label for=\"reason\">查詢事由（必填，將記錄於稽核紀錄）</label>"
        "<textarea id=\"reason\" name=\"reason\" required minlength=\"4\" maxlength=\"500\"></textarea>"
        "<button type=\"submit\">確認送出</button></form>"
        f"<p>事件編號：<span class=\"ref\">{esc(notice.event_id)}</span></p>"
    )
    return _page("送出前請確認查詢事由", body)
