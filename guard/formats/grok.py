"""Grok web app: ``POST https://grok.com/rest/app-chat/conversations/new`` and ``.../{id}/responses``.

Request shape (public clients, e.g. the ``grok-api`` package): ``{"message": "...", "modelName":
"grok-3", "fileAttachments": [], "imageAttachments": [], "customInstructions": "", ...}``. The reply is
JSON lines: ``{"result": {"conversation": {...}}}``, then ``{"result": {"response": {"token": "...",
"isThinking": false}}}`` per token (follow-ups: ``{"result": {"token": ...}}``), and a final
``modelResponse``. Clients raise on any status but 200, so notices are such a stream.
"""

from __future__ import annotations

from typing import Any

from guard.formats import generic
from guard.formats._select import all_strings
from guard.formats._tree import Path, dumps
from guard.formats.base import NativeResponse
from guard.notice import BlockNotice, short_message

_TEXT_KEYS = ("message", "customInstructions")


def select(doc: Any) -> list[Path]:
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), str):
        return all_strings(doc, ())
    out: list[Path] = [(k,) for k in _TEXT_KEYS if isinstance(doc.get(k), str)]
    for key in ("fileAttachments", "imageAttachments"):  # attachment ids, and any text beside them
        out += all_strings(doc.get(key), (key,)) if isinstance(doc.get(key), list) else []
    return out


def reply_lines(text: str) -> bytes:
    """A whole answer as Grok streams it: conversation, the token (both shapes), the final response."""
    response_id = "guard-notice"
    lines: list[Any] = [
        {"result": {"conversation": {"conversationId": "guard-notice", "title": "guard", "temporary": True}}},
        {"result": {"response": {"token": text, "isThinking": False, "isSoftStop": False,
                                 "responseId": response_id}}},
        {"result": {"token": text, "isThinking": False, "isSoftStop": False, "responseId": response_id}},
        {"result": {"response": {"modelResponse": {"responseId": response_id, "message": text,
                                                   "sender": "ASSISTANT"}}}},
    ]
    return "".join(dumps(line) + "\n" for line in lines).encode("utf-8")


class GrokWebFormat(generic.JsonApiFormat):
    name = "grok_web"
    select = staticmethod(select)

    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        return NativeResponse(200, (("content-type", "application/json; charset=utf-8"),
                                    ("cache-control", "no-store")), reply_lines(short_message(notice)))
