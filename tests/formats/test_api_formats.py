"""OpenAI, Anthropic and Gemini API request bodies: extract, rewrite, native block replies."""

from __future__ import annotations

import json

import pytest

from guard.formats import FORMATS, FormatError, UnknownFormat, format_for
from guard.notice import BlockNotice
from tests.formats.helpers import assert_rewrites_only_segments, extract, json_error, texts, wheres

OPENAI = format_for("openai")
ANTHROPIC = format_for("anthropic")
GEMINI = format_for("gemini")
NOTICE = BlockNotice.from_entity_types("evt-20240601-0001", ["TW_NATIONAL_ID", "PERSON"])

# Bodies as the official SDKs and API references send them.
PNG_DATA_URL = "data:image/png;base64,iVBORw0KGgo="
PNG_SOURCE = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}

OPENAI_CASES = [
    # Chat Completions, string content (API reference example), system + user
    ({"model": "gpt-4o", "messages": [
        {"role": "developer", "content": "You are a helpful assistant."},
        {"role": "user", "content": "王小明的身分證是A123456789"}], "stream": True},
     ["You are a helpful assistant.", "王小明的身分證是A123456789"],
     ["messages[0].content", "messages[1].content"]),
    # content parts: text + image_url (vision example)
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What's in this image?"},
        {"type": "image_url", "image_url": {"url": "https://upload.wikimedia.org/a.jpg"}}]}],
      "max_tokens": 300},
     ["What's in this image?"], ["messages[0].content[0].text"]),
    # assistant tool call + tool result (function calling guide)
    ({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "查車牌 ABC-1234 的車主"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_abc123", "type": "function",
         "function": {"name": "lookup_plate", "arguments": "{\"plate\":\"ABC-1234\"}"}}]},
        {"role": "tool", "tool_call_id": "call_abc123", "content": "車主：陳大文"}],
      "tools": [{"type": "function", "function": {"name": "lookup_plate", "description": "Look up a plate",
                 "parameters": {"type": "object", "properties": {"plate": {"type": "string"}}}}}]},
     ["查車牌 ABC-1234 的車主", "{\"plate\":\"ABC-1234\"}", "車主：陳大文"],
     ["messages[0].content", "messages[1].tool_calls[0].function.arguments", "messages[2].content"]),
    # Responses API: string input + instructions
    ({"model": "gpt-4.1", "instructions": "Talk like a pirate.", "input": "Are semicolons optional in JS?"},
     ["Talk like a pirate.", "Are semicolons optional in JS?"], ["instructions", "input"]),
    # Responses API: input items with input_text / input_image, history with output_text
    ({"model": "gpt-4.1", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "describe 林美玲"},
                                     {"type": "input_image", "image_url": PNG_DATA_URL}]},
        {"type": "message", "role": "assistant", "id": "msg_1",
         "content": [{"type": "output_text", "text": "林美玲 is ...", "annotations": []}]},
        {"type": "function_call_output", "call_id": "call_1", "output": "{\"phone\":\"0912345678\"}"}]},
     ["describe 林美玲", "林美玲 is ...", "{\"phone\":\"0912345678\"}"],
     ["input[0].content[0].text", "input[1].content[0].text", "input[2].output"]),
    # legacy completions
    ({"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "max_tokens": 7},
     ["Say this is a test"], ["prompt"]),
    # embeddings: list of strings (token arrays skipped)
    ({"model": "text-embedding-3-small", "input": ["張三 0912-345-678", [1234, 5678]],
      "encoding_format": "float"},
     ["張三 0912-345-678"], ["input[0]"]),
]


@pytest.mark.parametrize(("body", "expected", "where"), OPENAI_CASES)
def test_openai_extract_and_rewrite(body: dict, expected: list[str], where: list[str]) -> None:
    parsed = extract(OPENAI, body, path="/v1/chat/completions")
    assert texts(parsed) == expected
    assert wheres(parsed) == where
    assert_rewrites_only_segments(OPENAI, parsed)


def test_openai_images_are_reported_uninspected() -> None:
    parsed = extract(OPENAI, OPENAI_CASES[1][0])
    assert parsed.uninspected == ("messages[0].content[1]",)


def test_rewrite_keeps_non_ascii_compact_and_untouched_bytes_when_clean() -> None:
    raw = b'{ "model": "gpt-4o",\n  "messages": [ {"role": "user", "content": "\\u4f60\\u597d"} ] }'
    parsed = OPENAI.extract(raw, "application/json", "/v1/chat/completions")
    assert texts(parsed) == ["你好"]
    assert OPENAI.rewrite(parsed, ["你好"]) is raw
    assert OPENAI.rewrite(parsed, ["<PERSON_1>"]) == \
        b'{"model":"gpt-4o","messages":[{"role":"user","content":"<PERSON_1>"}]}'


def test_unknown_openai_endpoint_inspects_every_user_string() -> None:
    body = {"role": "user", "content": "身分證 A123456789", "metadata": {"case": "0912345678"},
            "file_ids": ["file-abc123"], "thread_id": "6f1c2b7e-0a47-4c1e-9a55-3f0f6b7a2d11"}
    parsed = extract(OPENAI, body, path="/v1/threads/thread_abc/messages")
    assert texts(parsed) == ["身分證 A123456789", "0912345678", "file-abc123"]


@pytest.mark.parametrize("raw", [b'{"messages": [', b"\xff\xfe\x00garbage", b'{"a": 1} trailing'])
def test_undecodable_json_raises_format_error(raw: bytes) -> None:
    with pytest.raises(FormatError) as e:
        OPENAI.extract(raw, "application/json", "/v1/chat/completions")
    assert "garbage" not in str(e.value) and "messages" not in str(e.value)


def test_openai_block_reply_is_an_openai_error_object() -> None:
    body = json_error(OPENAI.block_response(NOTICE, streaming=True))
    err = body["error"]  # openai-python: APIStatusError reads body["error"]["message"] and ["code"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] is None and err["type"] == "guard_policy_violation"
    assert "身分證統一編號" in err["message"] and "evt-20240601-0001" in err["message"]


ANTHROPIC_CASES = [
    # Messages API reference: system string, user string
    ({"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "你是公文助理",
      "messages": [{"role": "user", "content": "Hello, Claude"}]},
     ["你是公文助理", "Hello, Claude"], ["system", "messages[0].content"]),
    # system as text blocks with cache_control; multi-turn with blocks and an image
    ({"model": "claude-sonnet-4-5", "max_tokens": 1024,
      "system": [{"type": "text", "text": "機密：本案偵查中", "cache_control": {"type": "ephemeral"}}],
      "messages": [
          {"role": "user", "content": [
              {"type": "image", "source": PNG_SOURCE},
              {"type": "text", "text": "這張圖裡的人是誰？"}]},
          {"role": "assistant", "content": [{"type": "text", "text": "看起來是李四"}]}]},
     ["機密：本案偵查中", "這張圖裡的人是誰？", "看起來是李四"],
     ["system[0].text", "messages[0].content[1].text", "messages[1].content[0].text"]),
    # tool use and tool_result (string and block content), plain-text document
    ({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [
        {"role": "user", "content": "查 A123456789"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "查詢中"},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "lookup",
             "input": {"national_id": "A123456789"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
             "content": [{"type": "text", "text": "姓名：王大明"}]},
            {"type": "tool_result", "tool_use_id": "toolu_02", "content": "電話 0912345678"},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "附件內文"},
             "title": "報告"}]}]},
     ["查 A123456789", "查詢中", "A123456789", "姓名：王大明", "電話 0912345678", "附件內文", "報告"],
     ["messages[0].content", "messages[1].content[0].text", "messages[1].content[1].input.national_id",
      "messages[2].content[0].content[0].text", "messages[2].content[1].content",
      "messages[2].content[2].source.data", "messages[2].content[2].title"]),
]


@pytest.mark.parametrize(("body", "expected", "where"), ANTHROPIC_CASES)
def test_anthropic_extract_and_rewrite(body: dict, expected: list[str], where: list[str]) -> None:
    parsed = extract(ANTHROPIC, body, path="/v1/messages")
    assert texts(parsed) == expected
    assert wheres(parsed) == where
    assert_rewrites_only_segments(ANTHROPIC, parsed)


def test_anthropic_thinking_blocks_are_left_alone() -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "assistant", "content": [
        {"type": "thinking", "thinking": "想想 A123456789", "signature": "EqQBCgIYAhIM"},
        {"type": "text", "text": "答案"}]}]}
    assert texts(extract(ANTHROPIC, body)) == ["答案"]


def test_anthropic_block_reply_is_a_permission_error() -> None:
    body = json_error(ANTHROPIC.block_response(NOTICE, streaming=False))
    assert body["type"] == "error" and body["error"]["type"] == "permission_error"
    assert "第4點" in body["error"]["message"]


GEMINI_CASES = [
    # REST reference: multi-turn chat (samples/rest/chat.sh)
    ({"contents": [
        {"role": "user", "parts": [{"text": "Hello"}]},
        {"role": "model", "parts": [{"text": "Great to meet you. What would you like to know?"}]},
        {"role": "user", "parts": [{"text": "王小明住哪裡？"}]}]},
     ["Hello", "Great to meet you. What would you like to know?", "王小明住哪裡？"],
     ["contents[0].parts[0].text", "contents[1].parts[0].text", "contents[2].parts[0].text"]),
    # systemInstruction + inlineData + generationConfig (camelCase as the REST docs use)
    ({"systemInstruction": {"parts": [{"text": "You are a cat."}]},
      "contents": [{"role": "user", "parts": [
          {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
          {"text": "Caption this image."}]}],
      "generationConfig": {"temperature": 0.2, "responseMimeType": "text/plain"}},
     ["You are a cat.", "Caption this image."],
     ["systemInstruction.parts[0].text", "contents[0].parts[1].text"]),
    # snake_case (google-genai SDK) and a function response
    ({"system_instruction": {"parts": [{"text": "sys"}]}, "contents": [
        {"role": "model", "parts": [{"functionCall": {"name": "find", "args": {"q": "A123456789"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "find",
                                                         "response": {"owner": "陳小華"}}}]}]},
     ["sys", "A123456789", "陳小華"],
     ["system_instruction.parts[0].text", "contents[0].parts[0].functionCall.args.q",
      "contents[1].parts[0].functionResponse.response.owner"]),
    # embedContent and batchEmbedContents
    ({"model": "models/text-embedding-004", "content": {"parts": [{"text": "嵌入 0912345678"}]}},
     ["嵌入 0912345678"], ["content.parts[0].text"]),
    ({"requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": "一"}]}},
                   {"model": "models/text-embedding-004", "content": {"parts": [{"text": "二"}]}}]},
     ["一", "二"], ["requests[0].content.parts[0].text", "requests[1].content.parts[0].text"]),
]


@pytest.mark.parametrize(("body", "expected", "where"), GEMINI_CASES)
def test_gemini_extract_and_rewrite(body: dict, expected: list[str], where: list[str]) -> None:
    parsed = extract(GEMINI, body, path="/v1beta/models/gemini-2.0-flash:generateContent")
    assert texts(parsed) == expected
    assert wheres(parsed) == where
    assert_rewrites_only_segments(GEMINI, parsed)


def test_gemini_block_reply_is_a_google_rpc_status() -> None:
    body = json_error(GEMINI.block_response(NOTICE, streaming=True))
    assert body["error"]["code"] == 403 and body["error"]["status"] == "PERMISSION_DENIED"


def test_registry() -> None:
    assert format_for("azure_openai") is OPENAI
    assert {"openai", "anthropic", "gemini", "chatgpt_web", "claude_web", "gemini_web", "copilot",
            "perplexity", "deepseek", "generic", "uploads"} <= FORMATS.keys()
    with pytest.raises(UnknownFormat, match="expected one of"):
        format_for("bard")


def test_empty_body_has_no_segments() -> None:
    assert OPENAI.extract(b"", "", "/v1/models").segments == ()


def test_rewrite_rejects_wrong_count() -> None:
    parsed = extract(OPENAI, OPENAI_CASES[0][0])
    with pytest.raises(ValueError, match="expected 2 texts"):
        OPENAI.rewrite(parsed, ["x"])


def test_form_body_to_an_api_host_is_inspected() -> None:
    body = b"q=%E7%8E%8B%E5%B0%8F%E6%98%8E&lang=zh"
    parsed = OPENAI.extract(body, "application/x-www-form-urlencoded", "/x")
    assert texts(parsed) == ["王小明", "zh"]
    assert json.loads(json.dumps(wheres(parsed))) == ["form[q]", "form[lang]"]
