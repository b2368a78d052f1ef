"""The web apps' reply framings, as each service sends them and as each app's client reads them.

Service side: ``*_reply(text)`` builds the reply a stand-in sends for an answer ``text``, cut in small
pieces so that a placeholder such as ``<TW_NATIONAL_ID_1>`` is split across events or frames.
Client side: ``read_*`` parses a reply the way that app's client does and returns what the user sees,
following these public clients: HanaokaYuzu/Gemini-API ``StreamingFrameParser`` and
``generate_content`` (exact UTF-16 frame lengths; ``candidate[1][0]`` text, ``candidate[8][0] == 2``
complete, ``inner[25]`` final); ChatGPT's ``v1`` delta encoding; claude.ai's Anthropic events;
Perplexity's ``diff_block`` patches on ``markdown_block`` (``/chunks/N`` adds); DeepSeek's
``{"p","o","v"}`` patches (a bare ``{"v"}`` continues the last path); EdgeGPT's SignalR reading
(``\\x1e`` records, ``type 1`` updates, ``type 2`` final item); Copilot's ``appendText`` events; the
``grok-api`` package (JSON lines, ``result.response.token``); ``meta-ai-api`` (the ``OVERALL_DONE`` line).
"""

from __future__ import annotations

import html
import json
from typing import Any

PIECE = 4  # characters per streamed piece: every placeholder spans several events


def pieces(text: str) -> list[str]:
    return [text[i:i + PIECE] for i in range(0, len(text), PIECE)] or [""]


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"{head}data: {payload}\n\n".encode()


def sse_events(body: bytes) -> list[tuple[str | None, Any]]:
    """(event name, JSON data or raw string) of every event, as an EventSource reads them."""
    out: list[tuple[str | None, Any]] = []
    for block in body.decode("utf-8").replace("\r\n", "\n").split("\n\n"):
        lines = block.split("\n")
        data = "\n".join(ln[6:] if ln.startswith("data: ") else ln[5:]
                         for ln in lines if ln.startswith("data:"))
        if not data:
            continue
        name = next((ln[6:].strip() for ln in lines if ln.startswith("event:")), None)
        try:
            out.append((name, json.loads(data)))
        except ValueError:
            out.append((name, data))
    return out


# ------------------------------------------------------------------ ChatGPT (logged in and guest)

def chatgpt_reply(text: str) -> list[bytes]:
    message = {"id": "m1", "author": {"role": "assistant"}, "status": "in_progress",
               "content": {"content_type": "text", "parts": [""]}}
    events = [_sse('"v1"', "delta_encoding"),
              _sse({"p": "", "o": "add", "v": {"message": message, "conversation_id": "c1"}, "c": 0},
                   "delta")]
    for i, piece in enumerate(pieces(text)):
        op = {"p": "/message/content/parts/0", "o": "append", "v": piece} if i == 0 else {"v": piece}
        events.append(_sse(op, "delta"))
    events += [_sse({"p": "", "o": "patch", "v": [{"p": "/message/status", "o": "replace",
                                                   "v": "finished_successfully"}]}, "delta"),
               _sse({"type": "message_stream_complete", "conversation_id": "c1"}), _sse("[DONE]")]
    return events


def read_chatgpt(body: bytes) -> str:
    """The ``v1`` delta encoding: ``add`` sets the message, ``append`` (or a bare ``v``) extends a path."""
    text, path, op = "", None, None
    for _, data in sse_events(body):
        if not isinstance(data, dict):
            continue
        ops = data["v"] if data.get("o") == "patch" else [data]
        for item in ops:
            if "p" in item:
                path, op = item["p"], item.get("o")
            if path == "" and op == "add" and isinstance(item.get("v"), dict):
                text = "".join(item["v"]["message"]["content"]["parts"])
            elif path == "/message/content/parts/0" and op == "append" and isinstance(item.get("v"), str):
                text += item["v"]
    return text


def html_reply(text: str) -> bytes:
    return (f'<!doctype html><html><body><div class="markdown">{html.escape(text)}</div>'
            f'<script>window.__reply={json.dumps(text)}</script></body></html>').encode()


def read_html(body: bytes) -> str:
    page = body.decode("utf-8")
    shown = page.split('<div class="markdown">', 1)[1].split("</div>", 1)[0]
    return html.unescape(shown)


# ------------------------------------------------------------------ claude.ai

def claude_reply(text: str) -> list[bytes]:
    start = {"id": "m", "type": "message", "role": "assistant", "content": [], "stop_reason": None}
    events = [_sse({"type": "message_start", "message": start}, "message_start"),
              _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                   "content_block_start")]
    events += [_sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
                    "content_block_delta") for p in pieces(text)]
    events += [_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
               _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}, "message_delta"),
               _sse({"type": "message_stop"}, "message_stop")]
    return events


def read_claude(body: bytes) -> str:
    return "".join(d["delta"]["text"] for n, d in sse_events(body)
                   if isinstance(d, dict) and d.get("type") == "content_block_delta")


# ------------------------------------------------------------------ Gemini web

def _google_json(value: Any) -> str:
    """Google's JSON: ASCII-only, with <, >, = and & escaped as \\u003c and the like."""
    text = json.dumps(value, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("=", "\\u003d")
            .replace("&", "\\u0026"))


def _google_frame(payload: Any) -> str:
    content = "\n" + _google_json(payload) + "\n"
    units = len(content.encode("utf-16-le")) // 2
    return f"{units}{content}"


def gemini_inner(text: str, complete: bool, final: bool) -> list[Any]:
    candidate: list[Any] = ["rc_1", [text], None, None, None, None, None, None, [2 if complete else 1]]
    inner: list[Any] = [None] * 26
    inner[1], inner[4] = ["c_1", "r_1"], [candidate]
    if final:
        inner[25] = "ctx_1"
    return inner


def gemini_web_reply(text: str) -> list[bytes]:
    """``StreamGenerate``: cumulative frames (text so far), the last complete and final."""
    cut = pieces(text)
    frames = [")]}'\n\n"]
    for i in range(1, len(cut) + 1):
        last = i == len(cut)
        inner = gemini_inner("".join(cut[:i]), complete=last, final=last)
        frames.append(_google_frame([["wrb.fr", None, _google_json(inner)]]))
    frames.append(_google_frame([["di", 80], ["af.httprm", 79, "-1", 17]]))
    return [f.encode() for f in frames]


def batchexecute_reply(rpc_id: str, payload: Any) -> bytes:
    envelope = ["wrb.fr", rpc_id, _google_json(payload), None, None, None, "generic"]
    return (")]}'\n\n" + _google_frame([envelope, ["di", 12], ["af.httprm", 11, "-1", 3]])).encode()


def google_frames_strict(body: str) -> list[Any]:
    """``StreamingFrameParser``: each frame is exactly <length> UTF-16 units after the digits."""
    rest = body.removeprefix(")]}'").lstrip()
    out: list[Any] = []
    while rest.strip():
        rest = rest.lstrip()
        digits = len(rest) - len(rest.lstrip("0123456789"))
        want, pos, units = int(rest[:digits]), digits, 0
        while units < want:
            if pos >= len(rest):
                raise AssertionError("a frame is shorter than its length marker")
            units += 2 if ord(rest[pos]) > 0xFFFF else 1
            pos += 1
        out.extend(json.loads(rest[digits:pos].strip()))  # a wrong length leaves broken JSON here
        rest = rest[pos:]
    return out


def read_gemini_web(body: bytes) -> dict[str, Any]:
    """What ``gemini_webapi.generate_content`` ends with: the text, and whether the turn completed."""
    text, completed, final = "", False, False
    for part in google_frames_strict(body.decode("utf-8")):
        if not (isinstance(part, list) and len(part) > 2 and part[0] == "wrb.fr"
                and isinstance(part[2], str)):
            continue
        inner = json.loads(part[2])
        final |= len(inner) > 25 and isinstance(inner[25], str)
        for candidate in inner[4] or []:
            if candidate[0]:
                text = candidate[1][0]
                completed = len(candidate) > 8 and (candidate[8] or [None])[0] == 2
    return {"text": text, "completed": completed, "final": final}


# ------------------------------------------------------------------ Perplexity

def perplexity_reply(text: str) -> list[bytes]:
    base = {"uuid": "u1", "status": "PENDING", "final_sse_message": False, "text_completed": False}
    events = [_sse({**base, "blocks": [{"intended_usage": "ask_text", "markdown_block": {
        "progress": "IN_PROGRESS", "chunks": [], "chunk_starting_offset": 0}}]}, "message")]
    for i, piece in enumerate(pieces(text)):
        events.append(_sse({**base, "blocks": [{"intended_usage": "ask_text", "diff_block": {
            "field": "markdown_block", "patches": [{"op": "add", "path": f"/chunks/{i}", "value": piece}]}}]},
            "message"))
    events.append(_sse({**base, "status": "COMPLETED", "final_sse_message": True, "text_completed": True,
                        "blocks": [{"intended_usage": "ask_text", "markdown_block": {
                            "progress": "DONE", "chunks": pieces(text), "answer": text}}]}, "message"))
    events.append(_sse({}, "end_of_stream"))
    return events


def read_perplexity(body: bytes) -> dict[str, Any]:
    """Chunks applied patch by patch (what the page shows while streaming) and the final answer."""
    chunks: list[str] = []
    answer, final = "", False
    for _, data in sse_events(body):
        if not isinstance(data, dict):
            continue
        for block in data.get("blocks") or []:
            if block.get("intended_usage") != "ask_text":
                continue
            if "markdown_block" in block:
                chunks = list(block["markdown_block"].get("chunks") or [])
                answer = block["markdown_block"].get("answer", answer)
            for patch in (block.get("diff_block") or {}).get("patches") or []:
                index = patch["path"].rsplit("/", 1)[1]
                if index == "-":
                    chunks.append(patch["value"])
                else:
                    chunks[int(index):int(index)] = [patch["value"]]
        final |= data.get("final_sse_message") is True
    return {"streamed": "".join(chunks), "answer": answer or "".join(chunks), "final": final}


# ------------------------------------------------------------------ DeepSeek

def deepseek_reply(text: str) -> list[bytes]:
    cut = pieces(text)
    events = [_sse({"request_message_id": 1, "response_message_id": 2}, "ready"),
              _sse({"v": {"response": {"message_id": 2, "parent_id": 1, "role": "ASSISTANT", "status": "WIP",
                                       "fragments": [{"id": 1, "type": "RESPONSE", "content": cut[0]}]}}})]
    for i, piece in enumerate(cut[1:]):
        op = {"p": "response/fragments/-1/content", "o": "APPEND", "v": piece} if i == 0 else {"v": piece}
        events.append(_sse(op))
    events += [_sse({"p": "response/status", "o": "SET", "v": "FINISHED"}), _sse({}, "finish"),
               _sse({"click_behavior": "none"}, "close")]
    return events


def read_deepseek(body: bytes) -> str:
    text, path, op = "", None, None
    for _, data in sse_events(body):
        if not isinstance(data, dict) or "v" not in data:
            continue
        if "p" in data:
            path, op = data["p"], data.get("o")
        value = data["v"]
        if isinstance(value, dict) and "response" in value:
            text = "".join(f["content"] for f in value["response"]["fragments"])
        elif path == "response/fragments/-1/content" and op == "APPEND" and isinstance(value, str):
            text += value
    return text


# ------------------------------------------------------------------ Copilot and the Bing chat hubs

def copilot_reply(text: str) -> list[str]:
    out = [{"event": "received", "messageId": "m1"}, {"event": "startMessage", "messageId": "m1"}]
    out += [{"event": "appendText", "messageId": "m1", "partId": "0", "text": p} for p in pieces(text)]
    out += [{"event": "partCompleted", "messageId": "m1", "partId": "0"},
            {"event": "done", "messageId": "m1"}]
    return [json.dumps(m, ensure_ascii=False) for m in out]


def read_copilot(messages: list[str]) -> str:
    return "".join(m["text"] for m in map(json.loads, messages) if m.get("event") == "appendText")


RS = "\x1e"


def signalr(*records: Any) -> str:
    return "".join(json.dumps(r) + RS for r in records)  # ASCII JSON: the Chinese travels \u-escaped


def bing_reply(text: str, invocation_id: str) -> list[str]:
    """Cumulative ``update`` invocations, then the completion item and the completion."""
    cut = pieces(text)
    out = [signalr({"type": 1, "target": "update", "arguments": [{"messages": [
        {"text": "".join(cut[:i]), "author": "bot", "messageId": "b1"}], "requestId": "r1"}]})
        for i in range(1, len(cut) + 1)]
    final = {"text": text, "author": "bot", "messageId": "b1",
             "adaptiveCards": [{"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": text}]}]}
    out.append(signalr({"type": 2, "invocationId": invocation_id, "item": {
        "messages": [final], "result": {"value": "Success"}}}, {"type": 3, "invocationId": invocation_id}))
    return out


def read_bing(messages: list[str]) -> dict[str, Any]:
    """EdgeGPT: ``type 1`` updates carry the text so far; ``type 2`` ends with the bot's last message."""
    streamed, final = "", None
    for message in messages:
        for record in message.split(RS):
            if not record:
                continue
            doc = json.loads(record)
            if doc.get("type") == 1 and doc.get("target") == "update":
                streamed = doc["arguments"][0]["messages"][0]["text"]
            elif doc.get("type") == 2:
                bot = [m for m in doc["item"]["messages"] if m.get("author") == "bot"][-1]
                final = bot["adaptiveCards"][0]["body"][0]["text"]
    return {"streamed": streamed, "final": final}


def bing_chat_invocation(prompt: str, invocation_id: str = "0") -> str:
    """A Sydney ``chat`` invocation (EdgeGPT ``ChatHubRequest.struct``)."""
    return signalr({"arguments": [{
        "source": "cib", "optionsSets": ["nlu_direct_response_filter", "deepleo", "enable_debug_commands"],
        "allowedMessageTypes": ["Chat", "InternalSearchQuery"], "sliceIds": [], "traceId": "0" * 32,
        "isStartOfSession": True, "requestId": "6a1b2c3d-0000-4000-8000-000000000001",
        "message": {"locale": "zh-TW", "market": "zh-TW", "region": "TW",
                    "location": "lat:47.639557;long:-122.128159",
                    "author": "user", "inputMethod": "Keyboard", "text": prompt, "messageType": "Chat",
                    "requestId": "6a1b2c3d-0000-4000-8000-000000000001",
                    "messageId": "6a1b2c3d-0000-4000-8000-000000000001"},
        "tone": "Balanced", "conversationSignature": "c2lnbmF0dXJl", "participant": {"id": "914798353"},
        "spokenTextMode": "None", "conversationId": "51D|BingProd|0F6A2D"}],
        "invocationId": invocation_id, "target": "chat", "type": 4})


# ------------------------------------------------------------------ Grok and Meta AI (JSON lines)

def grok_reply(text: str) -> list[bytes]:
    lines: list[Any] = [{"result": {"conversation": {"conversationId": "g1", "title": "新對話"}}}]
    lines += [{"result": {"response": {"token": p, "isThinking": False, "isSoftStop": False,
                                       "responseId": "r1"}}} for p in pieces(text)]
    lines.append({"result": {"response": {"modelResponse": {"responseId": "r1", "message": text}}}})
    return [(json.dumps(x, ensure_ascii=False) + "\n").encode() for x in lines]


def read_grok(body: bytes) -> str:
    """``grok-api``: tokens of ``result.response`` (new chats) or ``result`` (follow-ups), not thinking."""
    out = ""
    for line in body.decode("utf-8").splitlines():
        if not line.strip():
            continue
        result = json.loads(line).get("result", {})
        response = result.get("response", {})
        if "token" in response and "isThinking" in response and not response["isThinking"]:
            out += response["token"]
    return out


def meta_ai_reply(text: str) -> list[bytes]:
    cut = pieces(text)
    lines = []
    for i in range(1, len(cut) + 1):
        state = "OVERALL_DONE" if i == len(cut) else "STREAMING"
        lines.append({"data": {"node": {"bot_response_message": {
            "id": "ext_off_1", "streaming_state": state, "fetch_id": None,
            "composed_text": {"content": [{"text": "".join(cut[:i])}]}}}}})
    return [(json.dumps(x, ensure_ascii=False) + "\n").encode() for x in lines]


def read_meta_ai(body: bytes) -> str:
    """``meta-ai-api``: the ``OVERALL_DONE`` line's ``composed_text`` (each content text + newline)."""
    last = None
    for line in body.decode("utf-8").split("\n"):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        message = doc.get("data", {}).get("node", {}).get("bot_response_message", {})
        if message.get("streaming_state") == "OVERALL_DONE":
            last = message
    assert last is not None, "no OVERALL_DONE line: meta-ai-api would retry"
    return "".join(c["text"] + "\n" for c in last["composed_text"]["content"]).removesuffix("\n")


# ------------------------------------------------------------------ Gemini batchexecute

def read_batchexecute(body: bytes, rpc_id: str) -> dict[str, Any]:
    """gemini_webapi's reading of one RPC: its ``wrb.fr`` envelope's payload (``[2]``) and, when the RPC
    failed, its ``google.rpc.Status`` (``[5]``: code and message)."""
    for part in google_frames_strict(body.decode("utf-8")):
        if isinstance(part, list) and part[:2] == ["wrb.fr", rpc_id]:
            status = part[5] if len(part) > 5 else None
            return {"payload": part[2], "code": status[0] if status else None,
                    "message": status[1] if status and len(status) > 1 else None}
    raise AssertionError(f"no envelope for {rpc_id}: gemini_webapi would fail to parse the reply")


# ------------------------------------------------------------------ Mistral Le Chat

def _le_chat_line(payload: Any, number: str = "15") -> bytes:
    return f"{number}:{json.dumps(payload, ensure_ascii=False)}\n".encode()


def le_chat_reply(text: str, user_text: str) -> list[bytes]:
    """``/api/chat``: bootstrap (echoing the user's message), the assistant message built by JSON
    patches (first text by ``replace /contentChunks``, the rest appended), its status, the title,
    ``8:null``."""
    cut = pieces(text)
    head = {"type": "message", "messageId": "a1", "messageVersion": 0}
    lines = [_le_chat_line({"json": {"type": "bootstrap", "chat": {"id": "c1"},
                                     "messages": [{"role": "user", "content": user_text}]}}),
             _le_chat_line({"json": {**head, "patches": [{"op": "replace", "path": "/", "value": {
                 "role": "assistant", "id": "a1", "version": 0, "content": "", "contentChunks": None,
                 "generationStatus": "in-progress"}}]}}),
             _le_chat_line({"json": {**head, "patches": [{"op": "replace", "path": "/contentChunks",
                                                          "value": [{"type": "text", "text": cut[0],
                                                                     "_context": None}]}]},
                            "meta": {"values": {"patches.0.value.0._context": ["undefined"]}}})]
    lines += [_le_chat_line({"json": {**head, "patches": [
        {"op": "append", "path": "/contentChunks/0/text", "value": piece}]}}) for piece in cut[1:]]
    lines += [_le_chat_line({"json": {**head, "patches": [
                  {"op": "replace", "path": "/generationStatus", "value": "success"}]}}),
              _le_chat_line({"json": {"type": "chat", "patches": [
                  {"op": "replace", "path": "/generatedTitle", "value": "新對話"}]}}),
              b"8:null\n"]
    return lines


def read_le_chat(body: bytes) -> str:
    """The app's reading: each ``N:{json}`` line's patches applied to the message's ``contentChunks``
    (``replace /contentChunks``, ``add``/``append`` ``/contentChunks/N[/text]``), text chunks joined."""
    chunks: list[dict[str, Any]] = []
    for line in body.decode("utf-8").split("\n"):
        number, _, data = line.partition(":")
        if not number.isdigit() or not data:
            continue
        record = (json.loads(data) or {}).get("json") or {}
        if record.get("type") != "message":
            continue
        for patch in record["patches"]:
            path, op, value = patch["path"], patch["op"], patch.get("value")
            if path == "/contentChunks" and op == "replace":
                chunks = [dict(c) for c in value or []]
            elif path.startswith("/contentChunks/") and path.endswith("/text") and op == "append":
                chunks[int(path.split("/")[2])]["text"] += value
            elif path.startswith("/contentChunks/") and op == "add":
                chunks.append(dict(value))
    return "".join(c["text"] for c in chunks if c.get("type") == "text")


def read_trpc_error(body: bytes) -> str:
    """The app's tRPC client: a batch reply's first error message (what it raises and shows)."""
    (first, *_) = json.loads(body)
    return str(first["error"]["json"]["message"])


# ------------------------------------------------------------------ Poe

def poe_ack(prompt: str) -> bytes:
    """SendMessageMutation's reply: the human message and the chat (the answer: on the channel)."""
    human = {"node": {"id": "TWVzc2FnZTox", "messageId": 1, "text": prompt, "author": "human",
                      "state": "complete"}}
    chat = {"chatId": 7, "chatCode": "2abc", "id": "Q2hhdDo3", "title": "新對話",
            "messagesConnection": {"edges": [human]}}
    return json.dumps({"data": {"messageEdgeCreate": {"status": "success", "statusMessage": None,
                                                      "chat": chat, "message": human}}},
                      ensure_ascii=False).encode()


def poe_updates(text: str, message_id: int = 2) -> list[str]:
    """tchannel messages: ``messageAdded`` updates with the text so far, the last ``complete``."""
    cut = pieces(text)
    out = []
    for i in range(1, len(cut) + 1):
        added = {"id": f"TWVzc2FnZTo{message_id}", "messageId": message_id, "text": "".join(cut[:i]),
                 "author": "capybara", "state": "complete" if i == len(cut) else "incomplete",
                 "linkifiedText": "".join(cut[:i]), "suggestedReplies": []}
        update = {"message_type": "subscriptionUpdate", "payload": {
            "subscription_name": "messageAdded", "unique_id": "messageAdded:7",
            "data": {"messageAdded": added}}}
        out.append(json.dumps({"messages": [json.dumps(update)], "min_seq": 1000 + i}))
    return out


def read_poe(messages: list[str]) -> dict[str, Any]:
    """poe-api-wrapper: each ``messageAdded`` is the text so far; what it prints is ``text[len(last):]``."""
    streamed, last, final = "", "", None
    for message in messages:
        for update in json.loads(message).get("messages", []):
            doc = json.loads(update)
            if doc.get("message_type") != "subscriptionUpdate" \
                    or doc["payload"]["subscription_name"] != "messageAdded":
                continue
            added = doc["payload"]["data"]["messageAdded"]
            streamed += added["text"][len(last):]
            last = added["text"]
            if added["state"] == "complete":
                final = added["text"]
    return {"streamed": streamed, "final": final}


def poe_done(messages: list[str]) -> bool:
    return read_poe(messages)["final"] is not None


def read_poe_error(body: bytes) -> str:
    """A GraphQL error reply, as the app's client (and the wrapper's ``RuntimeError``) shows it."""
    doc = json.loads(body)
    assert doc.get("data") is None and doc["errors"], doc
    return str(doc["errors"][0]["message"])
