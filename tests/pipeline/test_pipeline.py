"""The pure request pipeline, driven without a proxy: routing, what is inspected, what leaves, the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from guard import pipeline
from guard.audit.masking import FoundAt
from guard.engine import Engine
from guard.formats import AmbiguousRequest, FormatError, NotRewritable, format_for
from guard.policy import Policy, load_policy

ID = "A123456789"
NAME = "陳志明"


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    path = Path(tmp_path_factory.mktemp("policy")) / "policy.yaml"
    path.write_text("extends: default\nservices:\n"
                    '  - {name: local-openai, hosts: ["127.0.0.1:9443"], api: openai}\n', encoding="utf-8")
    return load_policy(str(path))


@pytest.fixture(scope="module")
def engine(policy: Policy) -> Engine:
    return Engine(policy)


Headers = tuple[tuple[str, str], ...]
OPENAI_TUNNEL = ("api.openai.com", 443)


def request(path: str = "/v1/chat/completions", body: Any = b"", headers: Headers = (),
            host: str = "api.openai.com", port: int = 443, tunnel: tuple[str, int] | None = OPENAI_TUNNEL,
            sni: str = "api.openai.com", authority: str = "", method: str = "POST",
            content_type: str = "application/json") -> pipeline.Request:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    named = host if port == 443 else f"{host}:{port}"
    fields = (("host", named), ("content-type", content_type), *headers)
    return pipeline.Request(method, path, fields, raw, host, port, tunnel, sni, authority)


def inspected(policy: Policy, req: pipeline.Request) -> pipeline.Inspection:
    service = pipeline.route(policy, req).service
    assert service is not None
    return pipeline.inspection(format_for(service.api), service, req, 16 * 1024**2)


# ---------------------------------------------------------------- routing by the tunnel

@pytest.mark.parametrize(("tunnel", "sni", "intercepted"), [
    (("api.openai.com", 443), "api.openai.com", True),
    (("api.openai.com", 443), "www.example.com", True),      # SNI lies: the CONNECT target is AI
    (("www.example.com", 443), "api.openai.com", True),      # CONNECT lies: the SNI is AI
    (("www.example.com", 443), "www.example.com", False),
    (("127.0.0.1", 9443), "", True),                          # host:port catalogue entry
    (("127.0.0.1", 9444), "", False),
    (("poe.com", 443), "poe.com", True),                      # known but unsupported: opened to answer
])
def test_intercepts_when_connect_target_or_sni_is_ai(policy: Policy, tunnel: tuple[str, int], sni: str,
                                                     intercepted: bool) -> None:
    assert pipeline.intercepts(policy, tunnel, sni) is intercepted


@pytest.mark.parametrize(("kwargs", "service", "refused"), [
    ({}, "openai-api", False),
    ({"host": "www.example.com"}, "openai-api", True),                     # Host disagrees with the tunnel
    ({"headers": (("host", "api.openai.com"),)}, "openai-api", True),       # two Host headers
    ({"authority": "www.example.com"}, "openai-api", True),                 # absolute URI elsewhere
    ({"authority": "api.openai.com:443"}, "openai-api", False),
    ({"tunnel": ("www.example.com", 443), "sni": "www.example.com", "host": "www.example.com"}, None, False),
    ({"tunnel": ("chat.openai.com", 443), "sni": "chat.openai.com", "host": "chatgpt.com"}, "chatgpt", False),
    ({"tunnel": None, "sni": "", "host": "api.openai.com", "port": 80}, "openai-api", False),  # plain HTTP
    ({"tunnel": ("127.0.0.1", 9443), "sni": "", "host": "127.0.0.1", "port": 9443}, "local-openai", False),
    ({"tunnel": ("127.0.0.1", 9443), "sni": "", "host": "127.0.0.1", "port": 9444}, "local-openai", True),
])
def test_route_is_the_tunnels(policy: Policy, kwargs: dict[str, Any], service: str | None,
                              refused: bool) -> None:
    routed = pipeline.route(policy, request(**kwargs))
    assert (routed.service.name if routed.service else None) == service
    assert bool(routed.refusal) is refused


# ---------------------------------------------------------------- every string, strictly parsed

TOOLS_BODY = {
    "model": "gpt-4o-mini", "user": ID, "metadata": {"case": NAME},
    "messages": [{"role": "user", "name": NAME, "content": "天氣如何？"}],
    "tools": [{"type": "function", "function": {
        "name": "lookup", "description": f"查 {ID} 的資料",
        "parameters": {"type": "object", "properties": {"who": {"type": "string", "enum": [NAME]}}}}}],
    "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"description": ID}}},
}


@pytest.mark.parametrize(("path", "body", "hidden"), [
    ("/v1/chat/completions", TOOLS_BODY, (ID, NAME)),
    ("/v1/messages", {"model": "claude", "max_tokens": 10, "metadata": {"user_id": ID},
                      "tools": [{"name": "t", "description": NAME, "input_schema": {"type": "object"}}],
                      "messages": [{"role": "user", "content": "hi"}]}, (ID, NAME)),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], ID: {NAME: 1}}, (ID, NAME)),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [
        {"type": "x_unknown_part", "payload": NAME}]}], "url": f"https://x.example/?id={ID}"}, (ID, NAME)),
])
def test_every_string_and_key_is_a_segment(policy: Policy, path: str, body: Any,
                                           hidden: tuple[str, ...]) -> None:
    seen = inspected(policy, request(path, body))
    joined = "\n".join(seen.texts)
    for value in hidden:
        assert value in joined


@pytest.mark.parametrize(("body", "error"), [
    (b'{"messages": [], "messages": [{"role": "user", "content": "A123456789"}]}', AmbiguousRequest),
    (b'{"messages": [{"role": "user", "content": "x", "content": "y"}]}', AmbiguousRequest),
    (b'{"temperature": NaN, "messages": []}', AmbiguousRequest),
    (b'{"messages": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", FormatError),
    (b'{"messages": [' + b"[" * 200 + b"]" * 200 + b"]}", FormatError),
    (b'{"messages": []} trailing', FormatError),
])
def test_ambiguous_or_unreadable_json_is_refused(policy: Policy, body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        inspected(policy, request(body=body))


def test_json_labelled_as_a_form_is_unreadable(policy: Policy) -> None:
    body = {"messages": [{"role": "user", "content": ID}]}
    seen = inspected(policy, request(body=body, content_type="application/x-www-form-urlencoded"))
    assert seen.parsed.uninspected == ("body: JSON sent as a form",)
    assert any(ID in t for t in seen.texts)  # still read as a form: the field name holds it


def test_form_field_names_are_inspected(policy: Policy) -> None:
    seen = inspected(policy, request(body=f"{quote(NAME)}=1&q=hello".encode(),
                                     content_type="application/x-www-form-urlencoded"))
    keys = [s.text.removeprefix(pipeline.PIECE_SEPARATOR) for s in seen.segments if s.where == "object keys"]
    assert keys == [f"{NAME}\nq"]


# ---------------------------------------------------------------- URL, query and headers

def test_url_and_headers_are_segments(policy: Policy) -> None:
    uuid = "6f1c2b7e-0a47-4c1e-9a55-3f0f6b7a2d11"
    req = request(f"/v1/files/{ID}?q={quote(NAME + ' 你好')}&request_id={uuid}", b"", method="GET",
                  headers=(("user-agent", f"tool/{ID}"), ("authorization", f"Bearer {ID}"),
                           ("x-note", quote(NAME)), ("cookie", f"case={ID}")))
    seen = inspected(policy, req)
    wheres = {s.where: s.text for s in seen.url_parts + seen.header_parts}
    assert wheres["url path[3]"] == ID
    assert wheres["url query-value[0]"] == f"{NAME} 你好"
    assert wheres["header user-agent"] == f"tool/{ID}"
    assert wheres["header x-note"] == NAME                       # percent-decoded: text is text
    assert wheres["header cookie"] == f"case={ID}"
    assert "header authorization" not in wheres                  # credentials are not text
    assert "url query-value[1]" not in wheres                     # a UUID: technical
    assert "url path[1]" not in wheres and "header content-type" not in wheres  # protocol words
    # Everything but the prompt goes to the engine as one segment: URL parts and header values a line each.
    url, headers = "\n".join(p.text for p in seen.url_parts), "\n".join(p.text for p in seen.header_parts)
    pieces = [*(p.text for p in seen.parsed.extra), url, headers]
    assert seen.texts[-1] == pipeline.PIECE_SEPARATOR + pipeline.PIECE_SEPARATOR.join(pieces)


def test_a_redaction_across_url_parts_cannot_be_written_back(policy: Policy) -> None:
    req = request(f"/v1/{ID}?q=Hello+World", b"", method="GET", headers=(("x-note", "Hello There"),))
    seen = inspected(policy, req)
    texts = list(seen.texts)
    texts[-1] = texts[-1].replace(ID + "\n", ID + " ")             # one line less in the URL
    with pytest.raises(NotRewritable):
        pipeline.outgoing(format_for("openai"), req, seen, texts)
    texts[-1] = texts[-1].replace(pipeline.PIECE_SEPARATOR, " ", 1)  # one piece less
    with pytest.raises(NotRewritable):
        pipeline.outgoing(format_for("openai"), req, seen, texts)


# A value split across two query parameters, path steps or headers (F123456784 and 0912345678 made up,
# valid): each piece alone is a protocol-looking number, read beside the others it is the value.
SPLIT_IN_URL_OR_HEADERS = [
    ("/v1/models?a=F12345&b=6784", (), "TW_NATIONAL_ID"),
    ("/v1/models?a=F1&b=2345&c=6784", (), "TW_NATIONAL_ID"),                    # three pieces
    ("/v1/models?page=F12345&limit=6784", (), "TW_NATIONAL_ID"),                # protocol keys
    ("/v1/files/F12345/6784", (), "TW_NATIONAL_ID"),                           # two path steps
    ("/v1/models?a=0912&b=345&c=678", (), "PHONE_NUMBER"),                     # digits only
    ("/v1/models", (("x-a", "F12345"), ("x-b", "6784")), "TW_NATIONAL_ID"),     # two headers
    ("/v1/models", (("x-a", "0912"), ("x-b", "345"), ("x-c", "678")), "PHONE_NUMBER"),
    ("/v1/models?a=F12345", (("x-b", "6784"),), "TW_NATIONAL_ID"),             # the URL, then a header
    # a first piece in lower case (a national ID's letter may be), a protocol-looking word
    ("/v1/models?x=f1234&y=56784", (), "TW_NATIONAL_ID"),
    ("/v1/models?x=f&y=123456784", (), "TW_NATIONAL_ID"),
    ("/v1/models?x=f-1234&y=56784", (), "TW_NATIONAL_ID"),
    ("/v1/models", (("x-a", "f1234"), ("x-b", "56784")), "TW_NATIONAL_ID"),
    # neighbours that end or start with a letter or digit, read on the lines around the value
    ("/v1/0912/345/678", (), "PHONE_NUMBER"),                                    # v1 before it
    ("/v1/models?a=0912&b=345&c=678&page=2", (), "PHONE_NUMBER"),                # a page number after it
    ("/v1/models?n=File1&a=0912&b=345&c=678", (), "PHONE_NUMBER"),
    ("/v1/models?a=F1234&b=5678&c=4&limit=20", (), "TW_NATIONAL_ID"),
    ("/v1/models", (("x-a", "0912"), ("x-b", "345"), ("x-c", "678"), ("x-retry", "2")), "PHONE_NUMBER"),
]


@pytest.mark.parametrize(("path", "headers", "entity_type"), SPLIT_IN_URL_OR_HEADERS)
def test_a_value_split_across_url_parts_or_headers_is_found_and_blocked(
        policy: Policy, engine: Engine, path: str, headers: Headers, entity_type: str) -> None:
    req = request(path, b"", method="GET", headers=headers)
    seen = inspected(policy, req)
    verdict = engine.inspect_segments(seen.texts, "api.openai.com")
    assert [f.entity_type for f in verdict.findings] == [entity_type]
    with pytest.raises(NotRewritable):  # one placeholder for two parts: the addon blocks instead
        pipeline.outgoing(format_for("openai"), req, seen, verdict.redacted)


# Real clients' URLs and headers: their page numbers, counts, timeouts and retry counts are read
# beside the user agent, and none is a finding.
OPENAI_SDK = (("accept", "application/json"), ("user-agent", "OpenAI/Python 1.55.3"),
              ("x-stainless-lang", "python"), ("x-stainless-package-version", "1.55.3"),
              ("x-stainless-os", "Linux"), ("x-stainless-arch", "x64"), ("x-stainless-runtime", "CPython"),
              ("x-stainless-runtime-version", "3.11.2"), ("x-stainless-async", "false"),
              ("x-stainless-retry-count", "0"), ("x-stainless-read-timeout", "600"), ("content-length", "97"))
ANTHROPIC_SDK = (("anthropic-version", "2023-06-01"), ("user-agent", "Anthropic/Python 0.40.0"),
                 ("x-stainless-retry-count", "2"), ("x-stainless-timeout", "600"),
                 ("x-request-id", "6f1c2b7e-0a47-4c1e-9a55-3f0f6b7a2d11"))
CHROMIUM = (("sec-ch-ua", '"Chromium";v="131", "Not_A Brand";v="24"'), ("sec-ch-ua-mobile", "?0"),
            ("sec-ch-ua-platform", '"Linux"'), ("dnt", "1"), ("upgrade-insecure-requests", "1"),
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           "Chrome/131.0.0.0 Safari/537.36"), ("priority", "u=1, i"), ("sec-gpc", "1"))
CLEAN_URLS_AND_HEADERS = [
    ("/v1/models?page=2&limit=50", OPENAI_SDK),
    ("/v1/files?limit=1000&order=desc&after=2024", OPENAI_SDK),
    ("/v1/messages?beta=true", ANTHROPIC_SDK),
    ("/backend-api/conversations?offset=0&limit=28&order=updated", CHROMIUM),
    ("/v1beta/models/gemini-1.5-flash:streamGenerateContent?alt=sse&key=2024",
     (("x-goog-api-client", "genai-py/1.2.0 gl-python/3.11.2"), ("x-retry", "3"), ("x-page", "12"))),
]


@pytest.mark.parametrize(("path", "headers"), CLEAN_URLS_AND_HEADERS)
def test_protocol_numbers_beside_other_pieces_are_read_and_not_findings(
        policy: Policy, engine: Engine, path: str, headers: Headers) -> None:
    req = request(path, b"", method="GET", headers=headers)
    seen = inspected(policy, req)
    numbers = [p.text for p in seen.url_parts + seen.header_parts if p.text.isdigit()]
    assert numbers                                        # read, beside the user agent
    verdict = engine.inspect_segments(seen.texts, "api.openai.com")
    assert verdict.findings == ()


# A path's words (v1) are the API's, not fragments: read before numbers they make an ID's shape.
@pytest.mark.parametrize("path", ["/v1/models?page=2", "/v1/files/17", "/v1/models?limit=50&order=desc"])
def test_a_number_alone_is_not_read(policy: Policy, path: str) -> None:
    seen = inspected(policy, request(path, b"", method="GET"))
    assert seen.url_parts == () and seen.header_parts == ()


def test_outgoing_rewrites_only_what_changed(policy: Policy) -> None:
    req = request(f"/v1/chat/completions?user={ID}&x=1",
                  {"model": "m", "messages": [{"role": "user", "content": "你好"}]},
                  headers=(("x-guard-reason", quote("辦理陳情案件")), ("x-trace", quote(NAME))))
    seen = inspected(policy, req)
    fmt = format_for("openai")
    same = pipeline.outgoing(fmt, req, seen, seen.texts)
    assert same.body is req.body and same.path == req.path and not same.body_changed
    assert all(k != "x-guard-reason" for k, _ in same.headers)   # never leaves
    redacted = [t.replace(ID, "<TW_NATIONAL_ID_1>").replace(NAME, "<PERSON_1>") for t in seen.texts]
    out = pipeline.outgoing(fmt, req, seen, redacted)
    assert out.path == "/v1/chat/completions?user=%3CTW_NATIONAL_ID_1%3E&x=1"
    assert ("x-trace", "<PERSON_1>") in out.headers
    assert out.body == req.body


# ---------------------------------------------------------------- 查詢事由

@pytest.mark.parametrize(("headers", "prompt", "reason"), [
    ((("x-guard-reason", quote("辦理陳情案件回覆")),), "你好", "辦理陳情案件回覆"),
    ((), "請幫我寫回函。\n查詢事由：民眾陳情第 117 號案件\n內容如下", "民眾陳情第 117 號案件"),
    ((), "事由: audit follow-up for case 17", "audit follow-up for case 17"),
    ((("x-guard-reason", quote("短")),), "查詢事由：依法辦理戶籍查詢", "依法辦理戶籍查詢"),
    ((), "請問查詢事由：要怎麼寫？", ""),            # not on a line of its own
    ((), "查詢事由：短", ""),                        # fewer than 4 characters
    ((), "沒有事由的提示", ""),
])
def test_stated_reason(policy: Policy, headers: Headers, prompt: str, reason: str) -> None:
    req = request(body={"messages": [{"role": "user", "content": prompt}]}, headers=headers)
    assert pipeline.stated_reason(req, inspected(policy, req), ()) == reason


def test_stated_reason_is_masked_and_the_confirm_form_comes_first(policy: Policy) -> None:
    prompt = f"查詢事由：協查 {ID} 案\n內容"
    req = request(body={"messages": [{"role": "user", "content": prompt}]})
    seen = inspected(policy, req)
    index = next(i for i, t in enumerate(seen.texts) if t == prompt)
    start = prompt.index(ID)
    found = [FoundAt("TW_NATIONAL_ID", index, start, start + 10, 1.0, "warn")]
    assert pipeline.stated_reason(req, seen, found) == "協查 A12*****89 案"
    assert pipeline.stated_reason(req, seen, found, confirmed="表單填寫的事由") == "表單填寫的事由"


def test_reason_line_is_taken_out_of_the_body() -> None:
    texts = ["請幫我寫回函。\n查詢事由：民眾陳情第 117 號案件\n內容如下", "查詢事由：依法辦理\n",
             "header 查詢事由：保留"]
    assert pipeline.without_reason_lines(texts, 2) == ["請幫我寫回函。\n內容如下", "", texts[2]]


# ---------------------------------------------------------------- the stored path

def test_event_path_never_holds_a_raw_value(policy: Policy) -> None:
    path = f"/v1/users/{ID}/chat?q={ID}"
    assert pipeline.event_path(path) == "/v1/users/A12*****89/chat"
    seen = inspected(policy, request(path, b"", method="GET"))
    index, joined = len(seen.texts) - 1, seen.texts[-1]
    found = [FoundAt("TW_NATIONAL_ID", index, joined.index(ID), joined.index(ID) + 10, 1.0, "redact")]
    assert pipeline.event_path(path, seen, found) == "/v1/users/A12*****89/chat"


# ---------------------------------------------------------------- writing the rest of the body back

def test_other_strings_and_keys_are_rewritten_in_place(policy: Policy) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "你好"}], "user": f"u {ID}",
            "metadata": {"note": f"第一行\n{ID}", ID: "x"}}
    req = request(body=body)
    seen = inspected(policy, req)
    n_body = len(seen.parsed.all_segments)
    texts = [t.replace(ID, "<TW_NATIONAL_ID_1>") if i < n_body else t for i, t in enumerate(seen.texts)]
    out = pipeline.outgoing(format_for("openai"), req, seen, texts)
    sent = json.loads(out.body)
    assert sent["user"] == "u <TW_NATIONAL_ID_1>"
    assert sent["metadata"] == {"note": "第一行\n<TW_NATIONAL_ID_1>", "<TW_NATIONAL_ID_1>": "x"}
    assert sent["messages"] == body["messages"] and ID not in out.body.decode()


def test_websocket_message_is_read_whole_and_written_back() -> None:
    """The addon inspects a WebSocket message's every string and key (``all_segments``) the same way."""
    from guard.formats import copilot

    message = json.dumps({"event": "send", "content": [{"type": "text", "text": "你好"}],
                          "context": {"note": f"案件 {ID}"}}, ensure_ascii=False)
    parsed = copilot.extract_ws_message(message)
    texts = [s.text for s in parsed.all_segments]
    assert any(ID in t for t in texts) and "你好" in texts
    out = json.loads(copilot.rewrite_ws_message(parsed, [t.replace(ID, "<TW_NATIONAL_ID_1>") for t in texts]))
    assert out["context"]["note"] == "案件 <TW_NATIONAL_ID_1>" and out["content"][0]["text"] == "你好"
