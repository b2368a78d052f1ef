"""The consumer web apps through the running proxy: their real request shapes and reply framings.

For each app: nothing personal reaches the stand-in service, the reply the app's client parses
carries the restored values, and a classified prompt is answered with the guard's notice in the form
that client displays (``tests/webapps.py`` parses each reply the way the app's client does). The
HTTP clients send the headers of Chrome-imitating libraries (``sec-fetch-mode: navigate``, an HTML
``accept``) on their script requests; only a real form navigation gets the HTML block page.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests import webapps
from tests.e2e.helpers import (
    MOBILE,
    NATIONAL_ID,
    OTHER_NATIONAL_ID,
    GuardProxy,
    assert_block_message,
    classified_prompt,
    clean_prompt,
    echoed,
    nonce,
    pii_prompt,
    write_policy,
)
from tests.e2e.webapp_server import WebAppServer, WsClient

APIS = {"chatgpt": "chatgpt_web", "claude": "claude_web", "gemini": "gemini_web",
        "perplexity": "perplexity", "deepseek": "deepseek", "grok": "grok_web", "meta": "meta_ai",
        "copilot": "copilot", "bing": "copilot", "lechat": "le_chat", "poe": "poe_web",
        "poe-channel": "poe_web"}
#: Stand-ins that are another host of an app's service: Poe answers on its tchannel host.
SAME_SERVICE = {"poe-channel": "poe"}

#: What curl_cffi and similar libraries send on every request when they imitate Chrome.
CHROME_LIKE = {"sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "sec-fetch-site": "none",
               "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
               "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                             "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}


@pytest.fixture(scope="module")
def apps(upstream_cert: tuple[Path, Path]) -> Iterator[dict[str, WebAppServer]]:
    servers = {app: WebAppServer(app, *upstream_cert).start() for app in APIS}
    servers["poe"].relay = servers["poe-channel"]
    yield servers
    for server in servers.values():
        server.stop()


def _guard(directory: Path, apps: dict[str, WebAppServer],
           actions: dict[str, str] | None = None) -> Iterator[GuardProxy]:
    services = {f"e2e-{app}": (APIS[app], (server, *(apps[o] for o, of in SAME_SERVICE.items() if of == app)))
                for app, server in apps.items() if app not in SAME_SERVICE}
    policy = write_policy(directory / "policy.yaml", services, actions)
    guard = GuardProxy(confdir=directory, policy=policy, log_path=directory / "proxy.log")
    guard.start()
    yield guard
    guard.stop()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, apps: dict[str, WebAppServer]) -> Iterator[GuardProxy]:
    yield from _guard(tmp_path_factory.mktemp("guard-proxy-webapps"), apps)


@pytest.fixture(scope="module")
def warn_proxy(tmp_path_factory: pytest.TempPathFactory,
               apps: dict[str, WebAppServer]) -> Iterator[GuardProxy]:
    """A policy where phone numbers go out only with a stated reason (查詢事由)."""
    yield from _guard(tmp_path_factory.mktemp("guard-proxy-webapps-warn"), apps, {"PHONE_NUMBER": "warn"})


# ------------------------------------------------------------------ HTTP apps

@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def post(proxy: GuardProxy, server: WebAppServer, path: str, body: bytes, headers: dict[str, str]) -> Reply:
    context = ssl.create_default_context(cafile=str(proxy.ca))
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=context, timeout=60)
    try:
        conn.set_tunnel("127.0.0.1", server.port)
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def _json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def chatgpt_request(prompt: str) -> tuple[str, bytes, dict[str, str]]:
    message = {"id": "5b1e7d0c-2f61-4a53-9d7b-0c7f1f7e9a10", "author": {"role": "user"},
               "content": {"content_type": "text", "parts": [prompt]}, "metadata": {}}
    body = {"action": "next", "messages": [message],
            "parent_message_id": "client-created-root", "model": "auto", "timezone": "Asia/Taipei",
            "conversation_mode": {"kind": "primary_assistant"}, "supported_encodings": ["v1"]}
    return ("/backend-api/f/conversation", _json(body),
            {**CHROME_LIKE, "content-type": "application/json", "accept": "text/event-stream"})


def chatgpt_guest_request(prompt: str) -> tuple[str, bytes, dict[str, str]]:
    path, body, _ = chatgpt_request(prompt)
    headers = {**CHROME_LIKE, "content-type": "application/json"}
    return path.replace("backend-api", "backend-anon"), body, headers


def claude_request(prompt: str) -> tuple[str, bytes, dict[str, str]]:
    body = {"prompt": prompt, "parent_message_uuid": "00000000-0000-4000-8000-000000000000",
            "timezone": "Asia/Taipei", "attachments": [], "files": [], "rendering_mode": "messages"}
    return ("/api/organizations/3f2c/chat_conversations/9a1b/completion", _json(body),
            {**CHROME_LIKE, "content-type": "application/json", "accept": "text/event-stream"})


GEMINI_PATH = "/_/BardChatUi/data/assistant.lamda.BardFrontendService/StreamGenerate"


def gemini_request(prompt: str) -> tuple[str, bytes, dict[str, str]]:
    """As gemini_webapi 2.x builds it: f.req = [null, "<inner JSON>"], the prompt at inner[0][0]."""
    inner: list[Any] = [None] * 81
    inner[0], inner[1], inner[2] = [prompt, 0, None, None, None, None, 0], ["zh-TW"], ["", "", "", None]
    inner[7], inner[59] = 1, "E1A4F9C0-0000-4000-8000-000000000000"
    form = {"at": "AJvLN6MXXXX:1717660800000", "f.req": json.dumps([None, json.dumps(inner)])}
    return (GEMINI_PATH + "?bl=boq_assistant&_reqid=1&rt=c", urlencode(form).encode(),
            {**CHROME_LIKE, "content-type": "application/x-www-form-urlencoded;charset=utf-8",
             "origin": "https://gemini.google.com", "referer": "https://gemini.google.com/",
             "x-same-domain": "1"})


def perplexity_request(prompt: str) -> tuple[str, bytes, dict[str, str]]:
    body = {"params": {"attachments": [], "language": "zh-TW", "timezone": "Asia/Taipei",
                       "sources": ["web"],
                       "frontend_uuid": "0b7e5f3c-1f2a-4d6b-8c9e-5a4b3c2d1e0f", "mode": "concise",
                       "model_preference": "turbo", "is_incognito": False, "use_schematized_api": True,
                       "dsl_query": prompt, "version": "2.18"}, "query_str": prompt}
    return "/rest/sse/perplexity_ask", _json(body), {**CHROME_LIKE, "content-type": "application/json",
                                                     "accept": "text/event-stream"}


def deepseek_request(prompt: str) -> tuple[str, bytes, dict[str, str]]:
    body = {"chat_session_id": "d213f7b1-0aa7-47a2-a6cf-3b4910a66b3a", "parent_message_id": None,
            "prompt": prompt, "ref_file_ids": [], "thinking_enabled": False, "search_enabled": False}
    return "/api/v0/chat/completion", _json(body), {**CHROME_LIKE, "content-type": "application/json",
                                                    "accept": "*/*", "x-app-version": "20241129.1"}


def grok_request(prompt: str) -> tuple[str, bytes, dict[str, str]]:
    body = {"temporary": False, "modelName": "grok-3", "message": prompt, "fileAttachments": [],
            "imageAttachments": [], "disableSearch": False, "enableImageGeneration": True,
            "returnImageBytes": False, "enableImageStreaming": True, "imageGenerationCount": 2,
            "forceConcise": False, "toolOverrides": {}, "enableSideBySide": True, "sendFinalMetadata": True,
            "customInstructions": "", "deepsearchPreset": "", "isReasoning": False}
    headers = {**CHROME_LIKE, "content-type": "application/json"}
    return "/rest/app-chat/conversations/new", _json(body), headers


def meta_ai_request(prompt: str) -> tuple[str, bytes, dict[str, str]]:
    variables = {"message": {"sensitive_string_value": prompt},
                 "externalConversationId": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                 "offlineThreadingId": "7214364758421307392", "suggestedPromptIndex": None,
                 "entrypoint": "ABRA__CHAT__TEXT", "icebreaker_type": "TEXT"}
    form = {"access_token": "ecto1:AbCdEf", "fb_api_caller_class": "RelayModern",
            "fb_api_req_friendly_name": "useAbraSendMessageMutation", "variables": json.dumps(variables),
            "server_timestamps": "true", "doc_id": "7783822248314888"}
    return ("/graphql?locale=user", urlencode(form).encode(),
            {**CHROME_LIKE, "content-type": "application/x-www-form-urlencoded",
             "x-fb-friendly-name": "useAbraSendMessageMutation"})


def le_chat_request(prompt: str) -> tuple[str, bytes, dict[str, str]]:
    """A follow-up in a chat (public Le Chat clients, 2025-2026): the prompt in ``messageInput`` parts."""
    body = {"chatId": "chat-0", "stableAnonymousIdentifier": "79zqlm", "platform": "web",
            "clientPromptData": {"currentDate": "2026-11-28", "userTimezone": "T+08:00 (Asia/Taipei)"},
            "shouldAwaitStreamBackgroundTasks": True, "shouldUseMessagePatch": True,
            "shouldUsePersistentStream": True, "features": ["beta-websearch"], "integrations": [],
            "libraries": [], "mode": "append", "messageId": "6a2c14de-f38f-4175-97f4-d73610fc6593",
            "messageInput": [{"type": "text", "text": prompt}], "messageFiles": []}
    return "/api/chat", _json(body), {**CHROME_LIKE, "content-type": "application/json",
                                      "accept": "text/event-stream", "origin": "https://chat.mistral.ai"}


def le_chat_new_chat(prompt: str) -> tuple[str, bytes, dict[str, str]]:
    """``message.newChat``: a tRPC batch whose superjson envelope carries the first prompt."""
    call = {"json": {"content": [{"type": "text", "text": prompt}], "transcriptionsMetadata": None,
                     "incognito": None, "files": [], "agentId": None, "agentsApiAgentId": None,
                     "features": ["beta-websearch"], "integrations": [], "libraries": [], "projectId": None,
                     "productType": "chat", "chatId": None, "parentId": None, "parentVersion": None},
            "meta": {"values": {"agentId": ["undefined"], "chatId": ["undefined"]}, "v": 1}}
    return ("/api/trpc/message.newChat?batch=1", _json({"0": call}),
            {**CHROME_LIKE, "content-type": "application/json", "x-trpc-source": "nextjs-react"})


def le_chat_start(chat_id: str) -> tuple[str, bytes, dict[str, str]]:
    body = {"chatId": chat_id, "mode": "start", "disabledFeatures": ["memory-inference"],
            "clientPromptData": {"currentDate": "2026-11-28", "userTimezone": "T+08:00 (Asia/Taipei)"},
            "stableAnonymousIdentifier": "79zqlm", "shouldAwaitStreamBackgroundTasks": True,
            "shouldUseMessagePatch": True}
    return "/api/chat", _json(body), {**CHROME_LIKE, "content-type": "application/json",
                                      "accept": "text/event-stream"}


def poe_request(prompt: str) -> tuple[str, bytes, dict[str, str]]:
    """poe-api-wrapper's SendMessageMutation: JSON, though labelled as a form."""
    variables = {"chatId": None, "bot": "capybara", "query": prompt, "shouldFetchChat": True,
                 "source": {"sourceType": "chat_input", "chatInputMetadata": {"useVoiceRecord": False}},
                 "clientNonce": "Xk3v9QpL2mN8rT1a", "sdid": "", "attachments": [],
                 "existingMessageAttachmentsIds": [], "messagePointsDisplayPrice": 20}
    body = {"queryName": "SendMessageMutation", "variables": variables,
            "extensions": {"hash": "5fd489242adf25bf399a95c6b16de9665e521b76618a97621167ae5e11e4bce4"}}
    return "/api/gql_POST", json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(), {
        **CHROME_LIKE, "content-type": "application/x-www-form-urlencoded", "poe-formkey": "4b2f7c1d",
        "poe-tchannel": "poe-chan105-8888-abcdefgh"}


def _perplexity_text(body: bytes) -> str:
    seen = webapps.read_perplexity(body)
    assert seen["final"] and seen["streamed"] == seen["answer"]
    return str(seen["answer"])


def _gemini_text(body: bytes) -> str:
    seen = webapps.read_gemini_web(body)
    assert seen["completed"] and seen["final"], "gemini_webapi would try to recover the conversation"
    return str(seen["text"])


Request = Callable[[str], tuple[str, bytes, dict[str, str]]]
HTTP_APPS: dict[str, tuple[str, Request, Callable[[bytes], str]]] = {
    "chatgpt": ("chatgpt", chatgpt_request, webapps.read_chatgpt),
    "chatgpt-guest": ("chatgpt", chatgpt_guest_request, webapps.read_chatgpt),
    "claude": ("claude", claude_request, webapps.read_claude),
    "gemini": ("gemini", gemini_request, _gemini_text),
    "perplexity": ("perplexity", perplexity_request, _perplexity_text),
    "deepseek": ("deepseek", deepseek_request, webapps.read_deepseek),
    "grok": ("grok", grok_request, webapps.read_grok),
    "meta-ai": ("meta", meta_ai_request, webapps.read_meta_ai),
    "le-chat": ("lechat", le_chat_request, webapps.read_le_chat),
}


def _assert_nothing_personal(server: WebAppServer, tag: str) -> str:
    (seen,) = server.received(tag)
    assert NATIONAL_ID not in seen.text and MOBILE not in seen.text, "a raw value reached the service"
    assert "<TW_NATIONAL_ID_1>" in seen.text
    return seen.text


@pytest.mark.parametrize("name", HTTP_APPS)
def test_web_app_reply_shows_restored_values(name: str, proxy: GuardProxy,
                                             apps: dict[str, WebAppServer]) -> None:
    app, build, read = HTTP_APPS[name]
    tag = nonce()
    prompt = pii_prompt(tag)
    reply = post(proxy, apps[app], *build(prompt))
    assert reply.status == 200, reply.body[:300]
    assert read(reply.body) == echoed(prompt)
    _assert_nothing_personal(apps[app], tag)


@pytest.mark.parametrize("name", HTTP_APPS)
def test_web_app_shows_the_notice_as_its_own_answer(name: str, proxy: GuardProxy,
                                                    apps: dict[str, WebAppServer]) -> None:
    app, build, read = HTTP_APPS[name]
    tag = nonce()
    reply = post(proxy, apps[app], *build(classified_prompt(tag)))
    assert reply.status == 200 and "html" not in reply.headers["content-type"], reply.headers
    shown = read(reply.body)
    assert_block_message(shown)
    assert "第3點" in shown
    assert apps[app].received(tag) == []
    event_id = reply.headers["x-guard-event-id"]
    assert any(e["event_id"] == event_id and e["decision"] == "block" for e in proxy.events())


@pytest.mark.parametrize("name", HTTP_APPS)
def test_web_app_clean_prompt_passes_unchanged(name: str, proxy: GuardProxy,
                                               apps: dict[str, WebAppServer]) -> None:
    app, build, read = HTTP_APPS[name]
    tag = nonce()
    path, body, headers = build(clean_prompt(tag))
    reply = post(proxy, apps[app], path, body, headers)
    assert read(reply.body) == echoed(clean_prompt(tag))
    (seen,) = apps[app].received(tag)
    assert seen.raw == body  # byte for byte


@pytest.mark.parametrize("name", [n for n in HTTP_APPS if n not in ("gemini", "meta-ai")])
def test_web_app_shows_a_failure_as_its_own_answer(name: str, proxy: GuardProxy,
                                                   apps: dict[str, WebAppServer]) -> None:
    """A body the guard cannot read is not sent (fail closed), and the app shows why."""
    app, build, read = HTTP_APPS[name]
    tag = nonce()
    path, body, headers = build(clean_prompt(tag))
    reply = post(proxy, apps[app], path, body[:-1], headers)  # JSON cut short
    assert reply.status == 200 and "html" not in reply.headers["content-type"], reply.headers
    shown = read(reply.body)
    assert shown.startswith("【未送出】") and reply.headers["x-guard-event-id"] in shown
    assert apps[app].received(tag) == []


@pytest.mark.parametrize("name", HTTP_APPS)
def test_web_app_shows_the_warning_as_its_own_answer(name: str, warn_proxy: GuardProxy,
                                                     apps: dict[str, WebAppServer]) -> None:
    """Under a warn rule the prompt waits for a reason; the app shows what to do; with the reason it goes."""
    app, build, read = HTTP_APPS[name]
    tag = nonce()
    prompt = f"請回電給民眾，手機 {MOBILE}，追蹤碼 {tag}。"
    reply = post(warn_proxy, apps[app], *build(prompt))
    assert reply.status == 200 and "html" not in reply.headers["content-type"], reply.headers
    shown = read(reply.body)
    assert shown.startswith("【需確認】") and "查詢事由" in shown and MOBILE not in shown
    assert apps[app].received(tag) == []
    with_reason = f"{prompt}\n查詢事由：陳情案件回覆民眾"
    reply = post(warn_proxy, apps[app], *build(with_reason))
    # the reason line goes out as typed, or is taken out for the audit trail (issue 13 item 8)
    assert read(reply.body) in (echoed(with_reason), echoed(prompt + "\n"), echoed(prompt))
    assert len(apps[app].received(tag)) == 1


def test_chatgpt_guest_form_page(proxy: GuardProxy, apps: dict[str, WebAppServer]) -> None:
    """A real form navigation: the HTML reply shows restored values; a classified prompt, the block page."""
    navigation = {"content-type": "application/x-www-form-urlencoded", "accept": "text/html",
                  "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}
    tag = nonce()
    prompt = pii_prompt(tag)
    reply = post(proxy, apps["chatgpt"], "/", urlencode({"q": prompt}).encode(), navigation)
    assert reply.status == 200 and webapps.read_html(reply.body) == echoed(prompt)
    _assert_nothing_personal(apps["chatgpt"], tag)
    tag = nonce()
    page = post(proxy, apps["chatgpt"], "/", urlencode({"q": classified_prompt(tag)}).encode(), navigation)
    assert page.status == 403 and page.headers["content-type"].startswith("text/html")
    assert_block_message(page.body.decode())
    assert apps["chatgpt"].received(tag) == []


# ------------------------------------------------------------------ WebSocket apps

def _copilot_send(prompt: str) -> str:
    return json.dumps({"event": "send", "conversationId": "Yb3XQm1m8z2Xp", "mode": "chat", "context": {},
                       "content": [{"type": "text", "text": prompt}]}, ensure_ascii=False)


def _copilot_done(messages: list[str]) -> bool:
    return any(json.loads(m).get("event") == "done" for m in messages)


def _signalr_done(messages: list[str]) -> bool:
    return any('"type":3' in m.replace(" ", "") for m in messages)


@pytest.mark.parametrize(("binary", "fragments"), [(False, 1), (False, 3), (True, 1)],
                         ids=["text", "fragmented", "binary"])
def test_copilot_websocket(binary: bool, fragments: int, proxy: GuardProxy,
                           apps: dict[str, WebAppServer]) -> None:
    server = apps["copilot"]
    client = WsClient(proxy.port, server, proxy.ca, "/c/api/chat?api-version=2")
    try:
        client.send(json.dumps({"event": "setOptions", "supportedCards": ["weather"], "ads": None}))
        tag = nonce()
        prompt = pii_prompt(tag)
        client.send(_copilot_send(prompt), binary=binary, fragments=fragments)
        assert webapps.read_copilot(client.receive_until(_copilot_done)) == echoed(prompt)
        _assert_nothing_personal(server, tag)
        tag = nonce()
        client.send(_copilot_send(classified_prompt(tag)), binary=binary, fragments=fragments)
        notice = webapps.read_copilot(client.receive_until(_copilot_done))
        assert_block_message(notice)
        assert server.received(tag) == []
    finally:
        client.close()


def test_copilot_unreadable_binary_frame_is_not_forwarded(proxy: GuardProxy,
                                                          apps: dict[str, WebAppServer]) -> None:
    server = apps["copilot"]
    client = WsClient(proxy.port, server, proxy.ca, "/c/api/chat")
    marker = nonce().encode()
    try:
        client.send(b"\x92\xa3\xff\xfe" + marker + b"\x00\xc1", binary=True)
        notice = webapps.read_copilot(client.receive_until(_copilot_done))
        assert "無法讀取" in notice and "事件編號" in notice
        time.sleep(0.5)
        assert not [r for r in server.requests if marker in r.raw]
    finally:
        client.close()


def test_bing_chat_hub_signalr(proxy: GuardProxy, apps: dict[str, WebAppServer]) -> None:
    server = apps["bing"]
    client = WsClient(proxy.port, server, proxy.ca, "/sydney/ChatHub")
    try:
        client.send('{"protocol":"json","version":1}\x1e')
        assert client.receive_until(lambda m: bool(m)) == ["{}\x1e"]
        client.send('{"type":6}\x1e')
        tag = nonce()
        prompt = f"請幫我寫信給陳志明先生，{pii_prompt(tag)}"
        client.send(webapps.bing_chat_invocation(prompt, "1"))  # ASCII JSON: the Chinese is \u-escaped
        seen = webapps.read_bing(client.receive_until(_signalr_done))
        assert seen == {"streamed": echoed(prompt), "final": echoed(prompt)}
        text = _assert_nothing_personal(server, tag)
        assert "陳志明" not in text and "<PERSON_1>" in text
        tag = nonce()
        client.send(webapps.bing_chat_invocation(classified_prompt(tag), "2"))
        seen = webapps.read_bing(client.receive_until(_signalr_done))
        assert seen["final"] == seen["streamed"]
        assert_block_message(str(seen["final"]))
        assert server.received(tag) == []
    finally:
        client.close()


# ------------------------------------------------------------------ answers on another request or connection

def test_le_chat_new_chat_answered_on_the_next_request(proxy: GuardProxy,
                                                       apps: dict[str, WebAppServer]) -> None:
    """The first prompt goes with ``message.newChat``; its answer streams from the next ``/api/chat``,
    restored with the placeholders of the user's last prompt. A classified first prompt: tRPC's error."""
    server = apps["lechat"]
    tag = nonce()
    prompt = pii_prompt(tag)
    created = post(proxy, server, *le_chat_new_chat(prompt))
    assert created.status == 200, created.body[:300]
    _assert_nothing_personal(server, tag)
    chat_id = json.loads(created.body)[0]["result"]["data"]["json"]["chatId"]
    answer = post(proxy, server, *le_chat_start(chat_id))
    assert webapps.read_le_chat(answer.body) == echoed(prompt)
    tag = nonce()
    refused = post(proxy, server, *le_chat_new_chat(classified_prompt(tag)))
    assert refused.status == 403 and "html" not in refused.headers["content-type"]
    shown = webapps.read_trpc_error(refused.body)
    assert_block_message(shown)
    assert refused.headers["x-guard-event-id"] in shown
    assert server.received(tag) == []


def _poe_channel(proxy: GuardProxy, apps: dict[str, WebAppServer]) -> WsClient:
    return WsClient(proxy.port, apps["poe-channel"], proxy.ca,
                    "/up/chan105-8888/updates?min_seq=1000&channel=poe-chan105-8888-abcdefgh&hash=3141")


def test_poe_answer_on_its_channel_is_restored(proxy: GuardProxy, apps: dict[str, WebAppServer]) -> None:
    """The prompt goes with gql_POST on poe.com; the answer streams on the tchannel WebSocket (another
    host of the service), restored with the map the user's redacted prompt left."""
    channel = _poe_channel(proxy, apps)
    try:
        tag = nonce()
        prompt = f"請幫我寫信給陳志明先生，{pii_prompt(tag)}"
        ack = post(proxy, apps["poe"], *poe_request(prompt))
        assert ack.status == 200, ack.body[:300]
        assert json.loads(ack.body)["data"], ack.body.decode()
        human = json.loads(ack.body)["data"]["messageEdgeCreate"]["message"]["node"]["text"]
        assert human == prompt  # the acknowledgement echoes the prompt: restored too
        text = _assert_nothing_personal(apps["poe"], tag)
        assert "陳志明" not in text and "<PERSON_1>" in text
        seen = webapps.read_poe(channel.receive_until(webapps.poe_done))
        assert seen == {"streamed": echoed(prompt), "final": echoed(prompt)}
    finally:
        channel.close()
    channel = _poe_channel(proxy, apps)  # a channel opened later follows the user's next prompt
    try:
        prompt = pii_prompt(nonce()).replace(NATIONAL_ID, OTHER_NATIONAL_ID)  # new values, same numbering
        post(proxy, apps["poe"], *poe_request(prompt))
        seen = webapps.read_poe(channel.receive_until(webapps.poe_done))
        assert seen == {"streamed": echoed(prompt), "final": echoed(prompt)}
    finally:
        channel.close()


@pytest.mark.parametrize("kind", ["block", "failure"])
def test_poe_notice_is_a_graphql_error(kind: str, proxy: GuardProxy, apps: dict[str, WebAppServer]) -> None:
    tag = nonce()
    path, body, headers = poe_request(classified_prompt(tag) if kind == "block" else clean_prompt(tag))
    reply = post(proxy, apps["poe"], path, body if kind == "block" else body[:-1], headers)
    assert reply.status == 200 and "html" not in reply.headers["content-type"]
    shown = webapps.read_poe_error(reply.body)
    if kind == "block":
        assert_block_message(shown)
    else:
        assert shown.startswith("【未送出】")
    assert reply.headers["x-guard-event-id"] in shown
    assert apps["poe"].received(tag) == []


BATCHEXECUTE_PATH = "/_/BardChatUi/data/batchexecute"
CREATE_GEM = "oMH3Zd"


def gemini_create_gem(instructions: str) -> tuple[str, bytes, dict[str, str]]:
    """gemini_webapi ``create_gem``: one RPC in f.req = [[[rpcid, "<payload JSON>", null, "generic"]]]."""
    payload = json.dumps([["公文助手", "", instructions, None, None, None, None, None, 0, None, 1,
                           None, None, None, []]])
    rpcs = [[[CREATE_GEM, payload, None, "generic"]]]
    form = {"at": "AJvLN6MXXXX:1717660800000", "f.req": json.dumps(rpcs)}
    query = f"rpcids={CREATE_GEM}&source-path=%2Fapp&bl=boq_assistant&hl=zh-TW&_reqid=100001&rt=c"
    return (f"{BATCHEXECUTE_PATH}?{query}", urlencode(form).encode(),
            {**CHROME_LIKE, "content-type": "application/x-www-form-urlencoded;charset=utf-8",
             "origin": "https://gemini.google.com", "x-same-domain": "1"})


def test_gemini_batchexecute_restored_and_refused_natively(proxy: GuardProxy,
                                                           apps: dict[str, WebAppServer]) -> None:
    """A gem's instructions travel by batchexecute: values restored in the RPC's reply; a classified one
    refused in the reply gemini_webapi parses (status 200, the RPC's status = PERMISSION_DENIED + notice)."""
    tag = nonce()
    instructions = pii_prompt(tag)
    reply = post(proxy, apps["gemini"], *gemini_create_gem(instructions))
    assert reply.status == 200
    seen = webapps.read_batchexecute(reply.body, CREATE_GEM)
    assert json.loads(seen["payload"])[0][2] == instructions and seen["code"] is None
    _assert_nothing_personal(apps["gemini"], tag)
    tag = nonce()
    reply = post(proxy, apps["gemini"], *gemini_create_gem(classified_prompt(tag)))
    assert reply.status == 200 and "html" not in reply.headers["content-type"]
    seen = webapps.read_batchexecute(reply.body, CREATE_GEM)
    assert seen["payload"] is None and seen["code"] == 7
    assert_block_message(seen["message"])
    assert apps["gemini"].received(tag) == []


# ------------------------------------------------------------------ HTTP bodies made of records

def _records_body(framing: str, docs: list[Any]) -> bytes:
    if framing == "signalr":  # the hubs' long-polling / SSE transports post records like the WebSocket's
        return webapps.signalr(*docs).encode()
    return "".join(json.dumps(d) + "\n" for d in docs).encode()  # ASCII JSON lines: the Chinese \u-escaped


@pytest.mark.parametrize("framing", ["signalr", "json-lines"])
def test_http_body_of_records_is_read_record_by_record(framing: str, proxy: GuardProxy,
                                                       apps: dict[str, WebAppServer]) -> None:
    """Every record is decoded before detection (the values travel \\u-escaped); one that is not JSON
    stops the whole body (fail closed)."""
    server = apps["bing"]
    tag = nonce()
    prompt = f"請幫我寫信給陳志明先生，{pii_prompt(tag)}"
    invocation = json.loads(webapps.bing_chat_invocation(prompt).rstrip(webapps.RS))
    body = _records_body(framing, [{"protocol": "json", "version": 1}, invocation])
    headers = {"content-type": "text/plain;charset=UTF-8", "x-requested-with": "XMLHttpRequest"}
    reply = post(proxy, server, "/sydney/ChatHub?id=Yb3XQm1m8z2Xp", body, headers)
    assert reply.status == 200, reply.body[:300]
    text = _assert_nothing_personal(server, tag)
    assert "陳志明" not in text and "<PERSON_1>" in text
    tag = nonce()
    separator = webapps.RS if framing == "signalr" else "\n"
    broken = body.replace(separator.encode(), f"{separator}not JSON {tag}{separator}".encode(), 1)
    reply = post(proxy, server, "/sydney/ChatHub?id=Yb3XQm1m8z2Xp", broken, headers)
    assert reply.status != 200 and reply.headers["x-guard-event-id"]
    assert server.received(tag) == []
