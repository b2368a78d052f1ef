"""Meta AI web app: ``POST https://www.meta.ai/api/graphql/`` (guests: ``graph.meta.ai/graphql``).

The body is form-encoded GraphQL (the ``meta-ai-api`` package): ``fb_api_req_friendly_name=
useAbraSendMessageMutation``, ``doc_id``, tokens, and ``variables`` holding JSON whose
``message.sensitive_string_value`` is the prompt. Every field is walked, JSON inside fields decoded.
The reply is JSON lines, each ``{"data": {"node": {"bot_response_message": {"streaming_state",
"composed_text": {"content": [{"text"}]}}}}}`` with the text so far; clients keep the line whose
``streaming_state`` is ``OVERALL_DONE``, so notices are that line.
"""

from __future__ import annotations

from collections.abc import Sequence

from guard.formats import generic
from guard.formats._tree import dumps
from guard.formats.base import NativeResponse, ParsedRequest, rewrite_parsed
from guard.notice import BlockNotice, short_message


def reply_line(text: str) -> bytes:
    message = {"id": "guard_notice_0", "streaming_state": "OVERALL_DONE", "fetch_id": None,
               "composed_text": {"content": [{"text": text}]}, "imagine_card": None}
    return (dumps({"data": {"node": {"bot_response_message": message}}}) + "\n").encode("utf-8")


class MetaAIFormat:
    name = "meta_ai"

    def extract(self, body: bytes, content_type: str, path: str) -> ParsedRequest:
        return generic.extract_any(self.name, body, content_type)

    def rewrite(self, parsed: ParsedRequest, new_texts: Sequence[str]) -> bytes:
        return rewrite_parsed(parsed, new_texts)

    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        return NativeResponse(200, (("content-type", "application/json; charset=utf-8"),
                                    ("cache-control", "no-store")), reply_line(short_message(notice)))
