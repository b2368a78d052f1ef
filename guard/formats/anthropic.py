"""Anthropic Messages API (and legacy Text Completions) request format.

Shapes follow the Messages API reference and ``anthropic-sdk-python``'s ``types/message_param.py``,
``text_block_param.py``, ``tool_result_block_param.py`` and ``document_block_param.py``: ``system`` is a
string or text blocks; ``content`` is a string or blocks; ``tool_result.content`` is a string or blocks;
a ``document`` with a ``text`` source carries plain text in ``source.data``. ``thinking`` blocks are
signed by the service and are left alone.
"""

from __future__ import annotations

from typing import Any

from guard.formats import generic
from guard.formats._reply import json_reply
from guard.formats._select import all_strings, text_or_parts
from guard.formats._tree import Path
from guard.formats.base import NativeResponse
from guard.notice import BlockNotice, short_message

TEXT = frozenset({"text"})


def _blocks(content: Any, path: Path) -> list[Path]:
    if isinstance(content, str):
        return [path]
    out: list[Path] = []
    for i, block in enumerate(content if isinstance(content, list) else []):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        here = (*path, i)
        if kind == "text" and isinstance(block.get("text"), str):
            out.append((*here, "text"))
        elif kind == "tool_result":
            out += text_or_parts(block.get("content"), (*here, "content"), TEXT)
        elif kind == "tool_use" and isinstance(block.get("input"), dict | list):
            out += all_strings(block["input"], (*here, "input"))
        elif kind == "document":
            source = block.get("source") or {}
            if source.get("type") == "text" and isinstance(source.get("data"), str):
                out.append((*here, "source", "data"))
            elif source.get("type") == "content":
                out += _blocks(source.get("content"), (*here, "source", "content"))
            for key in ("title", "context"):
                if isinstance(block.get(key), str):
                    out.append((*here, key))
    return out


def select(doc: Any) -> list[Path]:
    if not isinstance(doc, dict):
        return all_strings(doc, ())
    out = _blocks(doc.get("system"), ("system",)) if "system" in doc else []
    for i, msg in enumerate(doc.get("messages") or []):
        if isinstance(msg, dict):
            out += _blocks(msg.get("content"), ("messages", i, "content"))
    if isinstance(doc.get("prompt"), str):
        out.append(("prompt",))
    if not out and not {"messages", "system", "prompt"} & doc.keys():
        return all_strings(doc, ())
    return out


def opaque(doc: Any) -> list[Path]:
    out: list[Path] = []
    for i, msg in enumerate(doc.get("messages") or [] if isinstance(doc, dict) else []):
        content = msg.get("content") if isinstance(msg, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            if not isinstance(block, dict):
                continue
            source = block.get("source") or {}
            if block.get("type") == "image" or (block.get("type") == "document"
                                                and source.get("type") not in ("text", "content")):
                out.append(("messages", i, "content", j))
    return out


class AnthropicFormat(generic.JsonApiFormat):
    name = "anthropic"
    select = staticmethod(select)
    opaque = staticmethod(opaque)


    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        # anthropic-sdk-python maps 403 to PermissionDeniedError; the body is the API's error envelope.
        return json_reply(403, {"type": "error", "error": {
            "type": "permission_error", "message": short_message(notice)}})
