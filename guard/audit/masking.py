"""Masked previews: enough of a finding for a reviewer to judge it, never the value itself.

Masks keep the value's length (``A123456789`` → ``A12*****89``, ``陳小明`` → ``陳○明``), so a masked
text keeps every finding's offsets. A snippet is a short window of masked text around findings; the
whole prompt is never stored in the clear (only as sealed evidence).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

# Markings are what a reviewer needs to read, and are not personal data.
_SHOWN_IN_FULL = {"CLASSIFICATION_MARKER"}
_CJK_MASK = "○"


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff"


def mask_value(entity_type: str, value: str) -> str:
    """The same number of characters, with all but a few kept ones hidden; separators stay."""
    if entity_type in _SHOWN_IN_FULL:
        return value
    if entity_type == "EMAIL_ADDRESS" and "@" in value:
        local, _, domain = value.partition("@")
        return (local[:1] + "*" * (len(local) - 1) + "@" + domain) if local else value
    positions = [i for i, c in enumerate(value) if c.isalnum()]
    n = len(positions)
    if entity_type == "PERSON" or any(_is_cjk(value[i]) for i in positions):
        head, tail = (1, 1) if n >= 3 else (1, 0)
    elif n >= 8:
        head, tail = 3, 2
    elif n >= 5:
        head, tail = 1, 1
    else:
        head, tail = 0, 0
    hidden = set(positions[head:n - tail])
    return "".join((_CJK_MASK if _is_cjk(c) else "*") if i in hidden else c for i, c in enumerate(value))


@dataclass(frozen=True)
class FoundAt:
    """A finding as the audit trail needs it: where, what type, how sure, and the rule's action."""

    entity_type: str
    segment: int
    start: int
    end: int
    score: float
    action: str


def mask_text(text: str, findings: Sequence[FoundAt]) -> str:
    chars = list(text)
    for f in findings:
        chars[f.start:f.end] = mask_value(f.entity_type, text[f.start:f.end])
    return "".join(chars)


def snippets(texts: Sequence[str], findings: Sequence[FoundAt], window: int = 24,
             limit: int = 20) -> list[dict[str, Any]]:
    """Masked windows around the findings of each segment; overlapping windows are merged."""
    out: list[dict[str, Any]] = []
    for index, text in enumerate(texts):
        here = sorted((f for f in findings if f.segment == index), key=lambda f: (f.start, f.end))
        if not here:
            continue
        masked = mask_text(text, here)
        groups: list[list[FoundAt]] = []
        bounds: list[list[int]] = []
        for f in here:
            lo, hi = max(0, f.start - window), min(len(text), f.end + window)
            if bounds and lo <= bounds[-1][1]:
                bounds[-1][1] = max(bounds[-1][1], hi)
                groups[-1].append(f)
            else:
                bounds.append([lo, hi])
                groups.append([f])
        for (lo, hi), group in zip(bounds, groups, strict=True):
            out.append({
                "segment": index, "text": masked[lo:hi], "cut_before": lo > 0, "cut_after": hi < len(text),
                "findings": [{"entity_type": f.entity_type, "start": f.start - lo, "end": f.end - lo,
                              "score": round(f.score, 4), "action": f.action} for f in group],
            })
            if len(out) >= limit:
                return out
    return out


# A URL part is kept as it is only when it reads as a word of the service's API (``v1``, ``chat``,
# ``gemini-1.5-pro:generateContent``): ASCII, short, at most two digits. Anything else may be data a
# user put in the address (an ID, a phone number, a plate, a name, an e-mail, a search) and is masked
# as a snippet's finding is.
_API_WORD = re.compile(r"[A-Za-z0-9._:~-]{1,48}")
_MAX_DIGITS = 2
_QUERY_WORD = re.compile(r"[A-Za-z_.-]{1,16}|\d{1,2}")
_PART = re.compile(r"[^/;,=&?]+")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _mask_part(text: str, found: Collection[str], is_query_value: bool = False) -> str:
    decoded = unquote(text.replace("+", " ") if is_query_value else text, errors="replace")
    keep = (_QUERY_WORD.fullmatch(decoded) if is_query_value else
            _API_WORD.fullmatch(decoded) and sum(c.isdigit() for c in decoded) <= _MAX_DIGITS)
    keep = keep and not any(value and value in decoded for value in found)
    shown = decoded if keep else mask_value("URL_PART", decoded)
    # Control characters stay percent-encoded: a stored path must not lay out or hide text.
    return _CONTROL.sub(lambda m: quote(m.group(), safe=""), shown)


def mask_path(path: str, found: Collection[str] = ()) -> str:
    """A request path and query with every part that could be a value masked (``/v1/users/A12*****89``).

    Separators stay, so the shape of the request is still readable; query names stay, their values
    are masked unless they are a short plain word or a one- or two-digit number. ``found``: values a
    recognizer detected in the URL; a part holding one is masked even when it looks like a word
    (a romanized name, ``/u/chen-xiaoming``).
    """
    path, _, query = path.partition("?")
    path = path.partition("#")[0]
    masked = _PART.sub(lambda m: _mask_part(m.group(), found), path)
    if not query:
        return masked
    pairs = []
    for pair in query.partition("#")[0].split("&"):
        name, eq, value = pair.partition("=")
        pairs.append(_mask_part(name, found) + eq + (_mask_part(value, found, True) if eq else ""))
    return masked + "?" + "&".join(pairs)


def mask_url(url: str, found: Collection[str] = ()) -> str:
    """A URL as it may be stored or logged: scheme and host kept, credentials dropped, path and query
    masked as ``mask_path`` does (``found`` as there). A bare path (``/v1/...``) is masked as a path.
    Never raises."""
    try:
        parts = urlsplit(url)
        if not parts.scheme and not parts.netloc:
            return mask_path(url, found)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        return mask_value("URL_PART", url)
    credentials = "***@" if parts.username or parts.password else ""
    rest = parts.path + ("?" + parts.query if parts.query else "")
    return f"{parts.scheme}://{credentials}{host}{mask_path(rest, found)}"
