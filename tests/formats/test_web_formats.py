"""Web-app formats (ChatGPT, Claude, Gemini, Copilot, Perplexity, DeepSeek) and the generic fallback."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from guard.formats import FormatError, copilot, format_for, generic
from guard.notice import BlockNotice
from tests.formats.helpers import (
    assert_rewrites_only_segments,
    extract,
    form_fields,
    json_error,
    sse_payloads,
    texts,
    wheres,
)

NOTICE = BlockNotice.from_entity_types("evt-42", ["CLASSIFICATION_MARKER"])

# ChatGPT: 2023 capture (Simatwa/WebChatGPT assets/recons/1st_requests.md) and a 2025 f/conversation body.
CHATGPT_2023 = {
    "action": "next",
    "messages": [{"id": "aaa262a0-d409-449b-8e03-1a80db1383c9", "author": {"role": "user"},
                  "content": {"content_type": "text", "parts": ["請幫我查 A123456789 的戶籍"]}}],
    "parent_message_id": "aaa1847b-9122-4f0c-9cf9-1f0a529b3cb0", "model": "text-davinci-002-render-sha",
    "timezone_offset_min": -480, "suggestions": ["Tell me a random fun fact about the Roman Empire"],
    "history_and_training_disabled": False, "arkose_token": None,
    "conversation_mode": {"kind": "primary_assistant"}, "force_paragen": False, "force_rate_limit": False,
}
CHATGPT_2025 = {
    "action": "next",
    "messages": [{"id": "5b1e7d0c-2f61-4a53-9d7b-0c7f1f7e9a10", "author": {"role": "user"},
                  "create_time": 1717660800.123,
                  "content": {"content_type": "multimodal_text", "parts": [
                      {"content_type": "image_asset_pointer", "asset_pointer": "file-service://file-abc",
                       "size_bytes": 1000, "width": 10, "height": 10},
                      "這張公文是機密嗎？"]},
                  "metadata": {"selected_sources": [],
                               "serialization_metadata": {"custom_symbol_offsets": []}}}],
    "parent_message_id": "client-created-root", "model": "auto", "timezone": "Asia/Taipei",
    "conversation_mode": {"kind": "primary_assistant"}, "supports_buffering": True,
    "supported_encodings": ["v1"],
    "client_contextual_info": {"is_dark_mode": False, "app_name": "chatgpt.com"},
}
CHATGPT_PREPARE = {"action": "next", "fork_from_shared_post": False,
                   "parent_message_id": "client-created-root", "model": "auto",
                   "partial_query": {"parts": ["王小明"]}}


@pytest.mark.parametrize(("body", "expected", "where"), [
    (CHATGPT_2023, ["請幫我查 A123456789 的戶籍"], ["messages[0].content.parts[0]"]),
    (CHATGPT_2025, ["這張公文是機密嗎？"], ["messages[0].content.parts[1]"]),
    (CHATGPT_PREPARE, ["王小明"], ["partial_query.parts[0]"]),
    # A client that writes the content as a plain string (the API's shape) is read, not refused.
    ({"messages": [{"content": "請幫我查 A123456789 的戶籍"}]}, ["請幫我查 A123456789 的戶籍"],
     ["messages[0].content"]),
])
def test_chatgpt_web(body: dict, expected: list[str], where: list[str]) -> None:
    fmt = format_for("chatgpt_web")
    parsed = extract(fmt, body, path="/backend-api/f/conversation")
    assert texts(parsed) == expected and wheres(parsed) == where
    assert_rewrites_only_segments(fmt, parsed)


def test_chatgpt_web_image_parts_are_uninspected_and_block_reply_is_a_v1_stream() -> None:
    fmt = format_for("chatgpt_web")
    assert extract(fmt, CHATGPT_2025).uninspected == ("messages[0].content.parts[0]",)
    resp = fmt.block_response(NOTICE, streaming=True)
    assert resp.status == 200 and dict(resp.headers)["content-type"].startswith("text/event-stream")
    events = sse_payloads(resp.body)
    assert events[0] == ("delta_encoding", "v1") and events[-1] == (None, "[DONE]")
    appended = "".join(d["v"] for name, d in events if name == "delta" and d.get("o") == "append")
    assert "第3點" in appended and "evt-42" in appended
    assert json_error(fmt.block_response(NOTICE, streaming=False))["detail"].startswith("【已攔截】")


CLAUDE_WEB = {
    "prompt": "幫我改寫這份簽呈", "parent_message_uuid": "00000000-0000-4000-8000-000000000000",
    "timezone": "Asia/Taipei", "locale": "zh-TW", "model": "claude-sonnet-4-5-20250929",
    "personalized_styles": [{"type": "default", "key": "Default", "name": "Normal", "prompt": "Normal",
                             "summary": "Default responses from Claude", "isDefault": True}],
    "attachments": [{"file_name": "簽呈.txt", "file_type": "text/plain", "file_size": 42,
                     "extracted_content": "承辦人：林美玲 0912345678"}],
    "files": [], "sync_sources": [], "rendering_mode": "messages",
}


def test_claude_web() -> None:
    fmt = format_for("claude_web")
    parsed = extract(fmt, CLAUDE_WEB, path="/api/organizations/o/chat_conversations/c/completion")
    assert texts(parsed) == ["幫我改寫這份簽呈", "承辦人：林美玲 0912345678"]
    assert wheres(parsed) == ["prompt", "attachments[0].extracted_content"]
    assert_rewrites_only_segments(fmt, parsed)
    events = sse_payloads(fmt.block_response(NOTICE, streaming=True).body)
    assert [n for n, _ in events] == ["message_start", "content_block_start", "content_block_delta",
                                      "content_block_stop", "message_delta", "message_stop"]
    assert "機密等級標示" in events[2][1]["delta"]["text"]


def _gemini_web_body(prompt: str) -> bytes:
    inner = [[prompt, 0, None, None, None, None, 0], ["zh-TW"],
             ["", "", "", None, None, None, None, None, None, ""], "!PD-lPtoken", "c_b48cd2590", None, [0], 1]
    return urlencode({"f.req": json.dumps([None, json.dumps(inner, ensure_ascii=False)], ensure_ascii=False),
                      "at": "AJvLN6MXXXXXXXXXX:1717660800000"}).encode() + b"&"


def test_gemini_web_prompt_in_nested_f_req() -> None:
    fmt = format_for("gemini_web")
    body = _gemini_web_body("身分證 A123456789 是誰的？")
    parsed = fmt.extract(body, "application/x-www-form-urlencoded;charset=UTF-8",
                         "/_/BardChatUi/data/assistant.lamda.BardFrontendService/StreamGenerate")
    assert texts(parsed) == ["身分證 A123456789 是誰的？"] and wheres(parsed) == ["form[f.req][1][0][0]"]
    assert fmt.rewrite(parsed, list(parsed.texts)) is body
    out = fmt.rewrite(parsed, ["身分證 <TW_NATIONAL_ID_1> 是誰的？"])
    fields = form_fields(out)
    assert fields["at"] == "AJvLN6MXXXXXXXXXX:1717660800000"
    outer = json.loads(fields["f.req"])
    inner = json.loads(outer[1])
    assert inner[0][0] == "身分證 <TW_NATIONAL_ID_1> 是誰的？"
    assert inner[1:] == json.loads(json.loads(form_fields(body)["f.req"])[1])[1:]


def test_gemini_web_block_reply_parses_like_gemini_webapi() -> None:
    body = format_for("gemini_web").block_response(NOTICE, streaming=True).body.decode()
    assert body.startswith(")]}'")
    frame = json.loads(body.split("\n")[3])
    inner = json.loads(frame[0][2])
    assert frame[0][0] == "wrb.fr" and "第3點" in inner[4][0][1][0]


@pytest.mark.parametrize(("message", "expected"), [
    ({"event": "send", "conversationId": "Yb3XQm1m8z2Xp",
      "content": [{"type": "text", "text": "陳小華的電話？"}], "mode": "chat", "context": {}},
     ["陳小華的電話？"]),
    ({"event": "send", "conversationId": "c", "content": [
        {"type": "image", "url": "https://copilot.microsoft.com/c/api/attachments/1"},
        {"type": "text", "text": "看圖"}], "mode": "reasoning"}, ["看圖"]),
    ({"event": "setOptions", "supportedCards": ["weather"], "ads": None}, []),
    ({"event": "challengeResponse", "token": "0.abc", "method": "cloudflare"}, []),
])
def test_copilot_ws_messages(message: dict, expected: list[str]) -> None:
    text = json.dumps(message, ensure_ascii=False)
    parsed = copilot.extract_ws_message(text)
    assert texts(parsed) == expected
    assert copilot.rewrite_ws_message(parsed, list(parsed.texts)) == text
    if expected:
        out = json.loads(copilot.rewrite_ws_message(parsed, ["<PERSON_1>"] * len(expected)))
        assert out["event"] == "send" and out["content"][-1]["text"] == "<PERSON_1>"


def test_copilot_block_messages() -> None:
    msgs = [json.loads(m) for m in copilot.block_ws_messages(NOTICE)]
    assert [m["event"] for m in msgs] == ["startMessage", "appendText", "partCompleted", "done"]
    assert "機密" in msgs[1]["text"]


def test_perplexity() -> None:
    fmt = format_for("perplexity")
    body = {"params": {"attachments": [], "language": "zh-TW", "timezone": "Asia/Taipei",
                       "search_focus": "internet", "sources": ["web"],
                       "frontend_uuid": "0b7e5f3c-1f2a-4d6b-8c9e-5a4b3c2d1e0f",
                       "mode": "copilot", "model_preference": "pplx_pro", "dsl_query": "林大同 前科",
                       "version": "2.18"}, "query_str": "林大同 前科"}
    parsed = extract(fmt, body, path="/rest/sse/perplexity_ask")
    assert texts(parsed) == ["林大同 前科", "林大同 前科"]
    assert wheres(parsed) == ["query_str", "params.dsl_query"]
    assert_rewrites_only_segments(fmt, parsed)
    events = sse_payloads(fmt.block_response(NOTICE, streaming=True).body)
    assert events[0][1]["final_sse_message"] is True


def test_deepseek() -> None:
    fmt = format_for("deepseek")
    body = {"chat_session_id": "d213f7b1-0aa7-47a2-a6cf-3b4910a66b3a", "parent_message_id": None,
            "prompt": "車牌 ABC-1234", "ref_file_ids": [], "thinking_enabled": False, "search_enabled": False,
            "client_stream_id": "20251122-a966ea999de140c5"}
    parsed = extract(fmt, body, path="/api/v0/chat/completion")
    assert texts(parsed) == ["車牌 ABC-1234"]
    assert_rewrites_only_segments(fmt, parsed)
    events = sse_payloads(fmt.block_response(NOTICE, streaming=True).body)
    assert events[1][1]["v"]["response"]["fragments"][0]["content"].startswith("【已攔截】")


GENERIC = format_for("generic")


def test_generic_json_walks_user_strings_and_urls_and_skips_technical_ones() -> None:
    body = {"id": "6f1c2b7e-0a47-4c1e-9a55-3f0f6b7a2d11", "model": "llama-3-70b",
            "question": "A123456789 是誰",
            "history": [{"who": "user", "said": "我叫王小明"}], "url": "https://example.gov.tw/a",
            "image": "iVBORw0KGgo" + "A" * 120, "created": "2025-01-02T03:04:05Z",
            "args": "{\"name\":\"陳大文\",\"n\":1}"}
    parsed = extract(GENERIC, body)
    # URLs are read (``?id=…`` rides in them); UUIDs, timestamps and base64 of binary data are not.
    assert texts(parsed) == ["A123456789 是誰", "user", "我叫王小明", "https://example.gov.tw/a", "陳大文"]
    assert wheres(parsed)[-1] == "args.name"
    new = ["<TW_NATIONAL_ID_1> 是誰", "user", "我叫<PERSON_1>", "https://example.gov.tw/a", "<PERSON_2>"]
    out = json.loads(GENERIC.rewrite(parsed, new))
    assert out["args"] == "{\"name\":\"<PERSON_2>\",\"n\":1}" and out["image"] == body["image"]


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    (b"q=%E7%8E%8B%E5%B0%8F%E6%98%8E+0912345678&sid=abc", "application/x-www-form-urlencoded",
     ["王小明 0912345678", "abc"]),
    ("王小明 0912345678".encode("big5"), "text/plain; charset=big5", ["王小明 0912345678"]),
    (b"plain prompt", "", ["plain prompt"]),
])
def test_generic_form_and_text(body: bytes, content_type: str, expected: list[str]) -> None:
    parsed = GENERIC.extract(body, content_type, "/")
    assert texts(parsed) == expected
    assert GENERIC.rewrite(parsed, list(parsed.texts)) is body
    out = GENERIC.rewrite(parsed, ["<PERSON_1>", *parsed.texts[1:]])
    assert b"%3CPERSON_1%3E" in out or b"<PERSON_1>" in out


def test_generic_form_keeps_untouched_fields_byte_for_byte() -> None:
    body = b"a=%7E%20x&q=%E7%8E%8B&z=1"
    parsed = GENERIC.extract(body, "application/x-www-form-urlencoded", "/")
    assert GENERIC.rewrite(parsed, ["~ x", "<PERSON_1>", "1"]) == b"a=%7E%20x&q=%3CPERSON_1%3E&z=1"


def test_generic_ws_messages() -> None:
    parsed = generic.extract_ws_message('{"type":"chat","message":"李四 0912345678"}')
    assert texts(parsed) == ["李四 0912345678"]
    assert json.loads(generic.rewrite_ws_message(parsed, ["<PERSON_1> <PHONE_NUMBER_1>"]))["message"] == \
        "<PERSON_1> <PHONE_NUMBER_1>"
    socketio = '42["perplexity_ask","王小明",{"source":"default"}]'
    assert texts(generic.extract_ws_message(socketio)) == [socketio]


def test_generic_invalid_json_fails_closed() -> None:
    with pytest.raises(FormatError):
        GENERIC.extract(b'{"prompt": "unterminated', "application/json", "/")


GROK_NEW = {"temporary": False, "modelName": "grok-3", "message": "幫我查張家豪的電話", "fileAttachments": [],
            "imageAttachments": [], "disableSearch": False, "enableImageGeneration": True,
            "returnImageBytes": False, "returnRawGrokInXaiRequest": False, "enableImageStreaming": True,
            "imageGenerationCount": 2, "forceConcise": False, "toolOverrides": {}, "enableSideBySide": True,
            "isPreset": False, "sendFinalMetadata": True, "customInstructions": "回答請用繁體中文",
            "deepsearchPreset": "", "isReasoning": False}


def test_grok_web() -> None:
    fmt = format_for("grok_web")
    parsed = extract(fmt, GROK_NEW, path="/rest/app-chat/conversations/new")
    assert texts(parsed) == ["幫我查張家豪的電話", "回答請用繁體中文"]
    assert_rewrites_only_segments(fmt, parsed)


def test_meta_ai_graphql_form() -> None:
    """meta-ai-api's useAbraSendMessageMutation: the prompt sits in JSON inside the ``variables`` field."""
    variables = {"message": {"sensitive_string_value": "林美玲的身分證F225837467"},
                 "externalConversationId": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                 "offlineThreadingId": "7214364758421307392", "entrypoint": "ABRA__CHAT__TEXT",
                 "icebreaker_type": "TEXT", "__relay_internal__pv__WebPixelRatiorelayprovider": 1}
    body = urlencode({"access_token": "ecto1:abcdef", "fb_api_caller_class": "RelayModern",
                      "fb_api_req_friendly_name": "useAbraSendMessageMutation",
                      "variables": json.dumps(variables), "server_timestamps": "true",
                      "doc_id": "7783822248314888"}).encode()
    fmt = format_for("meta_ai")
    parsed = fmt.extract(body, "application/x-www-form-urlencoded", "/graphql?locale=user")
    assert "林美玲的身分證F225837467" in texts(parsed)
    new = [t.replace("林美玲", "<PERSON_1>").replace("F225837467", "<TW_NATIONAL_ID_1>")
           for t in parsed.texts]
    out = form_fields(fmt.rewrite(parsed, new))
    message = json.loads(out["variables"])["message"]
    assert message["sensitive_string_value"] == "<PERSON_1>的身分證<TW_NATIONAL_ID_1>"
    assert out["doc_id"] == "7783822248314888"


# Le Chat: a follow-up (public clients, 2025-2026: messageInput parts; older ones a string) and the
# tRPC message.newChat batch whose superjson envelope carries a new chat's first prompt.
LE_CHAT_APPEND = {"chatId": "af165b5e-f169-42d1-b844-1790549e06fb", "mode": "append",
                  "messageInput": [{"type": "text", "text": "陳志明的電話是0912345678"}], "messageFiles": [],
                  "messageId": "c17507a0-f91c-42c8-8909-088b97ef015c", "features": ["beta-websearch"],
                  "libraries": [], "integrations": [], "stableAnonymousIdentifier": "12aim1e",
                  "clientPromptData": {"currentDate": "2025-07-15", "userTimezone": "T+08:00 (Asia/Taipei)"}}
LE_CHAT_NEW = {"0": {"json": {"content": [{"type": "text", "text": "幫我寫給王小明的回函"}], "files": [],
                              "chatId": None, "agentId": None, "features": ["beta-websearch"],
                              "productType": "chat", "incognito": None},
                     "meta": {"values": {"chatId": ["undefined"], "agentId": ["undefined"]}, "v": 1}}}


@pytest.mark.parametrize(("body", "path", "expected", "where"), [
    (LE_CHAT_APPEND, "/api/chat", ["陳志明的電話是0912345678"], ["messageInput[0].text"]),
    ({**LE_CHAT_APPEND, "messageInput": "舊版字串提示"}, "/api/chat", ["舊版字串提示"], ["messageInput"]),
    (LE_CHAT_NEW, "/api/trpc/message.newChat?batch=1", ["幫我寫給王小明的回函"], ["0.json.content[0].text"]),
    ({"0": {"json": {"chatId": None, "content": "舊版", "rag": False}}}, "/api/trpc/message.newChat?batch=1",
     ["舊版"], ["0.json.content"]),
], ids=["append-parts", "append-string", "new-chat-parts", "new-chat-string"])
def test_le_chat(body: dict, path: str, expected: list[str], where: list[str]) -> None:
    fmt = format_for("le_chat")
    parsed = extract(fmt, body, path=path)
    assert texts(parsed) == expected and wheres(parsed) == where
    assert_rewrites_only_segments(fmt, parsed)


POE_SEND = {"queryName": "SendMessageMutation", "variables": {
    "chatId": 7, "bot": "capybara", "query": "請查林美華，身分證F225837467", "shouldFetchChat": False,
    "source": {"sourceType": "chat_input", "chatInputMetadata": {"useVoiceRecord": False}},
    "clientNonce": "Xk3v9QpL2mN8rT1a", "sdid": "", "attachments": [], "existingMessageAttachmentsIds": [],
    "messagePointsDisplayPrice": 20}, "extensions": {"hash": "5fd489242adf25bf399a95c6b16de9665e521b76"}}


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_poe_send_message_read_as_json_whatever_its_label(content_type: str) -> None:
    """poe-api-wrapper labels its JSON as a form: read (and rewritten) as the JSON it is."""
    fmt = format_for("poe_web")
    parsed = extract(fmt, POE_SEND, content_type=content_type, path="/poe_api/gql_POST")
    assert texts(parsed) == ["請查林美華，身分證F225837467"] and wheres(parsed) == ["variables.query"]
    assert_rewrites_only_segments(fmt, parsed)


# HTTP bodies made of records: the Bing hub's SignalR transports (ASCII JSON: values \u-escaped), JSON lines.
_INVOCATION = {"type": 4, "target": "chat", "invocationId": "0", "arguments": [
    {"message": {"author": "user", "text": "請查林美華，身分證F225837467"}, "tone": "Balanced"}]}
_HANDSHAKE = {"protocol": "json", "version": 1}


@pytest.mark.parametrize(("body", "separator"), [
    ((json.dumps(_HANDSHAKE) + "\x1e" + json.dumps(_INVOCATION) + "\x1e").encode(), "\x1e"),
    ((json.dumps(_HANDSHAKE) + "\n" + json.dumps(_INVOCATION) + "\r\n").encode(), "\n"),
], ids=["signalr", "json-lines"])
def test_generic_reads_record_bodies_record_by_record(body: bytes, separator: str) -> None:
    parsed = GENERIC.extract(body, "text/plain;charset=UTF-8", "/sydney/ChatHub?id=1")
    assert "請查林美華，身分證F225837467" in texts(parsed) + [s.text for s in parsed.extra]
    assert GENERIC.rewrite(parsed, list(parsed.texts)) is parsed.body
    new = [t.replace("林美華", "<PERSON_1>") for t in parsed.texts]
    extra = [s.text.replace("林美華", "<PERSON_1>") for s in parsed.extra]
    out = GENERIC.rewrite(parsed, [*new, *extra]).decode()
    records = [json.loads(r) for r in out.split(separator) if r.strip()]
    assert records[0] == _HANDSHAKE
    assert records[1]["arguments"][0]["message"]["text"] == "請查<PERSON_1>，身分證F225837467"
    assert out.endswith(body.decode()[-2:]) and out.count(separator) == body.decode().count(separator)


@pytest.mark.parametrize("body", [
    (json.dumps(_HANDSHAKE) + "\x1enot JSON 林美華\x1e").encode(),
    ("not JSON 林美華\x1e" + json.dumps(_HANDSHAKE) + "\x1e").encode(),
    (json.dumps(_HANDSHAKE) + "\x1e\x1e").encode(),
    (json.dumps(_HANDSHAKE) + "\nnot JSON 林美華\n" + json.dumps(_INVOCATION) + "\n").encode(),
], ids=["signalr-bad-record", "signalr-bad-first", "signalr-empty-record", "json-lines-bad-line"])
def test_generic_record_body_with_an_unreadable_record_fails_closed(body: bytes) -> None:
    with pytest.raises(FormatError):
        GENERIC.extract(body, "text/plain;charset=UTF-8", "/sydney/ChatHub?id=1")
