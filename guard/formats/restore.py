"""Put the original values back in place of placeholders (``<TW_NATIONAL_ID_1>``) in the replies users see.

Plain bodies are restored as decoded JSON strings (servers may escape ``<`` as ``\\u003c``). Streams are
restored event by event: a placeholder split across deltas (``"<PER"`` then ``"SON_1>"``) is held back
and sent with the next delta of the same channel, so every event stays well-formed. Understood deltas:
OpenAI chat / completions, Responses ``output_text`` deltas, Anthropic ``text_delta`` (also claude.ai),
Gemini candidates (SSE and JSON-array streaming), ChatGPT/DeepSeek web ``{"p","o","v"}`` patches, claude.ai
legacy ``completion`` events and Copilot ``appendText`` messages. Every other string is restored whole.
The placeholder map is sensitive: it is kept in memory only and never logged.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from guard.formats._tree import dumps

PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")


def restore_text(text: str, placeholders: Mapping[str, str]) -> str:
    """Replace every known placeholder; unknown ones are left as they are."""
    if not placeholders or "<" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: placeholders.get(m.group(0), m.group(0)), text)


def _restore_tree(node: Any, placeholders: Mapping[str, str], skip: frozenset[tuple[int, str]]) -> bool:
    """Restore every string value in place; ``skip`` holds (id(container), key) of delta fields."""
    changed = False
    items: Iterator[tuple[Any, Any]]
    if isinstance(node, dict):
        items = iter(list(node.items()))
    elif isinstance(node, list):
        items = iter(list(enumerate(node)))
    else:
        return False
    for key, value in items:
        if isinstance(value, str):
            if (id(node), key) in skip:
                continue
            new = restore_text(value, placeholders)
            if new != value:
                node[key] = new
                changed = True
        elif isinstance(value, dict | list):
            changed |= _restore_tree(value, placeholders, skip)
    return changed


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


def restore_body(body: bytes, content_type: str, placeholders: Mapping[str, str]) -> bytes:
    """Restore a complete (non-streamed) reply body by its media type."""
    mt = content_type.split(";", 1)[0].strip().lower()
    if not placeholders or not body:
        return body
    if mt == "text/event-stream":
        r = SseRestorer(placeholders)
        return r.feed(body) + r.flush()
    if mt.endswith("json") or mt.endswith("+json"):
        if body.lstrip()[:1] == b"[" and b"\n" in body:  # Gemini-style array stream delivered at once
            a = JsonArrayStreamRestorer(placeholders)
            return a.feed(body) + a.flush()
        return restore_json_body(body, placeholders)
    if mt.startswith("text/") or mt in ("application/xml", "application/javascript"):
        return restore_plain_body(body, placeholders)
    return body


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
            return deltas, (None if payload == "[DONE]" else ends)
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


def _openai_chunk(top: dict[str, Any], index: int, field: str, text: str, *, legacy: bool) -> dict[str, Any]:
    choice = ({"index": index, "text": text, "logprobs": None, "finish_reason": None} if legacy
              else {"index": index, "delta": {field: text}, "finish_reason": None})
    return {**top, "choices": [choice]}


def _gemini_chunk(top: dict[str, Any], index: int, thought: bool, text: str) -> dict[str, Any]:
    part: dict[str, Any] = {"text": text, **({"thought": True} if thought else {})}
    return {"candidates": [{"content": {"parts": [part], "role": "model"}, "index": index}], **top}


class _Restorer:
    """The stream-agnostic core: payload in, payloads out (fillers first), placeholders restored."""

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        self.map = dict(placeholders)
        self.prefixes = frozenset(p[:i] for p in self.map for i in range(1, len(p)))
        self.longest = max((len(p) for p in self.map), default=0)
        self.deltas = _Deltas()
        self.pending: dict[tuple[Any, ...], tuple[str, Callable[[str], Any], str | None]] = {}

    def split(self, text: str) -> tuple[str, str]:
        """(text to send now, trailing prefix of a placeholder to hold back)."""
        start = max(0, len(text) - self.longest + 1)
        i = text.find("<", start)
        while i != -1:
            if text[i:] in self.prefixes:
                return text[:i], text[i:]
            i = text.find("<", i + 1)
        return text, ""

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
        skip = frozenset((id(d.container), d.field) for d in deltas)
        changed |= _restore_tree(payload, self.map, skip)
        before += self.fillers(ends) if ends is None or ends else []
        return before, changed


# ------------------------------------------------------------------------------------------ framings

_EOL = re.compile(r"\r\n|\r|\n")


class SseRestorer:
    """Restores a ``text/event-stream`` reply chunk by chunk; ``flush()`` at the end of the stream."""

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        self._core = _Restorer(placeholders) if placeholders else None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buf = ""

    def feed(self, chunk: bytes) -> bytes:
        if self._core is None:
            return chunk
        self._buf += self._decoder.decode(chunk)
        out: list[str] = []
        while True:
            event, rest = self._take_event(self._buf)
            if event is None:
                break
            self._buf = rest
            out.append(self._event(event))
        return "".join(out).encode("utf-8")

    def flush(self) -> bytes:
        if self._core is None:
            return b""
        self._buf += self._decoder.decode(b"", final=True)
        out = [self._event(self._buf)] if self._buf else []
        self._buf = ""
        out += [_sse(payload, event, "\n") for payload, event in self._core.fillers(None)]
        return "".join(out).encode("utf-8")

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


class JsonArrayStreamRestorer:
    """Restores Gemini's stream without ``alt=sse``: one JSON array whose elements arrive over time."""

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        self._core = _Restorer(placeholders) if placeholders else None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buf = ""
        self._scan = 0       # how far _buf has been scanned
        self._depth = 0
        self._in_str = False
        self._esc = False
        self._elem_start: int | None = None
        self._emitted_any = False

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


class WsMessageRestorer:
    """Restores server WebSocket text messages (Copilot ``appendText``); may return extra filler messages."""

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        self._core = _Restorer(placeholders) if placeholders else None

    def feed(self, message: str) -> list[str]:
        if self._core is None:
            return [message]
        try:
            payload = json.loads(message)
        except ValueError:
            return [restore_text(message, self._core.map)]
        before, changed = self._core.process(payload, None)
        return [dumps(p) for p, _ in before] + [dumps(payload) if changed else message]

    def flush(self) -> list[str]:
        return [dumps(p) for p, _ in self._core.fillers(None)] if self._core else []

