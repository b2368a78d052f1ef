"""Google Gemini API request format: generateContent, streamGenerateContent, countTokens, embedContent.

Shapes follow the Gemini REST reference (``models.generateContent``: ``contents[].parts[].text``,
``systemInstruction``; ``models.embedContent``: ``content.parts[].text``; ``batchEmbedContents``:
``requests[]``). The REST API also accepts snake_case field names (``system_instruction``), as the
``google-genai`` SDK sends them. Vertex AI uses the same bodies.
"""

from __future__ import annotations

from typing import Any

from guard.formats import generic
from guard.formats._reply import json_reply
from guard.formats._select import all_strings
from guard.formats._tree import Path
from guard.formats.base import NativeResponse
from guard.notice import BlockNotice, short_message

_CALL_KEYS = (("functionCall", "args"), ("function_call", "args"),
              ("functionResponse", "response"), ("function_response", "response"))


def _content(content: Any, path: Path) -> list[Path]:
    if isinstance(content, str):  # the SDKs' shorthand, accepted by some gateways
        return [path]
    if not isinstance(content, dict):
        return []
    out: list[Path] = []
    for i, part in enumerate(content.get("parts") or []):
        if not isinstance(part, dict):
            continue
        here = (*path, "parts", i)
        if isinstance(part.get("text"), str) and not part.get("thought"):
            out.append((*here, "text"))
        for outer, inner in _CALL_KEYS:
            value = (part.get(outer) or {}).get(inner)
            if isinstance(value, dict | list):
                out += all_strings(value, (*here, outer, inner))
    return out


def select(doc: Any) -> list[Path]:
    if not isinstance(doc, dict):
        return all_strings(doc, ())
    out: list[Path] = []
    for key in ("systemInstruction", "system_instruction"):
        if key in doc:
            out += _content(doc[key], (key,))
    for i, content in enumerate(doc.get("contents") or []):
        out += _content(content, ("contents", i))
    if "content" in doc:
        out += _content(doc["content"], ("content",))
    for i, request in enumerate(doc.get("requests") or []):
        if isinstance(request, dict):
            out += [(("requests", i, *p)) for p in select(request)]
    known = {"contents", "content", "requests", "systemInstruction", "system_instruction"}
    if not out and not known & doc.keys():
        return all_strings(doc, ())
    return out


_BINARY_PARTS = frozenset({"inlineData", "inline_data", "fileData", "file_data"})


def opaque(doc: Any) -> list[Path]:
    out: list[Path] = []
    for i, content in enumerate(doc.get("contents") or [] if isinstance(doc, dict) else []):
        for j, part in enumerate(content.get("parts") or [] if isinstance(content, dict) else []):
            if isinstance(part, dict) and _BINARY_PARTS & part.keys():
                out.append(("contents", i, "parts", j))
    return out


class GeminiFormat(generic.JsonApiFormat):
    name = "gemini"
    select = staticmethod(select)
    opaque = staticmethod(opaque)


    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        # google.rpc.Status as the REST API returns it; the SDKs raise ClientError on 4xx before streaming.
        return json_reply(403, {"error": {
            "code": 403, "message": short_message(notice), "status": "PERMISSION_DENIED"}})
