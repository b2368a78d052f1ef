"""Tables for the addon's small pure helpers: sizes, the client-IP-to-user map, 查詢事由, stream detection."""

from __future__ import annotations

import pytest
from mitmproxy import http
from mitmproxy.test import tflow, tutils

from guard.addon import (
    may_hold_placeholders,
    parse_size,
    parse_user_map,
    user_for_address,
    wants_stream,
)
from guard.formats.restore import restore_body


def _flow(path: str = "/v1/chat/completions", headers: dict[str, str] | None = None) -> http.HTTPFlow:
    request = tutils.treq(path=path.encode(), headers=http.Headers(**(headers or {})))
    return tflow.tflow(req=request)


# ---------------------------------------------------------------- parse_size

@pytest.mark.parametrize(("text", "size"), [
    ("0", 0),
    ("512", 512),
    ("64k", 64 * 1024),
    ("64K", 64 * 1024),
    ("64kb", 64 * 1024),
    (" 16m ", 16 * 1024**2),
    ("1g", 1024**3),
    ("2 m", 2 * 1024**2),
])
def test_parse_size_valid(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "k", "-1k", "1.5m", "16 megabytes", "1t", "ten", "16mm"])
def test_parse_size_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


# ---------------------------------------------------------------- parse_user_map / user_for_address

USER_MAP = """
# agency LAN
10.0.0.0/8        it-pool
10.1.2.0/24       records-section   # more specific: wins over 10.0.0.0/8
10.1.2.30         chen.clerk
2001:db8::/32     v6-pool
"""


@pytest.mark.parametrize(("address", "user"), [
    ("10.1.2.30", "chen.clerk"),       # exact host
    ("10.1.2.31", "records-section"),  # the /24
    ("10.9.9.9", "it-pool"),           # the /8
    ("192.168.1.5", ""),               # not mapped
    ("2001:db8::7", "v6-pool"),
    ("::ffff:10.1.2.30", ""),          # an IPv4-mapped address is IPv6 here: no cross-version match
    ("not-an-address", ""),
    ("", ""),
])
def test_user_for_address(address: str, user: str) -> None:
    assert user_for_address(parse_user_map(USER_MAP), address) == user


@pytest.mark.parametrize(("text", "problem"), [
    ("10.0.0.1", "users.txt:1: expected 'ADDRESS USER', got 1 fields"),
    ("10.0.0.1 chen extra", "users.txt:1: expected 'ADDRESS USER', got 3 fields"),
    ("# header\n\nlocalhost chen", "users.txt:3: not an IP address or network: 'localhost'"),
    ("10.0.0.0/33 chen", "users.txt:1: not an IP address or network"),
])
def test_parse_user_map_invalid(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_user_map(text, "users.txt")


def test_parse_user_map_empty_is_no_users() -> None:
    assert parse_user_map("# nobody yet\n\n") == ()


# ---------------------------------------------------------------- wants_stream

@pytest.mark.parametrize(("path", "accept", "body", "stream"), [
    ("/v1/chat/completions", "", b'{"model": "m", "stream": true}', True),
    ("/v1/chat/completions", "", b'{"model": "m", "stream": false}', False),
    ("/v1/chat/completions", "", b'{"model": "m"}', False),
    ("/v1/chat/completions", "", b'{"stream": "true"}', False),  # only a JSON true counts
    ("/v1/chat/completions", "text/event-stream", b'{"model": "m"}', True),
    ("/v1/messages", "application/json, text/event-stream", b"", True),
    ("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", "", b"{}", True),
    ("/v1beta/models/gemini-2.0-flash:generateContent", "", b"{}", False),
    ("/v1/chat/completions", "", b'{"stream": tru', False),     # broken JSON: not a stream
    ("/v1/chat/completions", "", b"stream=true", False),        # not JSON at all
    ("/v1/chat/completions", "", b'[{"stream": true}]', False),
    ("/v1/chat/completions", "", b"[" * 100_000 + b"]" * 100_000, False),  # too deep: no RecursionError
])
def test_wants_stream(path: str, accept: str, body: bytes, stream: bool) -> None:
    flow = _flow(path, {"accept": accept} if accept else {})
    assert wants_stream(flow, body) is stream


# ---------------------------------------------------------------- HTTP/1 trailers

@pytest.mark.parametrize(("wire", "body"), [
    (b"5\r\nhello\r\n0\r\nx-case-note: A123456789\r\n\r\n", b"hello"),
    (b"5\r\nhello\r\n0\r\na: 1\r\nb: 2\r\n\r\n", b"hello"),
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
])
def test_chunked_reader_drops_trailer_fields(wire: bytes, body: bytes) -> None:
    """mitmproxy 11 raises NotImplementedError on trailers inside its connection handler; they are dropped."""
    import h11
    from h11._receivebuffer import ReceiveBuffer

    from guard.addon import _TrailerDroppingReader, drop_http1_trailers

    reader, buffer, data, end = _TrailerDroppingReader(), ReceiveBuffer(), b"", None
    buffer += wire
    while (event := reader(buffer)) is not None:
        if isinstance(event, h11.Data):
            data += bytes(event.data)
        else:
            end = event
            break
    assert data == body and isinstance(end, h11.EndOfMessage) and list(end.headers) == []
    drop_http1_trailers()
    from mitmproxy.proxy.layers.http import _http1
    assert _http1.make_body_reader(None).__class__ is _TrailerDroppingReader  # what mitmproxy now builds


# ---------------------------------------------------------------- may_hold_placeholders

_MAP = {"<TW_NATIONAL_ID_1>": "A123456789", "<PERSON_1>": "陳志明"}
_JSON = "application/json"


@pytest.mark.parametrize(("body", "content_type", "restored"), [
    ('{"choices":[{"message":{"content":"<TW_NATIONAL_ID_1> 的資料"}}]}'.encode(), _JSON, True),
    (b'{"text":"\\u003cPERSON_1\\u003e \\u60a8\\u597d"}', _JSON, True),             # JSON-escaped
    (b'{"inner":"{\\"t\\":\\"\\\\u003cPERSON_1\\\\u003e\\"}"}', _JSON, True),           # escaped twice
    (b"<p>&lt;PERSON_1&gt; &#60;TW_NATIONAL_ID_1&#62;</p>", "text/html", True),       # HTML entities
    (b"see https://x.example/?q=%3CPERSON_1%3E", "text/plain", True),               # percent-encoded
    (b'{"t":"\\u003c\\u0050ERSON_1\\u003e"}', _JSON, True),                          # a letter escaped
    (b'data: {"choices":[{"delta":{"content":"<PERSON_1>"}}]}\n\n', "text/event-stream", True),
    ('{"choices":[{"message":{"content":"好的，已整理成公文草稿。"}}]}'.encode(), _JSON, False),
    (b'{"text":"\\u60a8\\u597d PERSON_2 <PERSON_3>"}', _JSON, False),                  # not ours
    (b"plain text, no placeholder", "text/plain", False),
    (b"", _JSON, False),
])
def test_a_reply_skipped_as_placeholder_free_is_one_restoring_leaves_alone(
        body: bytes, content_type: str, restored: bool) -> None:
    changed = restore_body(body, content_type, _MAP) != body
    assert changed == restored
    if changed:  # the fast check never skips a reply restoring would change
        assert may_hold_placeholders(body, _MAP)
    if not restored and b"\\u00" not in body:
        assert not may_hold_placeholders(body, _MAP)
