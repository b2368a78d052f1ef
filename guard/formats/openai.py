"""OpenAI request format: Chat Completions, Responses, legacy Completions, Embeddings, Moderations.

Also serves Azure OpenAI and the OpenAI-compatible APIs of other vendors (same bodies). Shapes follow the
OpenAI API reference and ``openai-python``'s ``types/chat/chat_completion_*_param.py`` and
``types/responses/response_input_param.py``: message ``content`` is a string or a list of parts
(``text`` / ``input_text`` / ``output_text`` / ``refusal``); tool-call ``arguments`` are JSON strings.
"""

from __future__ import annotations

from typing import Any

from guard.formats import generic
from guard.formats._reply import json_reply
from guard.formats._select import all_strings, string_list, text_or_parts
from guard.formats._tree import Path
from guard.formats.base import NativeResponse
from guard.notice import BlockNotice, short_message

TEXT_PARTS = frozenset({"text", "input_text", "output_text", "refusal"})
OPAQUE_PARTS = frozenset({"image_url", "input_image", "input_audio", "file", "input_file"})


def _message(msg: Any, path: Path) -> list[Path]:
    if not isinstance(msg, dict):
        return []
    out = text_or_parts(msg.get("content"), (*path, "content"), TEXT_PARTS)
    if isinstance(msg.get("refusal"), str):
        out.append((*path, "refusal"))
    for i, call in enumerate(msg.get("tool_calls") or []):
        if isinstance(call, dict) and isinstance((call.get("function") or {}).get("arguments"), str):
            out.append((*path, "tool_calls", i, "function", "arguments"))
    if isinstance((msg.get("function_call") or {}).get("arguments"), str):
        out.append((*path, "function_call", "arguments"))
    return out


def _response_item(item: Any, path: Path) -> list[Path]:
    """One item of the Responses API ``input`` list."""
    if isinstance(item, str):
        return [path]
    if not isinstance(item, dict):
        return []
    kind = item.get("type", "message")
    if kind == "message" or "role" in item:
        return text_or_parts(item.get("content"), (*path, "content"), TEXT_PARTS)
    if kind in ("function_call", "custom_tool_call") and isinstance(item.get("arguments"), str):
        return [(*path, "arguments")]
    if kind == "custom_tool_call" and isinstance(item.get("input"), str):
        return [(*path, "input")]
    if kind.endswith("_output") and "output" in item:
        out = item["output"]
        return text_or_parts(out, (*path, "output"), TEXT_PARTS)
    return []


def select(doc: Any) -> list[Path]:
    """The user-visible strings of any OpenAI-style body; every string when the shape is unknown."""
    if not isinstance(doc, dict):
        return all_strings(doc, ())
    out: list[Path] = []
    for i, msg in enumerate(doc.get("messages") or []):
        out += _message(msg, ("messages", i))
    if isinstance(doc.get("instructions"), str):
        out.append(("instructions",))
    inp = doc.get("input")
    if isinstance(inp, list) and any(isinstance(x, dict) for x in inp):
        for i, item in enumerate(inp):
            out += _response_item(item, ("input", i))
    elif inp is not None:
        out += string_list(inp, ("input",))
    out += string_list(doc.get("prompt"), ("prompt",))
    out += string_list(doc.get("suffix"), ("suffix",))
    known = {"messages", "input", "prompt", "instructions", "suffix"}
    if not out and not known & doc.keys():
        return all_strings(doc, ())
    return out


def opaque(doc: Any) -> list[Path]:
    """Images, audio and inline files: not inspected as text; the caller applies the unreadable policy."""
    out: list[Path] = []
    containers: list[tuple[Path, Any]] = []
    if isinstance(doc, dict):
        containers += [(("messages", i, "content"), m.get("content"))
                       for i, m in enumerate(doc.get("messages") or []) if isinstance(m, dict)]
        if isinstance(doc.get("input"), list):
            containers += [(("input", i, "content"), it.get("content"))
                           for i, it in enumerate(doc["input"]) if isinstance(it, dict)]
    for path, content in containers:
        if isinstance(content, list):
            out += [(*path, j) for j, part in enumerate(content)
                    if isinstance(part, dict) and part.get("type") in OPAQUE_PARTS]
    return out


class OpenAIFormat(generic.JsonApiFormat):
    name = "openai"
    select = staticmethod(select)
    opaque = staticmethod(opaque)


    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        # SDKs check the status before reading a stream, so a 403 error object serves both cases
        # (openai-python raises PermissionDeniedError with ``body["error"]``).
        return json_reply(403, {"error": {
            "message": short_message(notice),
            "type": "guard_policy_violation",
            "param": None,
            "code": notice.reason_code,
        }})
