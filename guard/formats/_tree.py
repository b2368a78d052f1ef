"""Addressing strings inside JSON documents, form bodies and JSON nested in strings, and writing them back."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from guard.formats.base import FormatError, ParsedRequest, Segment

Step = str | int
Path = tuple[Step, ...]


@dataclass
class Nested:
    """A string that holds JSON, decoded; re-encoded on write only when something inside changed."""

    raw: str
    value: Any
    dirty: bool = False


@dataclass
class FormField:
    raw_key: str
    key: str
    raw_value: str
    value: Any  # str, or Nested when the field holds JSON
    dirty: bool = False


@dataclass
class Form:
    """An ``application/x-www-form-urlencoded`` body; untouched fields keep their raw bytes."""

    fields: list[FormField] = field(default_factory=list)


def loads(body: bytes | str, what: str = "JSON body") -> Any:
    """Parse JSON, mapping every failure to :class:`FormatError` (without quoting the content)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        pos = getattr(e, "pos", None)
        where = f" (at offset {pos})" if pos is not None else ""
        raise FormatError(f"{what} is not valid JSON{where}") from None


def dumps(value: Any) -> str:
    """Compact JSON as browsers and SDKs send it, keeping non-ASCII characters as they are."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def encode_json(value: Any) -> bytes:
    text = dumps(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from \ud800-style escapes: keep them escaped
        return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def parse_form(body: bytes) -> Form:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("form body is not UTF-8") from None
    form = Form()
    for pair in text.split("&"):
        if not pair:
            continue
        raw_key, _, raw_value = pair.partition("=")
        form.fields.append(FormField(raw_key, unquote_plus(raw_key), raw_value, unquote_plus(raw_value)))
    return form


def expand(node: Any, should_decode: Callable[[Path, str], bool], path: Path = ()) -> Any:
    """Replace strings that ``should_decode`` picks and that hold a JSON array/object by :class:`Nested`."""
    if isinstance(node, dict):
        for k, v in node.items():
            node[k] = expand(v, should_decode, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            node[i] = expand(v, should_decode, (*path, i))
    elif isinstance(node, Form):
        for i, f in enumerate(node.fields):
            f.value = expand(f.value, should_decode, (*path, i))
    elif isinstance(node, str) and node[:1] in ("[", "{") and should_decode(path, node):
        try:
            inner = json.loads(node)
        except (ValueError, RecursionError):
            return node
        if isinstance(inner, dict | list):
            return Nested(node, expand(inner, should_decode, path))
    return node


def _child(node: Any, step: Step) -> Any:
    if isinstance(node, Form):
        return node.fields[int(step)].value
    return node[step]


def strings(node: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every string leaf, depth first, in document order (Nested layers are transparent)."""
    if isinstance(node, Nested):
        yield from strings(node.value, path)
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from strings(v, (*path, i))
    elif isinstance(node, Form):
        for i, f in enumerate(node.fields):
            yield from strings(f.value, (*path, i))
    elif isinstance(node, str):
        yield path, node


def get(node: Any, path: Path) -> Any:
    for step in path:
        while isinstance(node, Nested):
            node = node.value
        node = _child(node, step)
    while isinstance(node, Nested):
        node = node.value
    return node


def put(node: Any, path: Path, value: str) -> None:
    """Set the string at ``path``, marking every Nested layer and form field on the way as dirty."""
    parent = node
    for i, step in enumerate(path):
        while isinstance(parent, Nested):
            parent.dirty = True
            parent = parent.value
        if i == len(path) - 1:
            if isinstance(parent, Form):
                f = parent.fields[int(step)]
                f.value, f.dirty = value, True
            else:
                parent[step] = value
            return
        if isinstance(parent, Form):
            parent.fields[int(step)].dirty = True
        parent = _child(parent, step)
    raise ValueError("empty path")


def collapse(node: Any) -> Any:
    """Turn Nested layers back into strings (re-encoded only when dirty)."""
    if isinstance(node, Nested):
        return dumps(collapse(node.value)) if node.dirty else node.raw
    if isinstance(node, dict):
        return {k: collapse(v) for k, v in node.items()}
    if isinstance(node, list):
        return [collapse(v) for v in node]
    return node


def serialise_form(form: Form) -> bytes:
    parts = []
    for f in form.fields:
        raw_value = quote_plus(collapse(f.value), safe="") if f.dirty else f.raw_value
        parts.append(f"{f.raw_key}={raw_value}")
    return "&".join(parts).encode("utf-8")


def describe(root: Any, path: Path, prefix: str = "") -> str:
    """Human-readable location: ``messages[2].content[0].text``, ``form[f.req][0][0]``."""
    out = prefix
    node = root
    for step in path:
        while isinstance(node, Nested):
            node = node.value
        if isinstance(node, Form):
            out += f"form[{node.fields[int(step)].key}]"
        elif isinstance(step, int):
            out += f"[{step}]"
        else:
            out += f".{step}" if out else str(step)
        node = _child(node, step)
    return out or "body"


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_URL = re.compile(r"^(?:https?|wss?|ftp|file|data|blob|sediment|file-service)://?\S*$", re.IGNORECASE)
_BLOB = re.compile(r"^[A-Za-z0-9+/_=.\-~!]{80,}$")
_HEX = re.compile(r"^(?:0x)?[0-9a-fA-F]{32,}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$")

#: Keys whose values are protocol vocabulary, never user text.
TECHNICAL_KEYS = frozenset({
    "model", "role", "type", "object", "mime_type", "mimeType", "media_type", "content_type",
    "timezone", "locale", "language", "signature", "encoding", "format", "detail", "finish_reason",
    "action", "mode", "status", "version", "author", "sender", "kind", "method", "event",
})


def is_technical(key: Step | None, value: str) -> bool:
    """Strings that are identifiers or machine data, not text a person wrote.

    Deliberately narrow: a short ASCII token like ``A123456789`` is exactly what must be inspected,
    so only unmistakable shapes (UUIDs, URLs, long base64/hex blobs, timestamps) are skipped; digit
    strings stay (phone numbers).
    """
    if not value.strip():
        return True
    if isinstance(key, str) and key in TECHNICAL_KEYS and len(value) <= 64 and " " not in value:
        return True
    return bool(
        _UUID.match(value) or _URL.match(value) or _BLOB.match(value) or _HEX.match(value)
        or _TIMESTAMP.match(value)
    )


def generic_paths(root: Any) -> list[Path]:
    """Every user-visible string of a document: all strings except technical ones."""
    return [p for p, s in strings(root) if not is_technical(p[-1] if p else None, s)]


def json_request(
    fmt: str,
    body: bytes,
    select: Callable[[Any], Sequence[Path]],
    *,
    decode_nested: Callable[[Path, str], bool] | None = None,
    uninspected: Callable[[Any], Sequence[Path]] | None = None,
    prefix: str = "",
) -> ParsedRequest:
    """Parse a JSON body, select the string paths to inspect, and return a request that can be rewritten."""
    if not body.strip():
        return ParsedRequest(fmt, body, ())
    root = _expanded(loads(body), decode_nested)
    paths = list(select(root))
    segments = tuple(Segment(get(root, p), describe(root, p, prefix)) for p in paths)
    hidden = tuple(describe(root, p, prefix) for p in (uninspected(root) if uninspected else ()))

    def write(new_texts: Sequence[str]) -> bytes:
        fresh = _expanded(loads(body), decode_nested)
        for p, seg, new in zip(paths, segments, new_texts, strict=True):
            if new != seg.text:
                put(fresh, p, new)
        return encode_json(collapse(fresh))

    return ParsedRequest(fmt, body, segments, hidden, write)


def form_request(
    fmt: str,
    body: bytes,
    select: Callable[[Any], Sequence[Path]],
    *,
    decode_nested: Callable[[Path, str], bool] | None = None,
) -> ParsedRequest:
    """Like :func:`json_request` for form bodies; fields may hold (nested) JSON."""
    root = _expanded(parse_form(body), decode_nested)
    paths = list(select(root))
    segments = tuple(Segment(get(root, p), describe(root, p)) for p in paths)

    def write(new_texts: Sequence[str]) -> bytes:
        fresh = _expanded(parse_form(body), decode_nested)
        for p, seg, new in zip(paths, segments, new_texts, strict=True):
            if new != seg.text:
                put(fresh, p, new)
        return serialise_form(fresh)

    return ParsedRequest(fmt, body, segments, (), write)


def _expanded(root: Any, decode_nested: Callable[[Path, str], bool] | None) -> Any:
    return expand(root, decode_nested) if decode_nested else root


def text_at(root: Any, path: Path) -> bool:
    """True when ``path`` exists and holds a string."""
    try:
        return isinstance(get(root, path), str)
    except (KeyError, IndexError, TypeError, ValueError):
        return False
