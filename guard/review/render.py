"""How events are shown: Chinese labels, highlighted findings, visible control characters, local time.

All prompt-derived text reaches the page through Jinja's escaping; ``visible`` additionally shows
invisible and direction-changing characters (U+202E and friends) as labelled tokens, so a prompt
cannot reorder or hide part of what the reviewer reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

from guard.audit.masking import FoundAt, mask_text
from guard.notice import ENTITY_NAMES_ZH
from guard.review.queries import LOCAL_TZ, utc

# One table of entity names for staff and reviewers alike (guard.notice), so both say the same thing.
ENTITY_LABELS = ENTITY_NAMES_ZH
DECISION_LABELS = {"allow": "放行", "warn": "警示", "redact": "遮蔽", "block": "攔截", "error": "檢查失敗",
                   "flagged": "攔截或遮蔽", "review": "審查動作"}
KIND_LABELS = {"prompt_allowed": "放行", "prompt_redacted": "遮蔽後送出", "prompt_blocked": "攔截",
               "prompt_warned": "警示", "inspection_failed": "檢查失敗", "evidence_opened": "開啟原文",
               "disposition_set": "設定處置", "account_changed": "帳號異動",
               "suggestion_added": "提出允許清單建議", "suggestion_decided": "審定允許清單建議",
               "events_exported": "匯出事件"}
# Services by the policy's names (policies/default.yaml); an unknown name is shown as it is.
SERVICE_LABELS = {
    "openai-api": "OpenAI 程式介面", "azure-openai": "Azure OpenAI 程式介面",
    "anthropic-api": "Anthropic 程式介面", "gemini-api": "Gemini 程式介面", "chatgpt": "ChatGPT 網頁版",
    "claude": "Claude 網頁版", "gemini": "Gemini 網頁版", "copilot": "Copilot 網頁版",
    "perplexity": "Perplexity 網頁版", "perplexity-api": "Perplexity 程式介面", "deepseek": "DeepSeek 網頁版",
    "deepseek-api": "DeepSeek 程式介面", "mistral-api": "Mistral 程式介面", "groq-api": "Groq 程式介面",
    "xai-api": "xAI 程式介面", "openrouter-api": "OpenRouter 程式介面", "": "（未知服務）",
}
# What happened to the request (InspectionEvent.action_taken).
ACTION_LABELS = {
    "forwarded": "已轉送", "rewritten": "遮蔽後轉送", "answered": "由本系統回覆（未轉送）",
    "held for a reason": "暫停，待使用者填寫事由", "forwarded (fail-open)": "檢查失敗仍轉送（放行模式）",
    "answered (not rewritable)": "由本系統回覆（無法遮蔽，未轉送）", "dropped": "已攔下（未轉送）", "": "—",
}
# A request the proxy could not tie to a person (no proxy authentication) is shown, and filtered, so.
UNIDENTIFIED = "未識別"
DISPOSITION_LABELS = {"confirmed": "確認屬實", "false_positive": "誤判", "follow_up": "待追蹤"}
ROLE_LABELS = {"reviewer": "審查人員", "author": "政策撰寫者", "admin": "管理者"}
SUGGESTION_LABELS = {"pending": "待處理", "accepted": "已採納", "rejected": "不採納"}


def label(labels: Mapping[str, str], code: str) -> str:
    return labels.get(code, code)


def local_date(value: datetime) -> str:
    return utc(value).astimezone(LOCAL_TZ).strftime("%Y-%m-%d")


def user_label(name: str | None) -> str:
    return name or UNIDENTIFIED


def service_label(name: str | None) -> str:
    return SERVICE_LABELS.get(name or "", name or "")


def local_time(value: str | datetime | None) -> str:
    """A stored time (ISO text or datetime, UTC) as Taiwan time, to the second."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return str(value)
    return utc(moment).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


# Bidirectional overrides and isolates, zero-width and other format characters, C0/C1 controls
# (tab, line feed and carriage return stay: they lay the text out).
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]")


def visible(text: object) -> Markup:
    """Escaped text in which every invisible or direction-changing character is a visible token."""
    value = "" if text is None else str(text)
    parts: list[Markup] = []
    last = 0
    for match in _INVISIBLE.finditer(value):
        parts.append(escape(value[last:match.start()]))
        parts.append(Markup(f'<span class="ctl" title="不可見字元">U+{ord(match.group()):04X}</span>'))
        last = match.end()
    parts.append(escape(value[last:]))
    return Markup("").join(parts)


@dataclass(frozen=True)
class Piece:
    """A run of text, highlighted when it is a finding."""

    text: str
    entity_type: str = ""
    action: str = ""


def pieces(text: str, findings: Iterable[Mapping[str, Any]], offset: int = 0) -> list[Piece]:
    """Split ``text`` at findings (``start``/``end`` relative to ``offset``); overlaps are clipped."""
    out: list[Piece] = []
    cursor = 0
    spans = sorted((int(f["start"]) - offset, int(f["end"]) - offset, str(f.get("entity_type", "")),
                    str(f.get("action", ""))) for f in findings)
    for start, end, entity_type, action in spans:
        start, end = max(start, cursor), min(end, len(text))
        if start >= end:
            continue
        if start > cursor:
            out.append(Piece(text[cursor:start]))
        out.append(Piece(text[start:end], entity_type, action))
        cursor = end
    if cursor < len(text):
        out.append(Piece(text[cursor:]))
    return out


@dataclass(frozen=True)
class Revealed:
    """A finding located in the original text: its value, shown only on the reveal page."""

    segment: int
    start: int
    end: int
    entity_type: str
    action: str
    value: str


def locate(original: str, snippet: Mapping[str, Any]) -> int | None:
    """Where a masked snippet's window starts in the original text (masks keep lengths), or None."""
    text = str(snippet.get("text", ""))
    findings = [FoundAt(str(f["entity_type"]), 0, int(f["start"]), int(f["end"]), 0.0, "")
                for f in snippet.get("findings", [])]
    if not findings or len(text) > len(original):
        return None
    if not snippet.get("cut_before"):
        candidates: Iterable[int] = (0,)
    else:
        # Text before the first finding is unmasked original text: search for it.
        prefix = text[:min(f.start for f in findings)]
        candidates = _occurrences(original, prefix) if prefix else range(len(original) - len(text) + 1)
    for lo in candidates:
        window = original[lo:lo + len(text)]
        if len(window) == len(text) and mask_text(window, findings) == text:
            return lo
    return None


def _occurrences(text: str, sub: str) -> Iterable[int]:
    at = text.find(sub)
    while at != -1:
        yield at
        at = text.find(sub, at + 1)


def revealed_findings(texts: Sequence[str],
                      snippets: Sequence[Mapping[str, Any]]) -> tuple[list[Revealed], int]:
    """The findings of an event's snippets with their original values; also how many could not be placed."""
    found: list[Revealed] = []
    missed = 0
    for snippet in snippets:
        segment = int(snippet.get("segment", -1))
        findings = list(snippet.get("findings", []))
        lo = locate(texts[segment], snippet) if 0 <= segment < len(texts) else None
        if lo is None:
            missed += len(findings)
            continue
        for f in findings:
            start, end = lo + int(f["start"]), lo + int(f["end"])
            found.append(Revealed(segment, start, end, str(f["entity_type"]), str(f.get("action", "")),
                                  texts[segment][start:end]))
    return found, missed
