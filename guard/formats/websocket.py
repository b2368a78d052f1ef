"""WebSocket messages to AI services: every message read through its framing, text or binary.

Framings decoded before detection, so no escaped text is inspected as it is: SignalR's JSON hub
protocol (records ended by ``\\x1e``, used by the Bing and Microsoft 365 Copilot chat hubs), Socket.IO
packets (``42["event", ...]``), JSON lines, plain JSON (Copilot's ``{"event": ...}`` messages and any
other shape, JSON nested in strings included) and plain text. A binary message is read as UTF-8 text; one that
is not text is returned with nothing inspected and named in ``uninspected``, so the caller applies
the service's ``unreadable`` rule. mitmproxy hands over fragmented messages already joined.

Notices go back in the shape the client reads: Copilot events, a SignalR completion of the client's
own invocation (``update`` + completion + close records), or plain text.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from guard.formats import copilot, embedded, generic
from guard.formats._framing import signalr_message, signalr_records
from guard.formats.base import FormatError, ParsedRequest, rewrite_parsed
from guard.formats.restore import WsMessageRestorer
from guard.notice import BlockNotice, short_message

#: Socket.IO: a packet type (and optional namespace and ack id) before a JSON payload.
_SOCKET_IO = re.compile(r"^(\d+(?:/[^,\[{]*,)?\d*)(?=[\[{])")

#: SignalR message types (ASP.NET Core SignalR hub protocol).
_INVOCATION, _STREAM_ITEM, _COMPLETION, _STREAM_INVOCATION = 1, 2, 3, 4


def extract_ws_message(api: str, content: bytes, is_text: bool = True) -> ParsedRequest:
    """The segments of one client message; a binary message that is not UTF-8 is ``uninspected``."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        if is_text:
            raise FormatError("text WebSocket message is not UTF-8") from None
        return ParsedRequest(api, content, (), ("binary WebSocket message",))
    return _text_message(api, text)


def may_hold_files(content: bytes) -> bool:
    """Whether reading this message may mean reading a file (base64 of a PDF, a zip, compressed data):
    such a message is read in an inspection worker, like an upload, never on the event loop."""
    return embedded.may_hold_files(content)


@dataclass(frozen=True)
class MessageReader:
    """One client message of a service's WebSocket, read the way ``InspectionPool.extract`` reads a
    body (``name`` is the service's api)."""

    name: str
    is_text: bool = True

    def extract(self, body: bytes, content_type: str = "", path: str = "") -> ParsedRequest:
        return extract_ws_message(self.name, body, self.is_text)


def rewrite_ws_message(parsed: ParsedRequest, new_texts: Sequence[str]) -> bytes:
    return rewrite_parsed(parsed, new_texts)


def _text_message(api: str, text: str) -> ParsedRequest:
    # SignalR records, or several JSON documents one a line: each read like a message of its own
    framed = generic.framed_request(api, text.encode("utf-8"), lambda record: _one(api, record))
    if framed is not None:
        return framed
    socket_io = _SOCKET_IO.match(text)
    if socket_io and _is_json(text[socket_io.end():]):
        head = socket_io.group(1)
        packet = generic.extract_ws_message(text[len(head):], api)
        return generic.joined_request(api, text, [packet], "", "packet", head)
    return _one(api, text)


def _one(api: str, text: str) -> ParsedRequest:
    if api == copilot.CopilotFormat.name:
        return copilot.extract_ws_message(text)
    return generic.extract_ws_message(text, api)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


# ------------------------------------------------------------------ notices

def block_ws_messages(api: str, notice: BlockNotice, client_message: bytes = b"") -> list[str]:
    """Server messages that show the notice as the app's own reply to ``client_message``."""
    text = short_message(notice)
    try:
        records = signalr_records(client_message.decode("utf-8"))
    except UnicodeDecodeError:
        records = None
    if records is not None:
        return [_signalr_notice(records, text)]
    if api == copilot.CopilotFormat.name:
        return copilot.block_ws_messages(notice)
    return [text]


def _signalr_notice(records: list[str], text: str) -> str:
    """The records a Bing/M365 chat hub sends for an answer: update, completion item, completion."""
    invocation_id, request_id = "0", str(uuid.uuid4())
    for record in records:
        try:
            doc = json.loads(record)
        except (ValueError, RecursionError):
            continue
        if isinstance(doc, dict) and doc.get("type") in (_INVOCATION, _STREAM_INVOCATION) \
                and doc.get("invocationId") is not None:
            invocation_id = str(doc["invocationId"])
            arguments = doc.get("arguments") or [{}]
            if isinstance(arguments[0], dict) and isinstance(arguments[0].get("traceId"), str):
                request_id = arguments[0]["traceId"]
    message = _bot_message(text, request_id)
    out: list[Any] = [
        {"type": _INVOCATION, "target": "update",
         "arguments": [{"messages": [message], "requestId": request_id}]},
        {"type": _STREAM_ITEM, "invocationId": invocation_id, "item": {
            "messages": [message], "firstNewMessageIndex": 0, "requestId": request_id,
            "result": {"value": "Success", "message": text}}},
        {"type": _COMPLETION, "invocationId": invocation_id},
    ]
    return signalr_message(out)


def _bot_message(text: str, request_id: str) -> dict[str, Any]:
    return {"text": text, "author": "bot", "messageId": str(uuid.uuid4()), "requestId": request_id,
            "contentOrigin": "guard", "messageType": "Chat",
            "adaptiveCards": [{"type": "AdaptiveCard", "version": "1.0",
                               "body": [{"type": "TextBlock", "text": text, "wrap": True}]}]}


# ------------------------------------------------------------------ replies

def restore_ws_message(restorer: WsMessageRestorer, content: bytes, is_text: bool) -> list[bytes] | None:
    """The messages to send in place of one server message (``None``: leave it as it is)."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None  # binary data, not text: nothing of ours can be in it as a placeholder
    return [m.encode("utf-8") for m in restorer.feed(text)]
