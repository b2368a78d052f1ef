"""Placeholder restoration in replies and streams, including placeholders split across events and chunks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from guard.formats.restore import (
    JsonArrayStreamRestorer,
    SseRestorer,
    WsMessageRestorer,
    restore_body,
    restore_json_body,
    restore_text,
)
from tests.formats.helpers import sse_payloads

MAP = {"<PERSON_1>": "王小明", "<TW_NATIONAL_ID_1>": "A123456789", "<PERSON_12>": "陳大文"}
PLACEHOLDER = "<TW_NATIONAL_ID_1>"


@pytest.mark.parametrize(("text", "expected"), [
    ("您好 <PERSON_1>，證號 <TW_NATIONAL_ID_1>。", "您好 王小明，證號 A123456789。"),
    ("<PERSON_12> and <PERSON_1>", "陳大文 and 王小明"),
    ("unknown <PERSON_9> stays", "unknown <PERSON_9> stays"),
    ("a < b and <not_a_placeholder>", "a < b and <not_a_placeholder>"),
])
def test_restore_text(text: str, expected: str) -> None:
    assert restore_text(text, MAP) == expected


def test_restore_json_body_decodes_escaped_angle_brackets() -> None:
    body = b'{"choices":[{"message":{"content":"\\u003cPERSON_1\\u003e \\u003cTW_NATIONAL_ID_1\\u003e"}}]}'
    out = json.loads(restore_json_body(body, MAP))
    assert out["choices"][0]["message"]["content"] == "王小明 A123456789"
    clean = b'{"choices": [{"message": {"content": "nothing here"}}]}'
    assert restore_json_body(clean, MAP) is clean


def test_restore_body_by_media_type() -> None:
    assert restore_body(b"<p><PERSON_1></p>", "text/html; charset=utf-8", MAP) == "<p>王小明</p>".encode()
    assert restore_body(b"\x89PNG<PERSON_1>", "image/png", MAP) == b"\x89PNG<PERSON_1>"


# Stream shapes: make(text) builds one SSE event carrying a text delta; read(payload) gets it back.
def _openai_chat(t: str) -> str:
    return "data: " + json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                                  "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": t},
                                                                  "finish_reason": None}]}) + "\n\n"


def _responses(t: str) -> str:
    return "event: response.output_text.delta\ndata: " + json.dumps({
        "type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0,
        "delta": t, "sequence_number": 5}) + "\n\n"


def _anthropic(t: str) -> str:
    return "event: content_block_delta\ndata: " + json.dumps({
        "type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}) + "\n\n"


def _gemini(t: str) -> str:
    chunk = {"candidates": [{"content": {"parts": [{"text": t}], "role": "model"}, "index": 0}],
             "modelVersion": "gemini-2.0-flash"}
    return "data: " + json.dumps(chunk) + "\r\n\r\n"


def _chatgpt(t: str) -> str:
    return "event: delta\ndata: " + json.dumps({"v": t}) + "\n\n"


def _read(name: str | None, payload: Any) -> str:
    if not isinstance(payload, dict):
        return ""
    if "choices" in payload:
        return "".join(c["delta"].get("content", "") for c in payload["choices"])
    if payload.get("type") == "response.output_text.delta":
        return payload["delta"]
    if payload.get("type") == "content_block_delta":
        return payload["delta"]["text"]
    if "candidates" in payload:
        return "".join(p.get("text", "") for c in payload["candidates"] for p in c["content"]["parts"])
    if isinstance(payload.get("v"), str) and (name == "delta"):
        return payload["v"]
    return ""


SHAPES: dict[str, tuple[Callable[[str], str], str, str]] = {
    "openai_chat": (_openai_chat, "", "data: " + json.dumps({
        "id": "chatcmpl-1", "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\ndata: [DONE]\n\n"),
    "responses": (_responses, "", "event: response.output_text.done\ndata: " + json.dumps({
        "type": "response.output_text.done", "output_index": 0, "content_index": 0,
        "text": "證號 <TW_NATIONAL_ID_1> 完"}) + "\n\n"),
    "anthropic": (_anthropic, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n"
                  "event: ping\ndata: {\"type\": \"ping\"}\n\n",
                  "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                  "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
    "gemini_sse": (_gemini, "", ""),
    "chatgpt_v1": (_chatgpt, "event: delta_encoding\ndata: \"v1\"\n\nevent: delta\ndata: "
                   + json.dumps({"p": "/message/content/parts/0", "o": "append", "v": ""}) + "\n\n",
                   "data: {\"type\": \"message_stream_complete\"}\n\ndata: [DONE]\n\n"),
}


def _run(restorer: SseRestorer, chunks: list[bytes]) -> bytes:
    return b"".join(restorer.feed(c) for c in chunks) + restorer.flush()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cut", range(1, len(PLACEHOLDER)))
def test_placeholder_split_across_two_events(shape: str, cut: int) -> None:
    make, head, tail = SHAPES[shape]
    stream = head + make("證號 " + PLACEHOLDER[:cut]) + make(PLACEHOLDER[cut:] + " 完") + tail
    out = _run(SseRestorer(MAP), [stream.encode()])
    events = sse_payloads(out)
    text = "".join(_read(name, p) for name, p in events)
    assert text == "證號 A123456789 完"
    assert all(PLACEHOLDER[:cut] not in _read(n, p) for n, p in events)


@pytest.mark.parametrize("shape", SHAPES)
def test_split_at_every_byte_of_the_stream(shape: str) -> None:
    make, head, tail = SHAPES[shape]
    stream = (head + make("您好 <PER") + make("SON_1>，") + make(PLACEHOLDER) + tail).encode()
    expected = "您好 王小明，A123456789"
    for cut in range(1, len(stream)):
        out = _run(SseRestorer(MAP), [stream[:cut], stream[cut:]])
        assert "".join(_read(n, p) for n, p in sse_payloads(out)) == expected, cut


def test_held_text_is_released_before_the_end_event() -> None:
    stream = _anthropic("結尾是 <PERS") + ("event: content_block_stop\ndata: "
                                          '{"type":"content_block_stop","index":0}\n\n')
    events = sse_payloads(_run(SseRestorer(MAP), [stream.encode()]))
    assert [n for n, _ in events] == ["content_block_delta", "content_block_delta", "content_block_stop"]
    assert "".join(_read(n, p) for n, p in events) == "結尾是 <PERS"


def test_unchanged_events_are_passed_byte_for_byte() -> None:
    stream = (_openai_chat("hello") + ": keep-alive\n\n" + "data: [DONE]\n\n").encode()
    assert _run(SseRestorer(MAP), [stream]) == stream
    assert _run(SseRestorer({}), [stream[:7], stream[7:]]) == stream


def test_full_message_events_are_restored_whole() -> None:
    old_chatgpt = "data: " + json.dumps({"message": {"content": {"content_type": "text",
                                                                 "parts": ["您好 <PERSON_1>"]}}}) + "\n\n"
    events = sse_payloads(_run(SseRestorer(MAP), [old_chatgpt.encode()]))
    assert events[0][1]["message"]["content"]["parts"] == ["您好 王小明"]


def test_deepseek_patch_stream() -> None:
    stream = ("data: " + json.dumps({"v": "證號 <TW_NAT", "p": "response/fragments/0/content", "o": "APPEND"})
              + "\n\n" + "data: " + json.dumps({"v": "IONAL_ID_1>"}) + "\n\n" + "event: finish\ndata: {}\n\n")
    events = sse_payloads(_run(SseRestorer(MAP), [stream.encode()]))
    assert "".join(p["v"] for _, p in events if isinstance(p, dict) and isinstance(p.get("v"), str)) == \
        "證號 A123456789"


@pytest.mark.parametrize("cut", range(1, len(PLACEHOLDER)))
def test_gemini_json_array_stream(cut: int) -> None:
    def element(t: str, finish: bool = False) -> str:
        cand: dict[str, Any] = {"content": {"parts": [{"text": t}], "role": "model"}, "index": 0}
        if finish:
            cand["finishReason"] = "STOP"
        return json.dumps({"candidates": [cand]}, indent=2)

    body = ("[" + element("證號 " + PLACEHOLDER[:cut]) + "\n,\r\n" + element(PLACEHOLDER[cut:])
            + "\n,\r\n" + element(" 完", finish=True) + "]").encode()
    for split in (1, len(body) // 2, len(body) - 1):
        r = JsonArrayStreamRestorer(MAP)
        out = json.loads(r.feed(body[:split]) + r.feed(body[split:]) + r.flush())
        assert "".join(p["text"] for e in out for c in e["candidates"] for p in c["content"]["parts"]) == \
            "證號 A123456789 完"


def test_copilot_ws_messages() -> None:
    r = WsMessageRestorer(MAP)
    out: list[str] = []
    for text in ("車主是 <PER", "SON_1>。"):
        out += r.feed(json.dumps({"event": "appendText", "messageId": "m", "partId": "0", "text": text}))
    out += r.feed(json.dumps({"event": "done", "messageId": "m"}))
    assert "".join(json.loads(m).get("text", "") for m in out) == "車主是 王小明。"
