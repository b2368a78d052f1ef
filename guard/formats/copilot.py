"""Microsoft Copilot (consumer) web app: JSON text messages on ``wss://copilot.microsoft.com/c/api/chat``.

The client sends ``{"event": "send", "conversationId": ..., "content": [{"type": "text", "text":
"..."}], "mode": "chat"}``; the server answers ``received``, ``startMessage``, ``appendText`` (with
``text``), ``partCompleted`` and ``done`` (xtekky/gpt4free ``g4f/Provider/Copilot.py`` and other public
clients). HTTP requests on the host (conversation creation, attachments) use the generic walk.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from guard.formats import generic
from guard.formats._select import all_strings
from guard.formats._tree import Path, dumps, json_request
from guard.formats.base import NativeResponse, ParsedRequest, rewrite_parsed
from guard.notice import BlockNotice, short_message

#: Client events that carry no user text.
SILENT_EVENTS = frozenset({"setOptions", "challengeResponse", "reportLocalConsents", "ping", "pong", "stop"})


def select(doc: Any) -> list[Path]:
    if not isinstance(doc, dict):
        return all_strings(doc, ())
    event = doc.get("event")
    if event in SILENT_EVENTS:
        return []
    if event == "send":
        return [("content", i, "text") for i, part in enumerate(doc.get("content") or [])
                if isinstance(part, dict) and part.get("type", "text") == "text"
                and isinstance(part.get("text"), str)]
    return all_strings(doc, ())


def extract_ws_message(text: str) -> ParsedRequest:
    """Segments of one client WebSocket message (non-JSON messages are inspected as text)."""
    body = text.encode("utf-8")
    try:
        json.loads(text)
    except ValueError:
        return generic.extract_ws_message(text, CopilotFormat.name)
    return json_request(CopilotFormat.name, body, select)


def rewrite_ws_message(parsed: ParsedRequest, new_texts: Sequence[str]) -> str:
    return rewrite_parsed(parsed, new_texts).decode("utf-8")


def block_ws_messages(notice: BlockNotice) -> list[str]:
    """Server messages that show the notice as Copilot's reply, instead of forwarding the prompt."""
    mid = str(uuid.uuid4())
    return [dumps(m) for m in (
        {"event": "startMessage", "messageId": mid},
        {"event": "appendText", "messageId": mid, "partId": "0", "text": short_message(notice)},
        {"event": "partCompleted", "messageId": mid, "partId": "0"},
        {"event": "done", "messageId": mid},
    )]


class CopilotFormat:
    name = "copilot"

    def extract(self, body: bytes, content_type: str, path: str) -> ParsedRequest:
        return generic.extract_any(self.name, body, content_type)

    def rewrite(self, parsed: ParsedRequest, new_texts: Sequence[str]) -> bytes:
        return rewrite_parsed(parsed, new_texts)

    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        return generic.GenericFormat().block_response(notice, streaming)
