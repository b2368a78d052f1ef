"""Put the original values back in place of placeholders (``<TW_NATIONAL_ID_1>``) in the replies users see.

A placeholder comes back in whatever encoding the reply uses: raw, JSON-escaped (``\\u003cPERSON_1\\u003e``,
which Google's JSON uses, also doubly escaped inside nested JSON), HTML-escaped (``&lt;PERSON_1&gt;``,
``&#60;``) or percent-encoded (``%3CPERSON_1%3E``); the value is written back in the same encoding.
Plain bodies are restored as decoded JSON strings. Streams are restored event by event: a placeholder
split across deltas (``"<PER"`` then ``"SON_1>"``) is held back and sent with the next delta of the same
channel, so every event stays well-formed. Understood deltas: OpenAI chat / completions, Responses
``output_text`` deltas, Anthropic ``text_delta`` (also claude.ai), Gemini candidates (SSE and JSON-array
streaming), ChatGPT/DeepSeek web ``{"p","o","v"}`` patches, Perplexity's markdown ``diff_block`` patches,
Le Chat's ``contentChunks`` patches (numbered JSON lines, ``15:{...}``), claude.ai legacy ``completion``
events and Copilot ``appendText`` messages. Length-prefixed Google frames (Gemini web, ``batchexecute``)
are rewritten with their lengths recomputed; SignalR records one by one; Poe's channel updates with
their cumulative text never ending in half a placeholder. Every other string is restored whole. The
placeholder map is sensitive: it is kept in memory only and never logged (``RecentPlaceholders`` keeps
a user's recent maps a while for answers that come back on another request or connection).
"""

from __future__ import annotations

import codecs
import html
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol
from urllib.parse import quote

from guard.formats._framing import (
    XSSI_PREFIX,
    google_frame_text,
    json_lines,
    signalr_records,
    take_google_frame,
)
from guard.formats._tree import dumps

PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")


def _json_escape(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


#: How a reply may write ``<`` and ``>`` around a placeholder name, and how to write the value there.
_ENCODINGS: tuple[tuple[str, str, str, Callable[[str], str]], ...] = (
    ("raw", "<", ">", lambda v: v),
    ("json", r"\\u003[cC]", r"\\u003[eE]", _json_escape),
    ("json2", r"\\\\u003[cC]", r"\\\\u003[eE]", lambda v: _json_escape(_json_escape(v))),
    ("html", r"&lt;|&#0*60;|&#[xX]0*3[cC];", r"&gt;|&#0*62;|&#[xX]0*3[eE];", lambda v: html.escape(v)),
    ("percent", r"%3[cC]", r"%3[eE]", lambda v: quote(v, safe="")),
)
_ANY_PLACEHOLDER = re.compile("|".join(
    f"(?:(?:{o})(?P<{n}>[A-Z][A-Z0-9_]*_\\d+)(?:{c}))" if n != "raw" else f"<(?P<{n}>[A-Z][A-Z0-9_]*_\\d+)>"
    for n, o, c, _ in _ENCODINGS))
_ENCODE = {n: enc for n, _, _, enc in _ENCODINGS}
#: Characters an encoded placeholder can start with (for holding back a split one).
_STARTS = "<\\&%"


def _encoded_forms(placeholder: str) -> list[str]:
    """The spellings of one placeholder that a stream may split (for holding back a prefix)."""
    name = placeholder[1:-1]
    return [placeholder, f"\\u003c{name}\\u003e", f"\\u003C{name}\\u003E", f"&lt;{name}&gt;",
            f"%3C{name}%3E", f"%3c{name}%3e"]


def restore_text(text: str, placeholders: Mapping[str, str]) -> str:
    """Replace every known placeholder, in each encoding; unknown ones are left as they are."""
    if not placeholders or not any(ch in text for ch in _STARTS):
        return text

    def put_back(m: re.Match[str]) -> str:
        kind = m.lastgroup
        value = placeholders.get(f"<{m.group(kind)}>") if kind else None
        return m.group(0) if value is None or kind is None else _ENCODE[kind](value)

    return _ANY_PLACEHOLDER.sub(put_back, text)


def _restore_tree(node: Any, placeholders: Mapping[str, str],
                  skip: frozenset[tuple[int, Any]] = frozenset()) -> bool:
    """Restore every string value in place; ``skip`` holds (id(container), key) of delta fields."""
    return not isinstance(node, str) and restore_tree_deep(node, placeholders, skip)[1]


def restore_json_body(body: bytes, placeholders: Mapping[str, str]) -> bytes:
    """Restore placeholders inside the JSON strings of a body; the same bytes when nothing changes."""
    if not placeholders:
        return body
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return restore_plain_body(body, placeholders)
    if not _restore_tree(doc, placeholders, frozenset()) and not isinstance(doc, str):
        return body
    if isinstance(doc, str):
        new = restore_text(doc, placeholders)
        return body if new == doc else dumps(new).encode("utf-8")
    return dumps(doc).encode("utf-8")


def restore_plain_body(body: bytes, placeholders: Mapping[str, str], encoding: str = "utf-8") -> bytes:
    """Restore a text body (HTML, Markdown, plain text); undecodable bodies pass unchanged."""
    try:
        text = body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return body
    new = restore_text(text, placeholders)
    return body if new == text else new.encode(encoding)


_BINARY_TYPES = ("image/", "audio/", "video/", "font/", "application/octet-stream", "application/pdf",
                 "application/zip", "application/x-protobuf", "application/grpc")


def restore_body(body: bytes, content_type: str, placeholders: Mapping[str, str]) -> bytes:
    """Restore a complete (non-streamed) reply body by its media type and framing."""
    mt = content_type.split(";", 1)[0].strip().lower()
    if not placeholders or not body or mt.startswith(_BINARY_TYPES):
        return body
    if _NUMBERED_LINES.match(body):
        n = JsonLinesRestorer(placeholders)
        return n.feed(body) + n.flush()
    if mt == "text/event-stream":
        r = SseRestorer(placeholders)
        return r.feed(body) + r.flush()
    if body.lstrip()[:4] == XSSI_PREFIX.encode() or _GOOGLE_FRAMED.match(body):
        g = GoogleFrameRestorer(placeholders)
        return g.feed(body) + g.flush()
    if mt.endswith("json") or "ndjson" in mt or "jsonl" in mt:
        if body.lstrip()[:1] == b"[" and b"\n" in body:  # Gemini-style array stream delivered at once
            a = JsonArrayStreamRestorer(placeholders)
            return a.feed(body) + a.flush()
        return restore_json_lines(body, placeholders)
    return restore_plain_body(body, placeholders)


_GOOGLE_FRAMED = re.compile(rb"\s*\d+\n\s*\[")
#: Numbered JSON lines (``15:{...}``, ``0:"..."``); SSE field names are never digits.
_NUMBERED_LINES = re.compile(rb"\d+:[\[{\"n]")


def restore_json_lines(body: bytes, placeholders: Mapping[str, str]) -> bytes:
    """A JSON body, or JSON lines (NDJSON streams such as Grok's and Meta AI's) restored line by line."""
    try:
        lines = json_lines(body.decode("utf-8"))
    except UnicodeDecodeError:
        return body
    if lines is None:
        return restore_json_body(body, placeholders)
    r = JsonLinesRestorer(placeholders)
    return r.feed(body) + r.flush()


def restore_tree_deep(node: Any, placeholders: Mapping[str, str],
                      skip: frozenset[tuple[int, Any]] = frozenset()) -> tuple[Any, bool]:
    """Restore every string of a JSON value; strings that hold JSON are decoded, restored, re-encoded.

    Containers are changed in place; ``skip`` names (id(container), key) pairs to leave alone.
    """
    if isinstance(node, str):
        if node[:1] in ("[", "{"):
            try:
                inner = json.loads(node)
            except (ValueError, RecursionError):
                inner = None
            if isinstance(inner, list | dict):
                new, changed = restore_tree_deep(inner, placeholders)
                return (dumps(new), True) if changed else (node, False)
        new_text = restore_text(node, placeholders)
        return new_text, new_text != node
    if isinstance(node, list | dict):
        changed = False
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            if (id(node), key) in skip:
                continue
            new, c = restore_tree_deep(value, placeholders, skip)
            if c:
                node[key] = new
                changed = True
        return node, changed
    return node, False


# ------------------------------------------------------------------------------------------ deltas

@dataclass
class _Delta:
    """A text delta inside an event: where it is, which channel it continues, how to build a filler event."""

    key: tuple[Any, ...]
    container: Any
    field: Any
    make_event: Callable[[str], Any]


_RESPONSES_DELTAS = ("response.output_text.delta", "response.refusal.delta")
_TEXT_FIELDS = ("content", "reasoning_content", "refusal")


class _Deltas:
    """Recognises the text deltas and end markers of the known stream shapes; keeps patch-stream state."""

    def __init__(self) -> None:
        self._pov_path: str | None = None  # ChatGPT / DeepSeek: a bare {"v": ...} continues this path
        self._pov_op: str | None = None

    def find(self, payload: Any, event: str | None) -> tuple[list[_Delta], set[tuple[Any, ...]] | None]:
        """Deltas in document order, and the channels this event ends (``None`` = all channels)."""
        deltas: list[_Delta] = []
        ends: set[tuple[Any, ...]] = set()
        if event in ("done", "finish", "close", "end_of_stream"):
            return deltas, None
        if not isinstance(payload, dict):
            return deltas, (None if payload in ("[DONE]", None) else ends)
        kind = payload.get("type")
        # Anthropic Messages (API and claude.ai)
        if kind == "content_block_delta":
            d = payload.get("delta") or {}
            if d.get("type") == "text_delta" and isinstance(d.get("text"), str):
                i = payload.get("index", 0)
                template = {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta"}}
                make = partial(_with_text, template, ("delta", "text"))
                deltas.append(_Delta(("anthropic", i), d, "text", make))
            return deltas, ends
        if kind in ("content_block_stop", "message_delta", "message_stop"):
            return deltas, None
        # OpenAI Responses
        if isinstance(kind, str) and kind.startswith("response."):
            if kind in _RESPONSES_DELTAS and isinstance(payload.get("delta"), str):
                key = ("responses", payload.get("output_index"), payload.get("content_index"))
                template = {k: v for k, v in payload.items() if k != "delta"}
                deltas.append(_Delta(key, payload, "delta", partial(_with_text, template, ("delta",))))
                return deltas, ends
            if kind.endswith((".done", ".completed", ".failed", ".incomplete")):
                return deltas, None
            return deltas, ends
        if kind == "message_stream_complete":
            return deltas, None
        # claude.ai legacy completion events
        if kind == "completion" and isinstance(payload.get("completion"), str):
            template = {k: v for k, v in payload.items() if k != "completion"}
            template["stop_reason"] = None
            deltas.append(_Delta(("claude_completion",), payload, "completion",
                                 partial(_with_text, template, ("completion",))))
            return deltas, (None if payload.get("stop_reason") else ends)
        # Copilot WebSocket messages
        ev = payload.get("event")
        if ev == "appendText" and isinstance(payload.get("text"), str):
            key = ("copilot", payload.get("messageId"), payload.get("partId"))
            template = {k: v for k, v in payload.items() if k != "text"}
            deltas.append(_Delta(key, payload, "text", partial(_with_text, template, ("text",))))
            return deltas, ends
        if ev in ("partCompleted", "done"):
            return deltas, None
        # Grok web: JSON lines of {"result": {"response": {"token": ...}}} (follow-ups: {"result": {"token"}})
        result = payload.get("result")
        if isinstance(result, dict):
            self._grok(result, deltas)
            response = result.get("response")
            done = "modelResponse" in result or (isinstance(response, dict) and "modelResponse" in response)
            return deltas, (None if done else ends)
        # Perplexity web: markdown blocks streamed as diff patches
        blocks = payload.get("blocks")
        if isinstance(blocks, list):
            self._perplexity(blocks, deltas)
            done = payload.get("final_sse_message") is True or payload.get("status") == "COMPLETED"
            return deltas, (None if done else ends)
        # Le Chat: numbered lines of {"json": {"type": "message", "patches": [...]}}
        record = payload.get("json")
        if isinstance(record, dict) and isinstance(record.get("patches"), list):
            done = self._le_chat(record, deltas)
            return deltas, (None if done else ends)
        # OpenAI chat / legacy completions chunks
        choices = payload.get("choices")
        if isinstance(choices, list):
            self._openai(payload, choices, deltas, ends)
            return deltas, ends
        # Gemini
        candidates = payload.get("candidates")
        if isinstance(candidates, list):
            self._gemini(payload, candidates, deltas, ends)
            return deltas, ends
        # ChatGPT / DeepSeek web patch streams
        if "v" in payload and (set(payload) <= {"p", "o", "v", "c"}):
            self._patches(payload, deltas)
        return deltas, ends

    @staticmethod
    def _openai(payload: dict[str, Any], choices: list[Any], deltas: list[_Delta], ends: set[Any]) -> None:
        top = {k: v for k, v in payload.items() if k not in ("choices", "usage")}
        for pos, c in enumerate(choices):
            if not isinstance(c, dict):
                continue
            i = c.get("index", pos)
            d = c.get("delta")
            targets = [(d, f) for f in _TEXT_FIELDS] if isinstance(d, dict) else []
            targets.append((c, "text"))
            for container, field in targets:
                if isinstance(container.get(field), str):
                    legacy = container is c
                    make = partial(_openai_chunk, top, i, field, legacy=legacy)
                    deltas.append(_Delta(("openai", i, field), container, field, make))
            if c.get("finish_reason"):
                ends.update({("openai", i, f) for f in ("content", "reasoning_content", "refusal", "text")})

    @staticmethod
    def _gemini(payload: dict[str, Any], candidates: list[Any], deltas: list[_Delta], ends: set[Any]) -> None:
        top = {k: v for k, v in payload.items() if k in ("modelVersion", "responseId")}
        for pos, cand in enumerate(candidates):
            if not isinstance(cand, dict):
                continue
            i = cand.get("index", pos)
            parts = (cand.get("content") or {}).get("parts") or []
            for part in parts:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    thought = bool(part.get("thought"))
                    deltas.append(_Delta(("gemini", i, thought), part, "text",
                                         partial(_gemini_chunk, top, i, thought)))
            if cand.get("finishReason"):
                ends.update({("gemini", i, False), ("gemini", i, True)})

    @staticmethod
    def _grok(result: dict[str, Any], deltas: list[_Delta]) -> None:
        container = result.get("response") if isinstance(result.get("response"), dict) else result
        if isinstance(container, dict) and isinstance(container.get("token"), str):
            thinking = bool(container.get("isThinking"))
            nested = container is not result
            template = {k: v for k, v in container.items() if k in ("isThinking", "messageTag", "responseId")}
            make = partial(_grok_line, template, nested)
            deltas.append(_Delta(("grok", thinking), container, "token", make))

    @staticmethod
    def _perplexity(blocks: list[Any], deltas: list[_Delta]) -> None:
        """``diff_block`` patches that add a text chunk are deltas; ``/answer`` replacements are whole."""
        for block in blocks:
            diff = block.get("diff_block") if isinstance(block, dict) else None
            if not isinstance(diff, dict) or not isinstance(diff.get("patches"), list):
                continue
            usage, field = block.get("intended_usage"), diff.get("field")
            for patch in diff["patches"]:
                if (isinstance(patch, dict) and isinstance(patch.get("value"), str)
                        and str(patch.get("path", "")).startswith("/chunks/") and patch.get("op") == "add"):
                    make = partial(_perplexity_chunk, usage, field)
                    deltas.append(_Delta(("perplexity", usage, field), patch, "value", make))

    @staticmethod
    def _le_chat(record: dict[str, Any], deltas: list[_Delta]) -> bool:
        """Text patches of one message (``append /contentChunks/N/text``, or the first text given by
        ``replace /contentChunks``); True when the message's ``generationStatus`` leaves in-progress."""
        head = {"type": "message", "messageId": record.get("messageId"),
                "messageVersion": record.get("messageVersion", 0)}
        done = False
        for patch in record["patches"]:
            if not isinstance(patch, dict):
                continue
            path, op, value = patch.get("path"), patch.get("op"), patch.get("value")
            if op == "append" and isinstance(value, str) and _LE_CHAT_TEXT.fullmatch(str(path)):
                container, field, text_path = patch, "value", str(path)
            elif (op == "replace" and path == "/contentChunks" and isinstance(value, list) and value
                  and isinstance(value[-1], dict) and isinstance(value[-1].get("text"), str)):
                container, field, text_path = value[-1], "text", f"/contentChunks/{len(value) - 1}/text"
            else:
                done |= op == "replace" and path == "/generationStatus" and value != "in-progress"
                continue
            make = partial(_le_chat_record, head, text_path)
            deltas.append(_Delta(("le_chat", head["messageId"], text_path), container, field, make))
        return done

    def _patches(self, payload: dict[str, Any], deltas: list[_Delta]) -> None:
        ops = [payload]
        if str(payload.get("o", "")).lower() in ("patch", "batch") and isinstance(payload.get("v"), list):
            ops = [op for op in payload["v"] if isinstance(op, dict)]
            base = payload.get("p") or ""
        else:
            base = ""
        for op in ops:
            if "p" in op or "o" in op:
                path = op.get("p", self._pov_path)
                self._pov_path = f"{base}/{path}" if base and path else path
                self._pov_op = str(op.get("o") or "set").lower()
            if isinstance(op.get("v"), str) and self._pov_op == "append" and self._pov_path is not None:
                path = self._pov_path
                template = {"p": path, "o": "append"}
                deltas.append(_Delta(("patch", path), op, "v", partial(_with_text, template, ("v",))))


def _with_text(template: dict[str, Any], where: tuple[str, ...], text: str) -> dict[str, Any]:
    """A copy of ``template`` with ``text`` at ``where`` (a filler event carrying held-back text)."""
    event = json.loads(json.dumps(template))
    node = event
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = text
    return event  # type: ignore[no-any-return]


_LE_CHAT_TEXT = re.compile(r"/contentChunks/\d+/text")


def _le_chat_record(head: dict[str, Any], path: str, text: str) -> dict[str, Any]:
    return {"json": {**head, "patches": [{"op": "append", "path": path, "value": text}]}}


def _openai_chunk(top: dict[str, Any], index: int, field: str, text: str, *, legacy: bool) -> dict[str, Any]:
    choice = ({"index": index, "text": text, "logprobs": None, "finish_reason": None} if legacy
              else {"index": index, "delta": {field: text}, "finish_reason": None})
    return {**top, "choices": [choice]}


def _grok_line(template: dict[str, Any], nested: bool, text: str) -> dict[str, Any]:
    token = {**template, "token": text}
    return {"result": {"response": token}} if nested else {"result": token}


def _perplexity_chunk(usage: Any, field: Any, text: str) -> dict[str, Any]:
    patch = {"op": "add", "path": "/chunks/-", "value": text}
    return {"blocks": [{"intended_usage": usage, "diff_block": {"field": field, "patches": [patch]}}]}


def _gemini_chunk(top: dict[str, Any], index: int, thought: bool, text: str) -> dict[str, Any]:
    part: dict[str, Any] = {"text": text, **({"thought": True} if thought else {})}
    return {"candidates": [{"content": {"parts": [part], "role": "model"}, "index": index}], **top}


class _OpenPlaceholders:
    """Finds a placeholder cut short at the end of a text (in any of its encodings)."""

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        forms = [f for p in placeholders for f in _encoded_forms(p)]
        self._prefixes = frozenset(f[:i] for f in forms for i in range(1, len(f)))
        self._longest = max((len(f) for f in forms), default=0)

    def split(self, text: str) -> tuple[str, str]:
        """(text to send now, trailing prefix of a placeholder to hold back)."""
        for i in range(max(0, len(text) - self._longest + 1), len(text)):
            if text[i] in _STARTS and text[i:] in self._prefixes:
                return text[:i], text[i:]
        return text, ""


class _Restorer:
    """The stream-agnostic core: payload in, payloads out (fillers first), placeholders restored."""

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        self.map = dict(placeholders)
        self.split = _OpenPlaceholders(self.map).split
        self.deltas = _Deltas()
        self.pending: dict[tuple[Any, ...], tuple[str, Callable[[str], Any], str | None]] = {}

    def fillers(self, keys: set[tuple[Any, ...]] | None) -> list[tuple[Any, str | None]]:
        """Events carrying held-back text of the ending channels (all when ``keys`` is None)."""
        out = []
        for key in list(self.pending):
            if keys is None or key in keys:
                held, make, event = self.pending.pop(key)
                out.append((make(restore_text(held, self.map)), event))
        return out

    def process(self, payload: Any, event: str | None) -> tuple[list[tuple[Any, str | None]], bool]:
        """(filler events to send before this one, whether this payload changed)."""
        deltas, ends = self.deltas.find(payload, event)
        before: list[tuple[Any, str | None]] = []
        changed = False
        # A patch stream has one active channel: text held for another path goes out first.
        if deltas and deltas[0].key[0] == "patch":
            before += self.fillers({k for k in self.pending if k[0] == "patch" and k != deltas[0].key})
        for d in deltas:
            held = self.pending.pop(d.key, ("", d.make_event, event))[0]
            text = held + d.container[d.field]
            final = ends is None or d.key in ends
            now, hold = (text, "") if final else self.split(text)
            now = restore_text(now, self.map)
            if hold:
                self.pending[d.key] = (hold, d.make_event, event)
            if now != d.container[d.field]:
                d.container[d.field] = now
                changed = True
        changed |= self._chunk_lists(payload)
        changed |= self._unfinished_meta_message(payload)
        skip = frozenset((id(d.container), d.field) for d in deltas)
        changed |= _restore_tree(payload, self.map, skip)
        before += self.fillers(ends) if ends is None or ends else []
        return before, changed


    def _unfinished_meta_message(self, payload: Any) -> bool:
        """Meta AI lines hold the text so far: until ``OVERALL_DONE``, a cut placeholder waits."""
        node = payload.get("data") if isinstance(payload, dict) else None
        node = node.get("node") if isinstance(node, dict) else None
        message = node.get("bot_response_message") if isinstance(node, dict) else None
        if not isinstance(message, dict) or message.get("streaming_state") == "OVERALL_DONE":
            return False
        restored = _restore_tree(message, self.map, frozenset())
        return _cut_open_tails(message.get("composed_text"), "text", self.split) or restored

    def _chunk_lists(self, payload: Any) -> bool:
        """Perplexity's full ``markdown_block.chunks``: one text in pieces, restored across them."""
        changed = False
        for block in payload.get("blocks") or [] if isinstance(payload, dict) else []:
            chunks = (block.get("markdown_block") or {}).get("chunks") if isinstance(block, dict) else None
            if isinstance(chunks, list) and chunks and all(isinstance(c, str) for c in chunks):
                restored = restore_pieces(chunks, self.map, self.split)
                if restored != chunks:
                    block["markdown_block"]["chunks"] = restored
                    changed = True
        return changed


def restore_pieces(pieces: list[str], placeholders: Mapping[str, str],
                   split: Callable[[str], tuple[str, str]]) -> list[str]:
    """Restore a text given in pieces, keeping the number of pieces (a cut placeholder moves forward)."""
    out, held = [], ""
    for piece in pieces:
        now, held = split(held + piece)
        out.append(restore_text(now, placeholders))
    if held:
        out[-1] += restore_text(held, placeholders)
    return out


# ------------------------------------------------------------------------------------------ framings

_EOL = re.compile(r"\r\n|\r|\n")


class _BufferedRestorer:
    """A text stream restored as it arrives: bytes decoded incrementally into a buffer, which
    ``_drain`` turns into restored text (``final`` at the end of the stream, for what is left)."""

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        self._core = _Restorer(placeholders) if placeholders else None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buf = ""

    def feed(self, chunk: bytes) -> bytes:
        if self._core is None:
            return chunk
        self._buf += self._decoder.decode(chunk)
        return self._drain(final=False).encode("utf-8")

    def flush(self) -> bytes:
        if self._core is None:
            return b""
        self._buf += self._decoder.decode(b"", final=True)
        return self._drain(final=True).encode("utf-8")

    def _drain(self, final: bool) -> str:
        raise NotImplementedError


class SseRestorer(_BufferedRestorer):
    """Restores a ``text/event-stream`` reply chunk by chunk; ``flush()`` at the end of the stream."""

    def _drain(self, final: bool) -> str:
        assert self._core is not None
        out: list[str] = []
        while True:
            event, rest = self._take_event(self._buf)
            if event is None:
                break
            self._buf = rest
            out.append(self._event(event))
        if final:
            if self._buf:
                out.append(self._event(self._buf))
            self._buf = ""
            out += [_sse(payload, event, "\n") for payload, event in self._core.fillers(None)]
        return "".join(out)

    @staticmethod
    def _take_event(buf: str) -> tuple[str | None, str]:
        """Split off one complete event (through its blank line); a trailing CR waits for a possible LF."""
        pos = 0
        while True:
            m = _EOL.search(buf, pos)
            if m is None or (m.group() == "\r" and m.end() == len(buf)):
                return None, buf
            if m.start() == pos:  # an empty line ends the event
                return buf[:m.end()], buf[m.end():]
            pos = m.end()

    def _event(self, raw: str) -> str:
        assert self._core is not None
        lines = _EOL.split(raw)
        eol_match = _EOL.search(raw)
        eol = eol_match.group() if eol_match else "\n"
        data_lines = [ln for ln in lines if ln.startswith("data:")]
        if not data_lines:
            return raw
        name = next((ln[6:].strip() for ln in lines if ln.startswith("event:")), None)
        data = "\n".join(ln[5:][1:] if ln[5:6] == " " else ln[5:] for ln in data_lines)
        try:
            payload = json.loads(data) if data[:1] in ("{", "[", '"') else data
        except ValueError:
            payload = data
        before, changed = self._core.process(payload, name)
        fillers = "".join(_sse(p, e, eol) for p, e in before)
        if not changed:
            return fillers + raw
        other = [ln for ln in lines if ln and not ln.startswith("data:")]
        head = "".join(ln + eol for ln in other)
        text = dumps(payload) if not isinstance(payload, str) else payload
        return fillers + head + "".join(f"data: {ln}{eol}" for ln in text.split("\n")) + eol


def _sse(payload: Any, event: str | None, eol: str) -> str:
    head = f"event: {event}{eol}" if event else ""
    return f"{head}data: {dumps(payload)}{eol}{eol}"


class JsonArrayStreamRestorer(_BufferedRestorer):
    """Restores Gemini's stream without ``alt=sse``: one JSON array whose elements arrive over time."""

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        super().__init__(placeholders)
        self._scan = 0       # how far _buf has been scanned
        self._depth = 0
        self._in_str = False
        self._esc = False
        self._elem_start: int | None = None
        self._emitted_any = False

    def _drain(self, final: bool) -> str:
        assert self._core is not None
        out: list[str] = []
        emit_upto = 0
        i = self._scan
        buf = self._buf
        while i < len(buf):
            ch = buf[i]
            if self._in_str:
                if self._esc:
                    self._esc = False
                elif ch == "\\":
                    self._esc = True
                elif ch == '"':
                    self._in_str = False
            elif ch == '"':
                self._in_str = True
            elif ch in "[{":
                self._depth += 1
                if self._depth == 2:
                    out.append(buf[emit_upto:i])
                    emit_upto = i
                    self._elem_start = i
            elif ch in "]}":
                if self._depth == 1 and ch == "]":
                    out.append(buf[emit_upto:i])
                    emit_upto = i
                    out += ["," + dumps(p) for p, _ in self._core.fillers(None)]
                self._depth -= 1
                if self._depth == 1 and self._elem_start is not None:
                    out.append(self._element(buf[self._elem_start:i + 1]))
                    emit_upto = i + 1
                    self._elem_start = None
            i += 1
        if self._elem_start is None:
            out.append(buf[emit_upto:])
            self._buf, self._scan = "", 0
        else:
            out.append(buf[emit_upto:self._elem_start])
            self._buf = buf[self._elem_start:]
            self._scan = len(buf) - self._elem_start
            self._elem_start = 0
        if final and self._buf:
            out.append(self._buf)
            self._buf = ""
        return "".join(out)

    def _element(self, raw: str) -> str:
        assert self._core is not None
        try:
            payload = json.loads(raw)
        except ValueError:
            return raw
        before, changed = self._core.process(payload, None)
        fillers = "".join(dumps(p) + "," for p, _ in before)
        return fillers + (dumps(payload) if changed else raw)


class JsonLinesRestorer(_BufferedRestorer):
    """Restores a stream of JSON lines (NDJSON) line by line; filler lines carry held-back text.

    A line may be numbered, ``15:{...}`` (Le Chat; the AI SDK's ``0:"text"``): the number is kept, and
    filler lines carry the number of the line whose text they continue.
    """

    def _drain(self, final: bool) -> str:
        assert self._core is not None
        if not final:
            *lines, self._buf = self._buf.split("\n")
            return "".join(self._line(line, "\n") for line in lines)
        fillers = [(number or "") + dumps(p) for p, number in self._core.fillers(None)]
        if self._buf:  # a last line without its newline: fillers follow it on lines of their own
            out = self._line(self._buf, "") + "".join("\n" + f for f in fillers)
        else:
            out = "".join(f + "\n" for f in fillers)
        self._buf = ""
        return out

    def _line(self, line: str, end: str) -> str:
        assert self._core is not None
        text = line.rstrip("\r")
        if not text.strip():
            return line + end
        parsed = numbered_json(text)
        if parsed is None:
            return restore_text(line, self._core.map) + end
        number, payload = parsed
        if isinstance(payload, str):  # a text line: restored whole
            new = restore_text(payload, self._core.map)
            return (number + dumps(new) + line[len(text):] if new != payload else line) + end
        before, changed = self._core.process(payload, number or None)
        fillers = "".join((n or "") + dumps(p) + "\n" for p, n in before)
        return fillers + (number + dumps(payload) + line[len(text):] if changed else line) + end


_NUMBERED = re.compile(r"\d+:")


def numbered_json(line: str) -> tuple[str, Any] | None:
    """(number with its colon, or "", JSON value) of a JSON line, numbered or not; ``None`` if neither."""
    for number in ("", *(m.group() for m in [_NUMBERED.match(line)] if m)):
        try:
            return number, json.loads(line[len(number):])
        except (ValueError, RecursionError):
            continue
    return None


class WsMessageRestorer:
    """Restores server WebSocket text messages (Copilot ``appendText``); may return extra filler messages."""

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        self._core = _Restorer(placeholders) if placeholders else None

    def feed(self, message: str) -> list[str]:
        if self._core is None:
            return [message]
        records = signalr_records(message)
        if records is not None:  # SignalR: restore record by record, separators kept
            return ["".join(self._record(r) + "\x1e" for r in records)]
        try:
            payload = json.loads(message)
        except ValueError:
            return [restore_text(message, self._core.map)]
        if isinstance(payload, dict) and isinstance(payload.get("messages"), list):  # Poe's tchannel
            return [dumps(payload) if self._channel_updates(payload["messages"]) else message]
        before, changed = self._core.process(payload, None)
        return [dumps(p) for p, _ in before] + [dumps(payload) if changed else message]

    def _channel_updates(self, updates: list[Any]) -> bool:
        """Poe: each update is JSON in a string; a bot message still being written (``messageAdded``
        with the text so far, ``state`` not ``complete``) leaves out a placeholder cut at its end."""
        assert self._core is not None
        changed = False
        for i, update in enumerate(updates):
            if not isinstance(update, str):
                continue
            try:
                doc = json.loads(update)
            except (ValueError, RecursionError):
                continue
            touched = _restore_tree(doc, self._core.map)
            payload = doc.get("payload") if isinstance(doc, dict) else None
            data = payload.get("data") if isinstance(payload, dict) else None
            added = data.get("messageAdded") if isinstance(data, dict) else None
            if isinstance(added, dict) and added.get("state") != "complete":
                touched |= _cut_open_tails(added, "text", self._core.split)
            if touched:
                updates[i] = dumps(doc)
                changed = True
        return changed

    def _record(self, record: str) -> str:
        assert self._core is not None
        try:
            payload = json.loads(record)
        except (ValueError, RecursionError):
            return restore_text(record, self._core.map)
        payload, changed = restore_tree_deep(payload, self._core.map)
        if isinstance(payload, dict) and payload.get("type") == 1 and payload.get("target") == "update":
            changed |= _cut_open_tails(payload.get("arguments"), "text", self._core.split)
        return dumps(payload) if changed else record

    def flush(self) -> list[str]:
        return [dumps(p) for p, _ in self._core.fillers(None)] if self._core else []


def _cut_open_tails(node: Any, key: str, split: Callable[[str], tuple[str, str]]) -> bool:
    """In a cumulative update (the text so far), leave out a placeholder cut at the end of ``key`` strings:
    the next update brings it whole, and clients that print only what was added stay in step."""
    changed = False
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, value in list(items):
        if k == key and isinstance(value, str):
            kept = split(value)[0]
            if kept != value:
                node[k] = kept
                changed = True
        elif isinstance(value, dict | list):
            changed |= _cut_open_tails(value, key, split)
    return changed


class GoogleFrameRestorer:
    """Restores Google's length-prefixed replies (Gemini web ``StreamGenerate``, ``batchexecute``).

    Each frame is decoded (with the JSON nested in its strings), restored, and written back with its
    length recomputed, so a client that reads exactly that many UTF-16 units still finds every frame.
    A Gemini answer is cumulative (every frame holds the text so far): a placeholder cut at the end of
    a frame that is not the candidate's last is left out until the next frame brings it whole.
    """

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        self._map = dict(placeholders)
        self._open = _OpenPlaceholders(self._map)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buf = ""
        self._started = False
        self._framed = True

    def feed(self, chunk: bytes) -> bytes:
        self._buf += self._decoder.decode(chunk)
        return self._drain().encode("utf-8")

    def flush(self) -> bytes:
        self._buf += self._decoder.decode(b"", final=True)
        out = self._drain()
        rest, self._buf = self._buf, ""
        return (out + restore_text(rest, self._map)).encode("utf-8")

    def _drain(self) -> str:
        out: list[str] = []
        if not self._started:
            head = self._buf.lstrip()
            if len(head) < len(XSSI_PREFIX) and XSSI_PREFIX.startswith(head):
                return ""
            if head.startswith(XSSI_PREFIX):
                cut = len(self._buf) - len(head) + len(XSSI_PREFIX)
                out.append(self._buf[:cut])
                self._buf = self._buf[cut:]
            self._started = True
        while self._framed and self._buf:
            try:
                taken = take_google_frame(self._buf)
            except ValueError:
                self._framed = False  # not framed after all: the rest is restored as text at the end
                break
            if taken is None:
                break
            raw, text, self._buf = taken
            out.append(self._frame(raw, text))
        return "".join(out)

    def _frame(self, raw: str, text: str) -> str:
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):
            new_text = restore_text(text, self._map)
            return raw if new_text == text else _lead(raw) + google_frame_text(new_text)
        payload, changed = restore_tree_deep(payload, self._map)
        changed |= self._hold_open_placeholders(payload)
        return _lead(raw) + google_frame_text(dumps(payload)) if changed else raw

    def _hold_open_placeholders(self, envelopes: Any) -> bool:
        """Cut a trailing placeholder prefix from unfinished Gemini candidates (``[rcid, [text], ...]``)."""
        changed = False
        for envelope in envelopes if isinstance(envelopes, list) else ():
            if not (isinstance(envelope, list) and len(envelope) > 2 and envelope[0] == "wrb.fr"
                    and isinstance(envelope[2], str)):
                continue
            try:
                inner = json.loads(envelope[2])
            except (ValueError, RecursionError):
                continue
            candidates = inner[4] if isinstance(inner, list) and len(inner) > 4 else None
            touched = False
            for cand in candidates if isinstance(candidates, list) else ():
                if not (isinstance(cand, list) and len(cand) > 1 and isinstance(cand[1], list) and cand[1]
                        and isinstance(cand[1][0], str)):
                    continue
                finished = len(cand) > 8 and isinstance(cand[8], list) and cand[8][:1] == [2]
                kept = cand[1][0] if finished else self._open.split(cand[1][0])[0]
                if kept != cand[1][0]:
                    cand[1][0] = kept
                    touched = True
            if touched:
                envelope[2] = dumps(inner)
                changed = True
        return changed



def _lead(raw: str) -> str:
    """The whitespace before a frame's length marker, kept as it came."""
    return raw[:len(raw) - len(raw.lstrip())]


class RecentPlaceholders:
    """Placeholder maps of recent redacted prompts, per (user, service), for answers that come back on
    another connection (Poe's tchannel WebSocket). Memory only; entries expire after ``ttl`` seconds.

    Each prompt numbers its placeholders from 1, so a newer prompt's entries replace an older one's:
    the channel restores the answer to the user's latest prompt to that service.
    """

    def __init__(self, ttl: float = 900.0, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._max_keys, self._clock = ttl, max_keys, clock
        self._maps: dict[tuple[str, str], tuple[float, int, dict[str, str]]] = {}
        self._version = 0

    def remember(self, key: tuple[str, str], placeholders: Mapping[str, str]) -> None:
        self._expire()
        now = self._clock()
        _, _, known = self._maps.pop(key, (now, 0, {}))
        self._version += 1
        self._maps[key] = (now, self._version, {**known, **placeholders})
        while len(self._maps) > self._max_keys:
            del self._maps[next(iter(self._maps))]  # the least recently used

    def get(self, key: tuple[str, str]) -> tuple[int, dict[str, str]] | None:
        """(version, map) of ``key``; the version changes whenever the map does."""
        self._expire()
        entry = self._maps.get(key)
        return (entry[1], entry[2]) if entry else None

    def _expire(self) -> None:
        limit = self._clock() - self._ttl
        while self._maps:
            key = next(iter(self._maps))
            if self._maps[key][0] >= limit:
                break
            del self._maps[key]


class StreamRestorer(Protocol):
    """Restores a reply piece by piece: ``feed`` each chunk, ``flush`` once at the end."""

    def feed(self, chunk: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


def stream_restorer(content_type: str, placeholders: Mapping[str, str]) -> StreamRestorer:
    """A restorer for a reply that arrives in pieces: by its media type, or by its first bytes."""
    return _SniffingRestorer(content_type, placeholders)


class _SniffingRestorer:
    """Picks the framing from the first bytes (Google frames, JSON lines, a JSON array stream) and
    restores piece by piece; any other body is kept whole and restored at the end like a plain one."""

    def __init__(self, content_type: str, placeholders: Mapping[str, str]) -> None:
        self._type = content_type
        self._map = dict(placeholders)
        self._head = b""
        self._inner: StreamRestorer | None = None
        self._whole = content_type.split(";", 1)[0].strip().lower().startswith(_BINARY_TYPES)

    def feed(self, chunk: bytes) -> bytes:
        if self._inner is not None:
            return self._inner.feed(chunk)
        self._head += chunk
        if not self._whole:
            self._inner = self._choose()
            if self._inner is not None:
                head, self._head = self._head, b""
                return self._inner.feed(head)
        return b""

    def flush(self) -> bytes:
        if self._inner is not None:
            return self._inner.flush()
        body, self._head = self._head, b""
        return restore_body(body, self._type, self._map)

    def _choose(self) -> StreamRestorer | None:
        head = self._head.lstrip()
        number = re.match(rb"\d+:?", head)
        if number and number.end() == len(head):
            return None  # a number so far: of a numbered line, or a Google frame's length
        if _NUMBERED_LINES.match(head):
            return JsonLinesRestorer(self._map)  # Le Chat, whatever its media type says
        if self._type.split(";", 1)[0].strip().lower() == "text/event-stream":
            return SseRestorer(self._map)
        prefix = XSSI_PREFIX.encode()
        if not head or (len(head) < len(prefix) and prefix.startswith(head)):
            return None  # too early to tell
        if head.startswith(prefix) or _GOOGLE_FRAMED.match(head):
            return GoogleFrameRestorer(self._map)
        if b"\n" not in head:
            return None
        first = head.split(b"\n", 1)[0].strip()
        try:
            json.loads(first)
        except (ValueError, RecursionError):
            if head[:1] == b"[" and "json" in self._type.lower():
                return JsonArrayStreamRestorer(self._map)  # Gemini API streaming without alt=sse
            self._whole = True
            return None
        return JsonLinesRestorer(self._map) if first[:1] in (b"{", b"[") else None
