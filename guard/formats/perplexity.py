"""Perplexity web app: ``POST /rest/sse/perplexity_ask``.

Request shape (2025 DevTools capture published in public client projects): ``{"params": {...,
"dsl_query": "...", "attachments": [urls]}, "query_str": "..."}``; the reply is SSE ``event: message``
with the thread state (``status``, ``text_completed``, ``blocks``, ``final_sse_message``). The exact
answer-block layout is not publicly documented: the block reply is best effort.
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
    if not isinstance(doc, dict) or "query_str" not in doc:
        return all_strings(doc, ())
    out: list[Path] = [("query_str",)] if isinstance(doc.get("query_str"), str) else []
    params = doc.get("params")
    if isinstance(params, dict) and isinstance(params.get("dsl_query"), str):
        out.append(("params", "dsl_query"))
    return out


class PerplexityFormat(generic.JsonApiFormat):
    name = "perplexity"
    select = staticmethod(select)


    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        text = short_message(notice)
        if not streaming:
            return json_reply(403, {"detail": text})
        state = {
            "uuid": str(uuid.uuid4()), "status": "COMPLETED", "text_completed": True,
            "final_sse_message": True,
            "blocks": [{"intended_usage": "ask_text", "markdown_block": {
                "progress": "DONE", "chunks": [text], "answer": text}}],
            "text": text,
        }
        return sse_reply([sse_event(state, "message"), sse_event({}, "end_of_stream")])
