"""Mistral Le Chat web app (chat.mistral.ai): the tRPC calls and the ``/api/chat`` stream.

Shapes, from public clients of the web and mobile app (2025-2026 captures): a new chat starts with
``POST /api/trpc/message.newChat?batch=1``, a tRPC batch with superjson envelopes,
``{"0": {"json": {"content": [{"type": "text", "text": "..."}], "chatId": null, ...}, "meta": {...}}}``
(older clients send ``content`` as a string); the answer is then asked for with ``POST /api/chat``
``{"chatId", "mode": "start"}``, and a follow-up carries the prompt there:
``{"chatId", "mode": "append", "messageId", "messageInput": [{"type": "text", "text": "..."}], ...}``
(a string in older clients). The ``/api/chat`` reply is numbered lines, ``15:{"json": {...}}``:
a ``bootstrap`` record, then ``message`` records whose JSON-patch ``patches`` build the answer
(``replace /contentChunks`` with the first text, ``append /contentChunks/N/text`` for the rest,
``replace /generationStatus``), and ``8:null`` to end. Since a new chat's answer comes back on
another request than its prompt, replies are restored with the user's recent map (``replies_elsewhere``).

Notices: ``/api/chat`` gets such a stream (an empty text chunk, then the notice appended, so clients
that only read appends show it too); a tRPC call gets tRPC's own error, ``[{"error": {"json":
{"message": notice, "data": {"code": "FORBIDDEN", "httpStatus": 403, "path": ...}}}}]`` with status
403, which the app's tRPC client raises with that message.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from guard.formats import generic
from guard.formats._reply import json_reply
from guard.formats._select import all_strings, text_or_parts
from guard.formats._tree import Path, dumps
from guard.formats.base import NativeResponse
from guard.notice import BlockNotice, short_message

_TEXT_PARTS = frozenset({"text"})
TRPC_PREFIX = "/api/trpc/"
#: The line number Le Chat's stream puts before every record, and the one that ends it.
RECORD_LINE, END_LINE = "15", "8"


def select(doc: Any) -> list[Path]:
    """``messageInput`` of ``/api/chat``; ``content`` of each tRPC call in a batch; else every string."""
    if isinstance(doc, dict) and "messageInput" in doc:
        return text_or_parts(doc["messageInput"], ("messageInput",), _TEXT_PARTS)
    items = doc.items() if isinstance(doc, dict) else ()
    calls = [(key, call["json"]) for key, call in items
             if isinstance(call, dict) and isinstance(call.get("json"), dict)]
    if calls:
        out: list[Path] = []
        for key, payload in calls:
            if "content" in payload:
                out += text_or_parts(payload["content"], (key, "json", "content"), _TEXT_PARTS)
            else:
                out += all_strings(payload, (key, "json"))
        return out
    return all_strings(doc, ())


def _record(payload: dict[str, Any]) -> str:
    return f"{RECORD_LINE}:{dumps({'json': payload})}\n"


def chat_stream(text: str) -> bytes:
    """A whole ``/api/chat`` answer whose text is ``text``."""
    message_id = str(uuid.uuid4())
    head = {"type": "message", "messageId": message_id, "messageVersion": 0}
    records = [
        {**head, "patches": [{"op": "replace", "path": "/", "value": {
            "role": "assistant", "id": message_id, "version": 0, "content": "", "contentChunks": None,
            "generationStatus": "in-progress"}}]},
        {**head, "patches": [{"op": "replace", "path": "/contentChunks",
                              "value": [{"type": "text", "text": "", "_context": None}]}]},
        {**head, "patches": [{"op": "append", "path": "/contentChunks/0/text", "value": text}]},
        {**head, "patches": [{"op": "replace", "path": "/generationStatus", "value": "success"}]},
    ]
    return ("".join(_record(r) for r in records) + f"{END_LINE}:null\n").encode("utf-8")


def trpc_error(text: str, path: str) -> NativeResponse:
    """tRPC's batch error for each procedure of the call (``/api/trpc/a,b?batch=1``)."""
    procedures = urlsplit(path).path.removeprefix(TRPC_PREFIX).split(",")
    errors = [{"error": {"json": {"message": text, "code": -32003, "data": {
        "code": "FORBIDDEN", "httpStatus": 403, "path": procedure}}}} for procedure in procedures]
    return json_reply(403, errors)


class LeChatFormat(generic.JsonApiFormat):
    name = "le_chat"
    select = staticmethod(select)
    #: A new chat's prompt goes with ``message.newChat``; its answer comes with the next ``/api/chat``.
    replies_elsewhere = True

    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        return NativeResponse(200, (("content-type", "text/event-stream; charset=utf-8"),
                                    ("cache-control", "no-cache")), chat_stream(short_message(notice)))

    def block_response_to(self, notice: BlockNotice, streaming: bool, path: str,
                          body: bytes) -> NativeResponse:
        if urlsplit(path).path.startswith(TRPC_PREFIX):
            return trpc_error(short_message(notice), path)
        return self.block_response(notice, streaming)
