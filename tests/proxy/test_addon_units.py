"""Tables for the addon's small pure helpers: sizes, the client-IP-to-user map, 查詢事由, stream detection."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from mitmproxy import http
from mitmproxy.test import tflow, tutils

from guard.addon import (
    CONFIRMED_REASON,
    parse_size,
    parse_user_map,
    stated_reason,
    user_for_address,
    wants_stream,
)


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


# ---------------------------------------------------------------- stated_reason (查詢事由)

@pytest.mark.parametrize(("header", "texts", "reason"), [
    # from the X-Guard-Reason header (percent-encoded, as browsers send non-ASCII headers)
    (quote("辦理陳情案件回覆"), (), "辦理陳情案件回覆"),
    ("  case 2024-117 follow-up  ", (), "case 2024-117 follow-up"),
    # a header too short to be a reason: the line in the prompt counts
    (quote("短"), ("查詢事由：依法辦理戶籍查詢",), "依法辦理戶籍查詢"),
    # from a line of the prompt
    ("", ("請幫我寫回函。\n查詢事由：民眾陳情第 117 號案件\n內容如下",), "民眾陳情第 117 號案件"),
    ("", ("事由: audit follow-up for case 17",), "audit follow-up for case 17"),
    ("", ("第一段", "  查詢事由：  警政協查公文  "), "警政協查公文"),
    # not a reason
    ("", ("請問查詢事由：要怎麼寫？",), ""),  # not on a line of its own
    ("", ("查詢事由：短",), ""),                # fewer than 4 characters
    ("", ("沒有事由的提示",), ""),
    ("", (), ""),
])
def test_stated_reason(header: str, texts: tuple[str, ...], reason: str) -> None:
    flow = _flow(headers={"x-guard-reason": header} if header else {})
    assert stated_reason(flow, texts) == reason


def test_stated_reason_header_is_capped() -> None:
    assert len(stated_reason(_flow(headers={"x-guard-reason": "x" * 500}), ())) == 200


def test_stated_reason_from_the_confirm_form_comes_first() -> None:
    flow = _flow(headers={"x-guard-reason": quote("標頭裡的事由")})
    flow.metadata[CONFIRMED_REASON] = "表單填寫的查詢事由"
    assert stated_reason(flow, ("查詢事由：提示裡的事由",)) == "表單填寫的查詢事由"


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
])
def test_wants_stream(path: str, accept: str, body: bytes, stream: bool) -> None:
    flow = _flow(path, {"accept": accept} if accept else {})
    assert wants_stream(flow, body) is stream
