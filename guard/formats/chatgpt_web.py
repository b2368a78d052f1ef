"""ChatGPT web app: ``POST /backend-api/conversation``, ``/backend-api/f/conversation`` and ``.../prepare``.

Request shape (public captures, e.g. Simatwa/WebChatGPT ``assets/recons/1st_requests.md`` and 2025
captures of ``/backend-api/f/conversation``): ``messages[].content`` is ``{"content_type": "text",
"parts": ["..."]}``; ``multimodal_text`` parts mix strings with asset pointers; ``/prepare`` sends the
first characters typed as ``partial_query.parts``. The reply is SSE with ``delta_encoding`` ``v1``:
``event: delta`` / ``{"p": "/message/content/parts/0", "o": "append", "v": "..."}``.
Other endpoints on the host fall back to the generic walk.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from guard.formats import generic
from guard.formats._reply import json_reply, sse_event, sse_reply
from guard.formats._select import all_strings
from guard.formats._tree import Path
from guard.formats.base import NativeResponse
from guard.notice import BlockNotice, short_message

_CONTENT_TEXT_KEYS = ("text", "user_profile", "user_instructions", "result")


def _content(content: Any, path: Path) -> list[Path]:
    if isinstance(content, str):
        return [path]
    if not isinstance(content, dict):
        return []
    out = [(*path, "parts", i) for i, p in enumerate(content.get("parts") or []) if isinstance(p, str)]
    out += [(*path, k) for k in _CONTENT_TEXT_KEYS if isinstance(content.get(k), str)]
    return out


def select(doc: Any) -> list[Path]:
    if not isinstance(doc, dict) or not ({"messages", "partial_query"} & doc.keys()):
        return all_strings(doc, ())
    out: list[Path] = []
    for i, msg in enumerate(doc.get("messages") or []):
        if isinstance(msg, dict):
            out += _content(msg.get("content"), ("messages", i, "content"))
    partial = doc.get("partial_query")
    if isinstance(partial, dict):
        out += _content(partial, ("partial_query",))
    return out


def opaque(doc: Any) -> list[Path]:
    out: list[Path] = []
    for i, msg in enumerate(doc.get("messages") or [] if isinstance(doc, dict) else []):
        content = msg.get("content") if isinstance(msg, dict) else None
        parts = (content.get("parts") or []) if isinstance(content, dict) else []  # or a plain string
        out += [("messages", i, "content", "parts", j) for j, p in enumerate(parts) if isinstance(p, dict)]
    return out


def reply_events(text: str) -> list[str]:
    """An assistant message in the ``v1`` delta encoding, as the chat page renders it."""
    message = {
        "id": str(uuid.uuid4()), "author": {"role": "assistant", "name": None, "metadata": {}},
        "create_time": time.time(), "update_time": None,
        "content": {"content_type": "text", "parts": [""]}, "status": "in_progress", "end_turn": None,
        "weight": 1.0, "metadata": {"is_complete": True}, "recipient": "all", "channel": None,
    }
    return [
        sse_event('"v1"', "delta_encoding"),
        sse_event({"p": "", "o": "add", "v": {"message": message, "error": None}, "c": 0}, "delta"),
        sse_event({"p": "/message/content/parts/0", "o": "append", "v": text}, "delta"),
        sse_event({"p": "", "o": "patch", "v": [
            {"p": "/message/status", "o": "replace", "v": "finished_successfully"},
            {"p": "/message/end_turn", "o": "replace", "v": True}]}, "delta"),
        sse_event({"type": "message_stream_complete"}),
        sse_event("[DONE]"),
    ]


class ChatGPTWebFormat(generic.JsonApiFormat):
    name = "chatgpt_web"
    select = staticmethod(select)
    opaque = staticmethod(opaque)


    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        if streaming:
            return sse_reply(reply_events(short_message(notice)))
        return json_reply(403, {"detail": short_message(notice)})
