"""Shared assertions for the format tests."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from guard.formats.base import NativeResponse, ParsedRequest, RequestFormat
from tests.formats.files import docx, zip_archive

__all__ = ["docx", "zip_archive"]  # the upload builders, where the format tests have always found them


def _strings(node: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], str]:
    if isinstance(node, dict):
        return {p: s for k, v in node.items() for p, s in _strings(v, (*path, k)).items()}
    if isinstance(node, list):
        return {p: s for i, v in enumerate(node) for p, s in _strings(v, (*path, i)).items()}
    return {path: node} if isinstance(node, str) else {}


def _skeleton(node: Any) -> Any:
    """The document with every string blanked: what must survive a rewrite unchanged."""
    if isinstance(node, dict):
        return {k: _skeleton(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_skeleton(v) for v in node]
    return "" if isinstance(node, str) else node


def extract(fmt: RequestFormat, body: Any, content_type: str = "application/json",
            path: str = "/") -> ParsedRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return fmt.extract(raw, content_type, path)


def assert_rewrites_only_segments(fmt: RequestFormat, parsed: ParsedRequest,
                                  marker: str = "<PERSON_1>") -> bytes:
    """Rewrite every segment; the JSON result differs from the original exactly at those strings.

    Also: rewriting with the original texts returns the original bytes (clean prompts are byte-identical).
    """
    assert fmt.rewrite(parsed, list(parsed.texts)) is parsed.body
    new_texts = [f"{marker}{i}" for i in range(len(parsed.segments))]
    out = fmt.rewrite(parsed, new_texts)
    before, after = json.loads(parsed.body), json.loads(out)
    assert list(_iter_keys(before)) == list(_iter_keys(after)), "key order changed"
    assert _skeleton(before) == _skeleton(after)
    old, new = _strings(before), _strings(after)
    changed = sorted(s for p, s in new.items() if old[p] != s)
    assert changed == sorted(new_texts)
    return out


def _iter_keys(node: Any) -> Any:
    if isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _iter_keys(v)
    elif isinstance(node, list):
        for v in node:
            yield from _iter_keys(v)


def form_fields(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def json_error(resp: NativeResponse) -> dict[str, Any]:
    """The error body as an SDK reads it: status first, then JSON."""
    assert resp.status == 403
    assert dict(resp.headers)["content-type"].startswith("application/json")
    body = json.loads(resp.body)
    assert isinstance(body, dict)
    return body


def sse_payloads(body: bytes) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of every event in an SSE body."""
    out: list[tuple[str | None, Any]] = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        text = "\n".join(data)
        try:
            out.append((name, json.loads(text)))
        except ValueError:
            out.append((name, text))
    return out


def texts(parsed: ParsedRequest) -> list[str]:
    return list(parsed.texts)


def wheres(parsed: ParsedRequest) -> list[str]:
    return [s.where for s in parsed.segments]
