"""Fallback format for a catalogued AI host whose request shape is unknown: inspect every user-visible string.

JSON bodies (including JSON nested in strings), bodies of SignalR records or JSON lines (each record
read as JSON), form bodies, plain text and WebSocket text messages.
Identifiers, URLs, base64 blobs and timestamps are skipped (``_tree.is_technical``); nothing else is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from guard.formats import uploads
from guard.formats._framing import RECORD_SEPARATOR, json_lines, signalr_records
from guard.formats._tree import Path, form_request, generic_paths, json_request
from guard.formats.base import FormatError, NativeResponse, ParsedRequest, Segment, media_type, rewrite_parsed
from guard.notice import BlockNotice

FORM = "application/x-www-form-urlencoded"


def nested_json(path: Path, value: str) -> bool:
    """Any string holding a JSON array or object is opened (tool arguments, ``f.req``-style payloads)."""
    return True


def select(doc: Any) -> list[Path]:
    return generic_paths(doc)


def charset(content_type: str, default: str = "utf-8") -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"').lower()
    return default


def text_request(fmt: str, body: bytes, content_type: str) -> ParsedRequest:
    """A plain-text body as one segment, written back in the same charset."""
    enc = charset(content_type)
    try:
        text = body.decode(enc)
    except (UnicodeDecodeError, LookupError):
        raise FormatError(f"text body is not valid {enc}") from None
    if not text.strip():
        return ParsedRequest(fmt, body, ())

    def write(new_texts: Sequence[str]) -> bytes:
        return new_texts[0].encode(enc)

    return ParsedRequest(fmt, body, (Segment(text, "body"),), (), write)


def _looks_like_json(body: bytes) -> bool:
    return body.lstrip()[:1] in (b"{", b"[", b'"')


def route(fmt: str, body: bytes, content_type: str) -> ParsedRequest | None:
    """Bodies every format handles the same way: uploads, forms and non-JSON text; ``None`` for JSON."""
    mt = media_type(content_type)
    if uploads.is_upload(mt):
        return uploads.extract_upload(fmt, body, content_type)
    if mt == FORM:
        return form_request(fmt, body, select, decode_nested=nested_json)
    if body.endswith(RECORD_SEPARATOR.encode()):  # SignalR records, whatever the first one looks like
        return framed_request(fmt, body)
    if mt.startswith("text/") and not _looks_like_json(body):
        return text_request(fmt, body, content_type)
    return None


def extract_any(fmt: str, body: bytes, content_type: str) -> ParsedRequest:
    routed = route(fmt, body, content_type)
    if routed is not None:
        return routed
    if not body.strip():
        return ParsedRequest(fmt, body, ())
    framed = framed_request(fmt, body)
    if framed is not None:
        return framed
    if _looks_like_json(body):
        return json_request(fmt, body, select, decode_nested=nested_json)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return uploads.extract_upload(fmt, body, content_type)  # binary of unknown type: sniff it
    return text_request(fmt, body, "text/plain; charset=utf-8")


def joined_request(fmt: str, text: str, parts: list[ParsedRequest], separator: str, label: str,
                   head: str = "", trailers: list[str] | None = None) -> ParsedRequest:
    """One request made of several framed parts; each part's segments are rewritten in its own part.

    Each part is followed by ``separator`` (or by its own entry of ``trailers``); ``head`` comes first.
    """
    segments = tuple(replace(seg, where=f"{label}[{i}].{seg.where}")
                     for i, part in enumerate(parts) for seg in part.segments)
    extra = tuple(replace(seg, where=f"{label}[{i}].{seg.where}")
                  for i, part in enumerate(parts) for seg in part.extra)
    uninspected = tuple(u for part in parts for u in part.uninspected)
    ends = trailers if trailers is not None else [separator] * len(parts)

    def write(new_texts: Sequence[str]) -> bytes:
        # The writer gets every text: the parts' selected segments first, then the parts' extras.
        selected, rest = new_texts[:len(segments)], new_texts[len(segments):]
        out, at, at_extra = [], 0, 0
        for part, end in zip(parts, ends, strict=True):
            count, count_extra = len(part.segments), len(part.extra)
            texts = [*selected[at:at + count], *rest[at_extra:at_extra + count_extra]]
            out.append(rewrite_parsed(part, texts).decode("utf-8") + end)
            at, at_extra = at + count, at_extra + count_extra
        return (head + "".join(out)).encode("utf-8")

    return ParsedRequest(fmt, text.encode("utf-8"), segments, uninspected, write, extra)


def framed_request(fmt: str, body: bytes,
                   read_record: Callable[[str], ParsedRequest] | None = None) -> ParsedRequest | None:
    """A body of SignalR records (``\\x1e``-ended JSON, e.g. the chat hubs' long-polling and SSE
    transports) or of JSON lines, each record read by ``read_record``; ``None`` when it is neither.

    By default every record must be JSON: one that is not, or an empty SignalR record, fails the whole
    body (fail closed), never passes as text. (WebSocket messages read their records their own way.)
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    read = read_record or (lambda record: _json_record(fmt, record))
    records = signalr_records(text)
    if records is not None:
        return joined_request(fmt, text, [read(r) for r in records], RECORD_SEPARATOR, "record")
    lines = json_lines(text) if _looks_like_json(body) else None
    if lines is None:
        return None
    parts = [read(ln.rstrip("\r\n")) if ln.strip() else ParsedRequest(fmt, ln.encode("utf-8"), ())
             for ln in lines]  # blank lines between JSON lines carry nothing
    return joined_request(fmt, text, parts, "", "line",
                          trailers=[line[len(line.rstrip("\r\n")):] for line in lines])


def _json_record(fmt: str, record: str) -> ParsedRequest:
    if not record.strip():
        raise FormatError("an empty SignalR record")
    return json_request(fmt, record.encode("utf-8"), select, decode_nested=nested_json)


def extract_ws_message(text: str, fmt: str = "generic") -> ParsedRequest:
    """A WebSocket text message: JSON walked like a body, anything else as one text segment."""
    body = text.encode("utf-8")
    if _looks_like_json(body):
        try:
            return json_request(fmt, body, select, decode_nested=nested_json)
        except FormatError:
            pass  # not JSON after all: inspect it as text
    return text_request(fmt, body, "text/plain; charset=utf-8")


def rewrite_ws_message(parsed: ParsedRequest, new_texts: Sequence[str]) -> str:
    return rewrite_parsed(parsed, new_texts).decode("utf-8")


class GenericFormat:
    name = "generic"

    def extract(self, body: bytes, content_type: str, path: str) -> ParsedRequest:
        return extract_any(self.name, body, content_type)

    def rewrite(self, parsed: ParsedRequest, new_texts: Sequence[str]) -> bytes:
        return rewrite_parsed(parsed, new_texts)

    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        return uploads.UploadsFormat().block_response(notice, streaming)


class JsonApiFormat:
    """A service whose prompts travel as JSON: ``select`` names the strings to inspect.

    Multipart uploads, forms and plain text sent to the same service are routed to their own
    readers first; ``opaque`` names parts that cannot be read as text (images, binary files).
    """

    name: str = "json"
    select: Callable[[Any], Sequence[Path]] = staticmethod(select)
    opaque: Callable[[Any], Sequence[Path]] | None = None

    def extract(self, body: bytes, content_type: str, path: str) -> ParsedRequest:
        routed = route(self.name, body, content_type)
        if routed is not None:
            return routed
        return json_request(self.name, body, type(self).select, uninspected=type(self).opaque)

    def rewrite(self, parsed: ParsedRequest, new_texts: Sequence[str]) -> bytes:
        return rewrite_parsed(parsed, new_texts)
