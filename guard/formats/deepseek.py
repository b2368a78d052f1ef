"""DeepSeek web app: ``POST https://chat.deepseek.com/api/v0/chat/completion``.

Request shape (public 2025 capture): ``{"chat_session_id", "parent_message_id", "prompt": "...",
"ref_file_ids": [], "thinking_enabled", "search_enabled", "client_stream_id"}``. The reply is SSE:
``event: ready``, then JSON-patch-like ``{"v": ..., "p": "response/fragments/0/content", "o": "APPEND"}``
events where a bare ``{"v": "..."}`` continues the previous path, then ``event: finish`` / ``close``.
The DeepSeek *API* (api.deepseek.com) is OpenAI-compatible: catalogue it with ``api: openai``.
"""

from __future__ import annotations

from typing import Any

from guard.formats import generic
from guard.formats._reply import json_reply, sse_event, sse_reply
from guard.formats._select import all_strings
from guard.formats._tree import Path
from guard.formats.base import NativeResponse
from guard.notice import BlockNotice, short_message


def select(doc: Any) -> list[Path]:
    if isinstance(doc, dict) and isinstance(doc.get("prompt"), str):
        return [("prompt",)]
    return all_strings(doc, ())


class DeepSeekWebFormat(generic.JsonApiFormat):
    name = "deepseek"
    select = staticmethod(select)


    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        text = short_message(notice)
        if not streaming:
            return json_reply(403, {"code": 40300, "msg": text, "data": None})
        return sse_reply([
            sse_event({"request_message_id": 1, "response_message_id": 2}, "ready"),
            sse_event({"v": {"response": {
                "message_id": 2, "parent_id": 1, "role": "ASSISTANT", "status": "WIP",
                "fragments": [{"id": 1, "type": "RESPONSE", "content": text}]}}}),
            sse_event({"v": "FINISHED", "p": "response/status", "o": "SET"}),
            sse_event({}, "finish"),
            sse_event({"click_behavior": "none", "auto_resume": False}, "close"),
        ])
