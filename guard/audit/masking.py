"""Masked previews: enough of a finding for a reviewer to judge it, never the value itself.

Masks keep the value's length (``A123456789`` → ``A12*****89``, ``陳小明`` → ``陳○明``), so a masked
text keeps every finding's offsets. A snippet is a short window of masked text around findings; the
whole prompt is never stored in the clear (only as sealed evidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
