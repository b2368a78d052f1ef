"""Gemini web app: ``POST /_/BardChatUi/data/assistant.lamda.BardFrontendService/StreamGenerate``.

The body is form-encoded: ``f.req`` holds a JSON array ``[null, "<inner JSON>"]`` and the prompt sits
at ``inner[0][0]`` (``[prompt, 0, null, files, ...]``), as built by HanaokaYuzu/Gemini-API
(``src/gemini_webapi/client.py``); ``at`` is the XSRF token. Both JSON layers are decoded, the
prompt replaced, and re-encoded. Unknown ``f.req`` shapes (e.g. ``batchexecute`` RPCs) get the generic
walk of every decoded string. The reply is ``)]}'`` followed by length-prefixed ``wrb.fr`` frames
(``guard.formats._framing``); the block, warn and failure notices are such a reply, shown as Gemini's answer.

A ``batchexecute`` call (``?rpcids=oMH3Zd,...``: gems with their instructions, chat titles, ...) is
answered in its own framing: for each RPC the client asked for, a ``wrb.fr`` envelope with no payload
and the status ``[7, notice]`` (``google.rpc.Status``: PERMISSION_DENIED and its message) where
Google puts an RPC's error, then the ``di``/``af.httprm`` frames. The HTTP status stays 200:
``gemini_webapi`` retries any other status (``_batch_execute`` raises ``APIError``), the status tells
it this RPC failed, and the message is the notice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from guard.formats import generic
from guard.formats._framing import XSSI_PREFIX, google_frame
from guard.formats._tree import Form, Path, dumps, form_request, generic_paths, parse_form, text_at
from guard.formats.base import FormatError, NativeResponse, ParsedRequest, rewrite_parsed
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


def _inner_reply(text: str) -> list[Any]:
    """A ``StreamGenerate`` body whose only candidate is ``text``, complete and saved.

    What ``gemini_webapi`` (2.x) reads: ``[1]`` = [conversation id, response id]; ``[4]`` = candidates,
    each ``[rcid, [text], ..., [8] = [2]]`` (2 = the answer is complete); ``[25]`` = the context string
    that marks the final frame (the turn was saved), so the client does not try to recover it.
    """
    candidate: list[Any] = ["rc_guard", [text], None, None, None, None, None, None, [2]]
    inner: list[Any] = [None] * 26
    inner[1] = ["c_guard", "r_guard"]
    inner[4] = [candidate]
    inner[25] = "guard_notice"
    return inner


def reply_body(text: str) -> bytes:
    """The whole ``StreamGenerate`` reply: ``)]}'``, the answer frame and Google's closing frame."""
    answer = [["wrb.fr", None, dumps(_inner_reply(text))]]
    closing = [["di", 1], ["af.httprm", 1, "0", 0]]
    return (XSSI_PREFIX + "\n\n" + google_frame(answer) + google_frame(closing)).encode("utf-8")


#: ``google.rpc.Code.PERMISSION_DENIED``, the status of an RPC refused for its content.
PERMISSION_DENIED = 7


def batchexecute_rpc_ids(path: str, body: bytes) -> list[str]:
    """The RPC ids a ``batchexecute`` call asks for: ``?rpcids=`` or, failing that, ``f.req``'s envelopes."""
    query = parse_qs(urlsplit(path).query)
    ids = [i for v in query.get("rpcids", []) for i in v.split(",") if i]
    if ids:
        return ids
    try:
        fields = {f.key: f.value for f in parse_form(body).fields}
        envelopes = json.loads(fields.get("f.req", ""))[0]
        return [str(e[0]) for e in envelopes if isinstance(e, list) and e and isinstance(e[0], str)]
    except (FormatError, ValueError, TypeError, IndexError, KeyError, RecursionError):
        return []


def batchexecute_reply(text: str, rpc_ids: Sequence[str]) -> bytes:
    """A ``batchexecute`` reply refusing each RPC with the notice as its status message."""
    envelopes: list[Any] = [["wrb.fr", rpc_id, None, None, None, [PERMISSION_DENIED, text], "generic"]
                            for rpc_id in rpc_ids or ["generic"]]
    closing = [["di", 1], ["af.httprm", 1, "0", 0]]
    return (XSSI_PREFIX + "\n\n" + google_frame([*envelopes, *closing])).encode("utf-8")


_GOOGLE_JSON = (("content-type", "application/json; charset=utf-8"), ("cache-control", "no-store"))


class GeminiWebFormat:
    name = "gemini_web"

    def extract(self, body: bytes, content_type: str, path: str) -> ParsedRequest:
        if generic.FORM in content_type.lower():
            return form_request(self.name, body, select, decode_nested=generic.nested_json)
        return generic.extract_any(self.name, body, content_type)

    def rewrite(self, parsed: ParsedRequest, new_texts: Sequence[str]) -> bytes:
        return rewrite_parsed(parsed, new_texts)

    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        return NativeResponse(200, _GOOGLE_JSON, reply_body(short_message(notice)))

    def block_response_to(self, notice: BlockNotice, streaming: bool, path: str,
                          body: bytes) -> NativeResponse:
        """The notice in the shape of the call it answers: a ``batchexecute`` RPC, or a streamed answer."""
        if "/batchexecute" not in urlsplit(path).path:
            return self.block_response(notice, streaming)
        ids = batchexecute_rpc_ids(path, body)
        return NativeResponse(200, _GOOGLE_JSON, batchexecute_reply(short_message(notice), ids))
