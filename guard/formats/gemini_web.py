"""Gemini web app: ``POST /_/BardChatUi/data/assistant.lamda.BardFrontendService/StreamGenerate``.

The body is form-encoded: ``f.req`` holds a JSON array ``[null, "<inner JSON>"]`` and the prompt sits
at ``inner[0][0]`` (``[prompt, 0, null, files, ...]``), as built by HanaokaYuzu/Gemini-API
(``src/gemini_webapi/client.py``); ``at`` is the XSRF token. Both JSON layers are decoded, the
prompt replaced, and re-encoded. Unknown ``f.req`` shapes (e.g. ``batchexecute`` RPCs) get the generic
walk of every decoded string. The reply is ``)]}'`` followed by length-prefixed ``wrb.fr`` frames.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from guard.formats import generic
from guard.formats._tree import Form, Path, form_request, generic_paths, text_at
from guard.formats.base import NativeResponse, ParsedRequest, rewrite_parsed
from guard.notice import BlockNotice, short_message

_SKIP_FIELDS = frozenset({"at", "bl", "_reqid", "rt", "f.sid"})


def select(form: Any) -> list[Path]:
    if not isinstance(form, Form):
        return generic_paths(form)
    everything = generic_paths(form)
    out: list[Path] = []
    for i, f in enumerate(form.fields):
        if f.key in _SKIP_FIELDS:
            continue
        if f.key == "f.req" and text_at(form, (i, 1, 0, 0)):
            out.append((i, 1, 0, 0))  # StreamGenerate: the prompt only, not tokens and ids
        else:
            out += [p for p in everything if p[0] == i]
    return out


def _frame(payload: Any) -> str:
    line = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n"
    return f"{len(line.encode('utf-16-le')) // 2}\n{line}"


def reply_body(text: str) -> bytes:
    """A StreamGenerate reply whose single candidate is ``text`` (``body[4][0][1][0]``)."""
    inner = [None, ["c_guard", "r_guard"], None, None, [["rc_guard", [text]]]]
    frame = [["wrb.fr", None, json.dumps(inner, ensure_ascii=False, separators=(",", ":"))]]
    return (")]}'\n\n" + _frame(frame)).encode("utf-8")


class GeminiWebFormat:
    name = "gemini_web"

    def extract(self, body: bytes, content_type: str, path: str) -> ParsedRequest:
        if generic.FORM in content_type.lower():
            return form_request(self.name, body, select, decode_nested=generic.nested_json)
        return generic.extract_any(self.name, body, content_type)

    def rewrite(self, parsed: ParsedRequest, new_texts: Sequence[str]) -> bytes:
        return rewrite_parsed(parsed, new_texts)

    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        return NativeResponse(200, (("content-type", "application/json; charset=utf-8"),
                                    ("cache-control", "no-store")), reply_body(short_message(notice)))
