"""Claude web app: ``POST /api/organizations/{org}/chat_conversations/{conv}/completion`` (and retry).

Request shape (public 2025 captures of claude.ai's internal API): ``{"prompt": "...",
"parent_message_uuid": ..., "attachments": [{"file_name", "file_type", "file_size",
"extracted_content": "..."}], "files": [uuid...], "rendering_mode": "messages", ...}``. With
``rendering_mode: messages`` the reply is an SSE stream of Anthropic Messages events. Other
endpoints on the host fall back to the generic walk.
"""

from __future__ import annotations

import uuid
from typing import Any

from guard.formats import generic
from guard.formats._reply import json_reply, sse_event, sse_reply
from guard.formats._select import all_strings
from guard.formats._tree import Path
from guard.formats.base import NativeResponse
from guard.notice import BlockNotice, short_message


def select(doc: Any) -> list[Path]:
    if not isinstance(doc, dict) or "prompt" not in doc:
        return all_strings(doc, ())
    out: list[Path] = [("prompt",)] if isinstance(doc.get("prompt"), str) else []
    for i, att in enumerate(doc.get("attachments") or []):
        if isinstance(att, dict) and isinstance(att.get("extracted_content"), str):
            out.append(("attachments", i, "extracted_content"))
    completion = doc.get("completion")  # 2023 shape: {"completion": {"prompt": ...}}
    if isinstance(completion, dict) and isinstance(completion.get("prompt"), str):
        out.append(("completion", "prompt"))
    if isinstance(doc.get("text"), str):
        out.append(("text",))
    return out


def reply_events(text: str) -> list[str]:
    """A complete assistant message as Anthropic Messages stream events (``rendering_mode: messages``)."""
    msg_uuid = str(uuid.uuid4())
    return [
        sse_event({"type": "message_start", "message": {
            "id": f"chatcompl_{msg_uuid.replace('-', '')[:24]}", "type": "message", "role": "assistant",
            "model": "", "uuid": msg_uuid, "content": [], "stop_reason": None}}, "message_start"),
        sse_event({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": "", "citations": []}}, "content_block_start"),
        sse_event({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": text}}, "content_block_delta"),
        sse_event({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse_event({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}},
                  "message_delta"),
        sse_event({"type": "message_stop"}, "message_stop"),
    ]


class ClaudeWebFormat(generic.JsonApiFormat):
    name = "claude_web"
    select = staticmethod(select)


    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        if streaming:
            return sse_reply(reply_events(short_message(notice)))
        return json_reply(403, {"type": "error", "error": {
            "type": "permission_error", "message": short_message(notice)}})
