"""Marking findings inside a text, for reports a policy author reads."""

from __future__ import annotations

from collections.abc import Sequence

OPEN, CLOSE = "⟦", "⟧"


def mark_spans(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """``text`` with each (start, end, label) span written as ⟦label value⟧.

    Spans are marked in text order; one that overlaps an already marked span is left out (its
    label still appears in the report's lists).
    """
    out: list[str] = []
    cursor = 0
    for start, end, label in sorted(spans, key=lambda s: (s[0], -s[1])):
        if start < cursor:
            continue
        out += [text[cursor:start], f"{OPEN}{label} {text[start:end]}{CLOSE}"]
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def windows(text: str, spans: Sequence[tuple[int, int]], margin: int = 30, limit: int = 3) -> str:
    """The parts of ``text`` around ``spans`` (``margin`` characters each side, overlaps merged),
    at most ``limit`` of them, joined with an ellipsis; the start of the text when there are no spans.
    """
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        lo, hi = max(0, start - margin), min(len(text), end + margin)
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    if not merged:
        merged = [[0, min(len(text), 2 * margin)]]
    shown = merged[:limit]
    out = "…".join(text[lo:hi] for lo, hi in shown)
    more = f" (+{len(merged) - limit} more)" if len(merged) > limit else ""
    return ("…" if shown[0][0] > 0 else "") + out + ("…" if shown[-1][1] < len(text) else "") + more


def one_line(text: str, limit: int = 60) -> str:
    """A short single-line preview (newlines shown as ⏎)."""
    flat = text.replace("\r\n", "\n").replace("\n", "⏎")
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"
