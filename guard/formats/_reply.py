"""Building native replies: JSON errors and server-sent events."""

from __future__ import annotations

from typing import Any

from guard.formats._tree import dumps
from guard.formats.base import JSON_HEADERS, SSE_HEADERS, NativeResponse


def json_reply(status: int, payload: Any,
               headers: tuple[tuple[str, str], ...] = JSON_HEADERS) -> NativeResponse:
    return NativeResponse(status, headers, dumps(payload).encode("utf-8"))


def sse_event(data: Any, event: str | None = None) -> str:
    """One SSE event; ``data`` is JSON-encoded unless it is already a string."""
    text = data if isinstance(data, str) else dumps(data)
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n"


def sse_reply(events: list[str], status: int = 200) -> NativeResponse:
    return NativeResponse(status, SSE_HEADERS, "".join(events).encode("utf-8"))
