"""Web apps' replies: restoration in every encoding and framing, notices as clients read them, page loads."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from urllib.parse import quote

import pytest

from guard.formats import format_for, websocket
from guard.formats._framing import google_frames, signalr_records
from guard.formats._reply import is_page_load, streams_by_endpoint
from guard.formats.restore import (
    GoogleFrameRestorer,
    JsonLinesRestorer,
    RecentPlaceholders,
    SseRestorer,
    WsMessageRestorer,
    restore_body,
    restore_text,
    stream_restorer,
)
from guard.notice import BlockNotice, Decision, Reason
from tests import webapps

MAP = {"<PERSON_1>": "王小明", "<TW_NATIONAL_ID_1>": "A123456789", "<EMAIL_ADDRESS_1>": 'a"b@x.tw'}
ANSWER = "你說：我是<PERSON_1>，證號<TW_NATIONAL_ID_1>，信箱<EMAIL_ADDRESS_1>。"
RESTORED = '你說：我是王小明，證號A123456789，信箱a"b@x.tw。'

BLOCK = BlockNotice.from_entity_types("20261128-aaaa", ["CLASSIFICATION_MARKER"])
WARN = BlockNotice.from_entity_types("20261128-bbbb", ["PHONE_NUMBER"], Decision.WARN)
FAILURE = BlockNotice("20261128-cccc", (), 4, Decision.BLOCK, Reason.INSPECTION_TIMEOUT.value)
NOTICES = {"block": BLOCK, "warn": WARN, "failure": FAILURE}
OPENING = {"block": "【已攔截】", "warn": "【需確認】", "failure": "【未送出】"}


# ------------------------------------------------------------------ encodings

@pytest.mark.parametrize(("text", "expected"), [
    ("raw <PERSON_1>", "raw 王小明"),
    ("json \\u003cPERSON_1\\u003e", "json 王小明"),
    ("json upper \\u003CPERSON_1\\u003E", "json upper 王小明"),
    ("json quote \\u003cEMAIL_ADDRESS_1\\u003e", 'json quote a\\"b@x.tw'),
    ("nested \\\\u003cEMAIL_ADDRESS_1\\\\u003e", 'nested a\\\\\\"b@x.tw'),
    ("html &lt;EMAIL_ADDRESS_1&gt;", "html a&quot;b@x.tw"),
    ("html numeric &#60;PERSON_1&#62; &#x3C;PERSON_1&#x3e;", "html numeric 王小明 王小明"),
    ("percent %3CPERSON_1%3E %3cTW_NATIONAL_ID_1%3e", "percent %E7%8E%8B%E5%B0%8F%E6%98%8E A123456789"),
    ("mixed forms never pair: &lt;PERSON_1%3E", "mixed forms never pair: &lt;PERSON_1%3E"),
    ("unknown &lt;PERSON_9&gt; stays", "unknown &lt;PERSON_9&gt; stays"),
])
def test_restore_text_in_each_encoding(text: str, expected: str) -> None:
    assert restore_text(text, MAP) == expected


def test_html_reply_with_escaped_placeholders() -> None:
    body = webapps.html_reply(ANSWER)
    assert b"&lt;PERSON_1&gt;" in body
    out = restore_body(body, "text/html; charset=utf-8", MAP)
    assert webapps.read_html(out) == RESTORED
    assert '\\u662f王小明\\uff0c' in out.decode()  # the page's script holds it raw: restored raw


def test_json_body_with_json_in_a_string() -> None:
    inner = json.dumps({"answer": ANSWER})  # ASCII JSON inside a string: \u escapes twice over
    body = json.dumps({"data": inner}).encode()
    out = json.loads(restore_body(body, "application/json", MAP))
    assert json.loads(out["data"])["answer"] == RESTORED


def test_ndjson_lines_restored_each() -> None:
    lines = [{"result": {"response": {"token": t}}} for t in ("你好<PERSON_1>", "再見\\u003c")]
    body = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()
    out = restore_body(body, "application/json", MAP).decode().splitlines()
    assert json.loads(out[0])["result"]["response"]["token"] == "你好王小明"
    # the trailing "\u003c" could start a placeholder: held back, then sent on a line of its own
    assert [json.loads(line)["result"]["response"]["token"] for line in out[1:]] == ["再見", "\\u003c"]


def test_binary_and_undecodable_bodies_pass_unchanged() -> None:
    assert restore_body(b"\x89PNG<PERSON_1>", "image/png", MAP) == b"\x89PNG<PERSON_1>"
    assert restore_body(b"\xff\xfe<PERSON_1>", "", MAP) == b"\xff\xfe<PERSON_1>"


# ------------------------------------------------------------------ streams split in small pieces

def _feed(restorer: SseRestorer | GoogleFrameRestorer | JsonLinesRestorer, chunks: list[bytes]) -> bytes:
    return b"".join(restorer.feed(c) for c in chunks) + restorer.flush()


def _bytewise(chunks: list[bytes]) -> list[bytes]:
    """The same stream delivered a few bytes at a time (network chunks cut anywhere, even in UTF-8)."""
    whole = b"".join(chunks)
    return [whole[i:i + 7] for i in range(0, len(whole), 7)]


@pytest.mark.parametrize(("build", "read"), [
    (webapps.chatgpt_reply, webapps.read_chatgpt),
    (webapps.claude_reply, webapps.read_claude),
    (webapps.deepseek_reply, webapps.read_deepseek),
    (webapps.perplexity_reply, lambda b: webapps.read_perplexity(b)["streamed"]),
    (webapps.perplexity_reply, lambda b: webapps.read_perplexity(b)["answer"]),
], ids=["chatgpt", "claude", "deepseek", "perplexity-chunks", "perplexity-answer"])
@pytest.mark.parametrize("cut", [list, _bytewise], ids=["by-event", "by-7-bytes"])
def test_sse_web_streams_restored(build: Callable[[str], list[bytes]], read: Callable[[bytes], str],
                                  cut: Callable[[list[bytes]], list[bytes]]) -> None:
    events = build(ANSWER)
    assert read(b"".join(events)) == ANSWER  # the reader reads the stand-in's stream as it is
    assert read(_feed(SseRestorer(MAP), cut(events))) == RESTORED


@pytest.mark.parametrize(("build", "read"), [
    (webapps.grok_reply, webapps.read_grok),
    (webapps.meta_ai_reply, webapps.read_meta_ai),
], ids=["grok", "meta-ai"])
def test_json_lines_streams_restored(build: Callable[[str], list[bytes]],
                                     read: Callable[[bytes], str]) -> None:
    lines = build(ANSWER)
    assert read(b"".join(lines)) == ANSWER
    assert read(restore_body(b"".join(lines), "application/json", MAP)) == RESTORED
    restorer = JsonLinesRestorer(MAP)  # streamed: network chunks cut anywhere
    assert read(_feed(restorer, _bytewise(lines))) == RESTORED
    if build is webapps.meta_ai_reply:  # the text so far, line by line: each extends the one before
        out = restore_body(b"".join(lines), "application/json", MAP).decode().splitlines()
        texts = [json.loads(x)["data"]["node"]["bot_response_message"]["composed_text"]["content"][0]["text"]
                 for x in out]
        assert all(b.startswith(a) for a, b in itertools.pairwise(texts))


@pytest.mark.parametrize("cut", [list, _bytewise], ids=["by-frame", "by-7-bytes"])
def test_gemini_web_frames_restored_with_lengths_recomputed(
        cut: Callable[[list[bytes]], list[bytes]]) -> None:
    reply = webapps.gemini_web_reply(ANSWER)
    assert b"\\\\u003cPERSON_1\\\\u003e" in b"".join(reply)  # Google escapes < and > in the nested JSON
    out = _feed(GoogleFrameRestorer(MAP), cut(reply))
    seen = webapps.read_gemini_web(out)
    assert seen == {"text": RESTORED, "completed": True, "final": True}
    # While streaming, no frame shows part of a placeholder: each text so far is a prefix of the answer.
    texts = [json.loads(p[2])[4][0][1][0] for p in webapps.google_frames_strict(out.decode())
             if p[0] == "wrb.fr"]
    assert all(RESTORED.startswith(t) for t in texts) and len(texts) == len(reply) - 2


@pytest.mark.parametrize("content_type", ["text/event-stream", "application/json", ""])
def test_le_chat_numbered_lines_restored(content_type: str) -> None:
    """Le Chat's ``15:{...}`` records, whatever the media type: text patches restored across records,
    the bootstrap's echo of the user's message too; streamed, no record shows part of a placeholder."""
    lines = webapps.le_chat_reply(ANSWER, "我是<PERSON_1>")
    assert webapps.read_le_chat(b"".join(lines)) == ANSWER
    whole = restore_body(b"".join(lines), content_type, MAP)
    assert webapps.read_le_chat(whole) == RESTORED and "我是王小明" in whole.decode()
    restorer = stream_restorer(content_type, MAP)
    out = _feed(restorer, _bytewise(lines))
    assert webapps.read_le_chat(out) == RESTORED and out.decode().endswith("8:null\n")
    assert "<PER" not in out.decode()


def test_poe_channel_updates_restored_and_never_show_a_cut_placeholder() -> None:
    restorer = WsMessageRestorer(MAP)
    out = [m for message in webapps.poe_updates(ANSWER) for m in restorer.feed(message)]
    assert webapps.read_poe(out) == {"streamed": RESTORED, "final": RESTORED}


def test_recent_placeholders_latest_prompt_wins_and_expires() -> None:
    now = [0.0]
    recent = RecentPlaceholders(ttl=60, max_keys=2, clock=lambda: now[0])
    recent.remember(("u1", "poe"), {"<PERSON_1>": "王小明", "<PERSON_2>": "陳志明"})
    first = recent.get(("u1", "poe"))
    recent.remember(("u1", "poe"), {"<PERSON_1>": "林美華"})
    second = recent.get(("u1", "poe"))
    assert first and second and first[0] != second[0]
    assert second[1] == {"<PERSON_1>": "林美華", "<PERSON_2>": "陳志明"}
    assert recent.get(("u2", "poe")) is None and recent.get(("u1", "le-chat")) is None
    recent.remember(("u2", "poe"), {"<PERSON_1>": "x"})
    recent.remember(("u3", "poe"), {"<PERSON_1>": "y"})  # over max_keys: the least recent goes
    assert recent.get(("u1", "poe")) is None and recent.get(("u3", "poe")) is not None
    now[0] = 61.0
    assert recent.get(("u3", "poe")) is None


def test_batchexecute_reply_restored() -> None:
    body = webapps.batchexecute_reply("MaZiqc", [[["c_1", "我是<PERSON_1>", None, [1717, 0]]]])
    out = restore_body(body, "application/json; charset=utf-8", MAP)
    (frame, *_) = webapps.google_frames_strict(out.decode())
    assert json.loads(frame[2])[0][0][1] == "我是王小明"


def _whole_page(text: str) -> list[bytes]:
    page = webapps.html_reply(text)
    return [page[:40], page[40:]]


@pytest.mark.parametrize(("build", "read", "content_type", "streams"), [
    (webapps.gemini_web_reply, lambda b: webapps.read_gemini_web(b)["text"], "application/json", True),
    (webapps.grok_reply, webapps.read_grok, "application/json", True),
    (webapps.meta_ai_reply, webapps.read_meta_ai, "text/html; charset=utf-8", True),
    (webapps.chatgpt_reply, webapps.read_chatgpt, "text/event-stream", True),
    (_whole_page, webapps.read_html, "text/html", False),
], ids=["gemini-frames", "grok-lines", "meta-lines-labelled-html", "sse", "whole-html"])
def test_streamed_reply_framing_told_by_its_first_bytes(build: Callable[[str], list[bytes]],
                                                         read: Callable[[bytes], str], content_type: str,
                                                         streams: bool) -> None:
    restorer = stream_restorer(content_type, MAP)
    out = [restorer.feed(chunk) for chunk in _bytewise(build(ANSWER))] + [restorer.flush()]
    assert read(b"".join(out)) == RESTORED
    passed_on_early = sum(1 for piece in out[:-1] if piece) > 1
    assert passed_on_early is streams  # a page is restored whole at its end


# ------------------------------------------------------------------ WebSocket replies

def test_bing_signalr_updates_restored_record_by_record() -> None:
    restorer = WsMessageRestorer(MAP)
    sent = webapps.bing_reply(ANSWER, "3")
    out = [m for message in sent for m in restorer.feed(message)]
    assert all(m.endswith("\x1e") for m in out)
    assert webapps.read_bing(out) == {"streamed": RESTORED, "final": RESTORED}
    # EdgeGPT prints each update's text past what it already printed: every update extends the last.
    updates = [json.loads(m[:-1])["arguments"][0]["messages"][0]["text"] for m in out if '"update"' in m]
    assert all(b.startswith(a) for a, b in itertools.pairwise(updates))


def test_copilot_append_text_restored() -> None:
    restorer = WsMessageRestorer(MAP)
    out = [m for message in webapps.copilot_reply(ANSWER) for m in restorer.feed(message)]
    assert webapps.read_copilot(out + restorer.flush()) == RESTORED


# ------------------------------------------------------------------ WebSocket requests

PROMPT = "請查陳志明，身分證A123456789"
JSON_LINES = "".join(json.dumps(m) + "\n"
                     for m in ({"type": "ping"}, {"type": "chat", "text": PROMPT})).encode()
SOCKET_IO = b'42["perplexity_ask","' + json.dumps(PROMPT)[1:-1].encode() + b'",{"source":"default"}]'


@pytest.mark.parametrize(("api", "message", "is_text"), [
    ("copilot", webapps.bing_chat_invocation(PROMPT).encode(), True),
    ("generic", webapps.bing_chat_invocation(PROMPT).encode(), True),
    ("copilot", webapps.bing_chat_invocation(PROMPT).encode(), False),
    ("generic", SOCKET_IO, True),
    ("copilot", json.dumps({"event": "send", "content": [{"type": "text", "text": PROMPT}]}).encode(), False),
    ("generic", json.dumps({"type": "chat", "payload": json.dumps({"text": PROMPT})}).encode(), True),
    ("generic", JSON_LINES, True),
], ids=["signalr-copilot", "signalr-generic", "signalr-binary", "socket-io", "copilot-binary",
        "json-in-string", "json-lines"])
def test_ws_frames_are_decoded_before_detection(api: str, message: bytes, is_text: bool) -> None:
    parsed = websocket.extract_ws_message(api, message, is_text)
    assert PROMPT in parsed.texts  # decoded: never the \u-escaped JSON text
    redacted = [t.replace("陳志明", "<PERSON_1>").replace("A123456789", "<TW_NATIONAL_ID_1>")
                for t in parsed.texts]
    out = websocket.rewrite_ws_message(parsed, redacted)
    decoded = out.decode()
    assert "A123456789" not in decoded and "\\u9673\\u5fd7\\u660e" not in decoded
    assert websocket.extract_ws_message(api, out, is_text).texts == tuple(redacted)
    if api != "copilot" or b"\x1e" in message:
        assert (signalr_records(decoded) is None) == (b"\x1e" not in message)


def test_signalr_handshake_and_pings_carry_nothing() -> None:
    for message in ('{"protocol":"json","version":1}\x1e', '{"type":6}\x1e'):
        parsed = websocket.extract_ws_message("copilot", message.encode())
        assert all(not t.strip() or t == "json" for t in parsed.texts)


def test_binary_frame_that_is_not_text_is_uninspected() -> None:
    parsed = websocket.extract_ws_message("copilot", b"\x92\xa3\xff\x00binary", is_text=False)
    assert parsed.segments == () and parsed.uninspected == ("binary WebSocket message",)


@pytest.mark.parametrize("kind", NOTICES)
def test_signalr_notice_answers_the_clients_invocation(kind: str) -> None:
    invocation = webapps.bing_chat_invocation("x", "7").encode()
    (message,) = websocket.block_ws_messages("copilot", NOTICES[kind], invocation)
    records = [json.loads(r) for r in signalr_records(message) or []]
    assert [r["type"] for r in records] == [1, 2, 3]
    assert records[1]["invocationId"] == records[2]["invocationId"] == "7"
    seen = webapps.read_bing([message])
    assert seen["final"] == seen["streamed"] and seen["final"].startswith(OPENING[kind])
    assert NOTICES[kind].event_id in seen["final"]


# ------------------------------------------------------------------ notices each client reads

def _read_notice(api: str, notice: BlockNotice) -> str:
    reply = format_for(api).block_response(notice, streaming=True)
    body = reply.body
    assert reply.status == 200
    if api == "gemini_web":
        seen = webapps.read_gemini_web(body)
        assert seen["completed"] and seen["final"]
        return str(seen["text"])
    if api == "grok_web":
        return webapps.read_grok(body)
    if api == "meta_ai":
        return webapps.read_meta_ai(body)
    if api == "poe_web":
        return webapps.read_poe_error(body)
    assert dict(reply.headers)["content-type"].startswith("text/event-stream")
    if api == "chatgpt_web":
        return webapps.read_chatgpt(body)
    if api == "claude_web":
        return webapps.read_claude(body)
    if api == "deepseek":
        return webapps.read_deepseek(body)
    if api == "le_chat":
        return webapps.read_le_chat(body)
    seen = webapps.read_perplexity(body)
    assert seen["final"]
    return str(seen["answer"])


@pytest.mark.parametrize("api", ["chatgpt_web", "claude_web", "gemini_web", "perplexity", "deepseek",
                                 "grok_web", "meta_ai", "le_chat", "poe_web"])
@pytest.mark.parametrize("kind", NOTICES)
def test_notice_shown_as_the_apps_answer(api: str, kind: str) -> None:
    text = _read_notice(api, NOTICES[kind])
    assert NOTICES[kind].event_id in text and text.startswith(OPENING[kind])


@pytest.mark.parametrize(("path", "body", "reply", "ids"), [
    ("/_/BardChatUi/data/batchexecute?rpcids=oMH3Zd,CNgdBe&rt=c", b"", "batchexecute", ["oMH3Zd", "CNgdBe"]),
    ("/_/BardChatUi/data/batchexecute?rt=c", b"at=x&f.req=" + quote(json.dumps(
        [[["kHv0Vd", "[]", None, "generic"]]])).encode(), "batchexecute", ["kHv0Vd"]),
    ("/_/BardChatUi/data/batchexecute?rt=c", b"\xff\xfe", "batchexecute", ["generic"]),
    ("/_/BardChatUi/data/assistant.lamda.BardFrontendService/StreamGenerate?rt=c", b"", "answer", []),
], ids=["rpcids", "f.req", "unreadable-body", "stream-generate"])
def test_gemini_notice_answers_the_call(path: str, body: bytes, reply: str, ids: list[str]) -> None:
    """batchexecute: each RPC refused with the notice (PERMISSION_DENIED); StreamGenerate: an answer."""
    answer = format_for("gemini_web").block_response_to(BLOCK, False, path, body)  # type: ignore[attr-defined]
    assert answer.status == 200
    if reply == "answer":
        assert webapps.read_gemini_web(answer.body)["text"].startswith(OPENING["block"])
        return
    for rpc_id in ids:
        seen = webapps.read_batchexecute(answer.body, rpc_id)
        assert seen["payload"] is None and seen["code"] == 7 and seen["message"].startswith(OPENING["block"])


@pytest.mark.parametrize(("path", "procedure"), [
    ("/api/trpc/message.newChat?batch=1", "message.newChat"),
    ("/api/trpc/message.newChat,event.sendEventToDatalake?batch=1", "event.sendEventToDatalake"),
])
def test_le_chat_trpc_calls_get_trpc_errors(path: str, procedure: str) -> None:
    answer = format_for("le_chat").block_response_to(BLOCK, False, path, b"")  # type: ignore[attr-defined]
    errors = json.loads(answer.body)
    assert answer.status == 403 and errors[-1]["error"]["json"]["data"]["path"] == procedure
    assert webapps.read_trpc_error(answer.body).startswith(OPENING["block"])


def test_gemini_block_reply_frames_are_exact() -> None:
    body = format_for("gemini_web").block_response(BLOCK, streaming=False).body.decode()
    assert len(google_frames(body)) == 2  # the answer frame and Google's closing frame


# ------------------------------------------------------------------ page load or script?

NAV = {"sec-fetch-mode": "navigate", "sec-fetch-dest": "document",
       "accept": "text/html,application/xhtml+xml"}
FORM = "application/x-www-form-urlencoded"
GEMINI = "/_/BardChatUi/data/assistant.lamda.BardFrontendService/StreamGenerate?bl=boq&_reqid=1&rt=c"


@pytest.mark.parametrize(("method", "path", "headers", "content_type", "page"), [
    ("GET", "/", NAV, "", True),                                          # a page load
    ("POST", "/v1/forms/chat", NAV, FORM, True),                          # a classic form post
    ("POST", "/search", {"accept": "text/html"}, FORM, True),             # an old browser, no fetch metadata
    ("POST", "/backend-api/f/conversation", NAV, "application/json", False),  # JSON: a script sent it
    ("POST", "/backend-anon/f/conversation", NAV, FORM, False),           # an app endpoint
    ("POST", GEMINI, NAV, FORM, False),                                   # curl_cffi imitating Chrome
    ("POST", "/x", {**NAV, "x-same-domain": "1"}, FORM, False),           # a script-only header
    ("POST", "/x", {"sec-fetch-mode": "cors", "sec-fetch-dest": "empty", "accept": "text/html"}, FORM, False),
    ("POST", "/api/v0/chat/completion", {"accept": "*/*"}, "application/json", False),
    ("POST", "/graphql?locale=user", NAV, FORM, False),                   # Meta AI's GraphQL form
    ("GET", "/backend-api/me", {"accept": "application/json"}, "", False),
    ("GET", "/backend-api/conversations?offset=0", NAV, "", False),       # an app endpoint, even as a GET
    ("GET", "/?q=%E7%8E%8B", NAV, "", True),                              # chatgpt.com/?q=… prefill: a page
])
def test_is_page_load(method: str, path: str, headers: dict[str, str], content_type: str, page: bool) -> None:
    assert is_page_load(method, path, headers, content_type) is page


@pytest.mark.parametrize(("path", "streams"), [
    (GEMINI, True), ("/rest/sse/perplexity_ask", True), ("/api/v0/chat/completion", True),
    ("/backend-api/f/conversation", True), ("/backend-anon/conversation", True),
    ("/api/organizations/o/chat_conversations/c/completion", True),
    ("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", True),
    ("/backend-api/conversation/c1", False), ("/api/v0/chat_session/create", False),
    ("/v1/chat/completions", False),
])
def test_streams_by_endpoint(path: str, streams: bool) -> None:
    assert streams_by_endpoint(path) is streams
