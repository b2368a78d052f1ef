"""A warned prompt (policy: PHONE_NUMBER warn) goes out only with a stated reason (查詢事由).

A browser page navigation gets a confirm form and the guard holds the request; API clients are told
to resend with ``X-Guard-Reason``. Either way the reason is recorded in the event, never sent upstream.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from tests.e2e.helpers import (
    MOBILE,
    CurlResult,
    GuardProxy,
    assert_never_sent,
    classified_prompt,
    curl,
    echoed,
    nonce,
    run_client,
    spki_hash,
)
from tests.e2e.upstream import UpstreamServer

pytestmark = pytest.mark.usefixtures("curl_available")

CONFIRM = "/.guard/confirm"
FORM_ACTION = "/v1/forms/chat"  # where the stand-in's /form page posts
NAVIGATION = {"content-type": "application/x-www-form-urlencoded", "accept": "text/html",
              "sec-fetch-mode": "navigate"}


def _prompt(tag: str) -> str:
    return f"請草擬回電稿，陳情民眾手機 {MOBILE}，追蹤碼 {tag}。"


def _post(proxy: GuardProxy, server: UpstreamServer, path: str, fields: dict[str, str]) -> CurlResult:
    return curl(proxy, f"{server.base_url}{path}", urlencode(fields).encode(), NAVIGATION)


def _token(page: CurlResult) -> str:
    match = re.search(r'name="token" value="([^"]+)"', page.body.decode())
    assert match, page.body.decode()
    return match.group(1)


def _event_by_reference(proxy: GuardProxy, page_text: str) -> dict[str, Any]:
    match = re.search(r"事件編號：\s*(\d{8}-[0-9a-f]+)", page_text)
    assert match, page_text
    (event,) = [e for e in proxy.events() if e["event_id"] == match.group(1)]
    return event


def _no_confirm_post_upstream(server: UpstreamServer) -> None:
    assert not any(r.path.startswith(CONFIRM) for r in server.requests), "a confirm post went upstream"


# ---------------------------------------------------------------- the browser (Chromium through Playwright)

@pytest.mark.browser
def test_browser_states_a_reason_and_the_prompt_goes_once(client_python: str, chromium: Path,
                                                          warn_proxy: GuardProxy,
                                                          openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    prompt, reason = _prompt(tag), f"辦理第 117 號陳情案件回電 {tag}"
    output = run_client(client_python, "confirm_client.py", "--proxy", warn_proxy.url,
                        "--spki", spki_hash(warn_proxy.ca), "--chromium", str(chromium),
                        "--url", f"{openai_upstream.base_url}/form", "--prompt", prompt, "--reason", reason,
                        timeout=90)
    held, empty_reason, confirmed = output["steps"]
    # 1. The Chinese confirm page, with a form; nothing has gone out yet.
    assert held["title"] == "送出前請確認查詢事由" and held["confirm_form"] == 1, held
    assert "查詢事由" in held["text"] and "電話號碼" in held["text"] and MOBILE not in held["text"]
    held_event = _event_by_reference(warn_proxy, held["text"])
    assert held_event["decision"] == "warn" and held_event["action_taken"] == "held for a reason"
    # 2. An empty reason shows the same form again (same token), and still nothing goes out.
    assert empty_reason["confirm_form"] == 1 and empty_reason["token"] == held["token"]
    # 3. With a reason the held request goes out, once, as it was; the reply is the service's page.
    assert confirmed["confirm_form"] == 0 and echoed(prompt) in confirmed["text"], confirmed
    (seen,) = openai_upstream.received(tag)
    assert seen.path == FORM_ACTION and seen.method == "POST" and MOBILE in seen.text
    assert reason not in seen.text and "token" not in seen.text
    _no_confirm_post_upstream(openai_upstream)
    (event,) = [e for e in warn_proxy.events() if e["reason"] == reason]
    assert event["decision"] == "warn" and event["action_taken"] == "forwarded"
    assert event["path"] == FORM_ACTION and event["entities"] == {"PHONE_NUMBER": 1}


# ---------------------------------------------------------------- the same protocol, driven by curl

def test_a_token_works_once_and_only_with_a_reason(warn_proxy: GuardProxy,
                                                   openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    held = _post(warn_proxy, openai_upstream, FORM_ACTION, {"prompt": _prompt(tag)})
    assert held.status == 403 and held.headers["content-type"].startswith("text/html")
    token = _token(held)
    again = _post(warn_proxy, openai_upstream, CONFIRM, {"token": token, "reason": "  "})
    assert _token(again) == token
    assert_never_sent(openai_upstream, tag)
    sent = _post(warn_proxy, openai_upstream, CONFIRM, {"token": token, "reason": f"陳情案件回電 {tag}"})
    assert sent.status == 200 and echoed(_prompt(tag)) in sent.body.decode()
    replay = _post(warn_proxy, openai_upstream, CONFIRM, {"token": token, "reason": f"陳情案件回電 {tag}"})
    assert replay.status == 403 and "確認已逾時" in replay.body.decode()
    assert len(openai_upstream.received(tag)) == 1
    _no_confirm_post_upstream(openai_upstream)


def test_an_unknown_token_sends_nothing(warn_proxy: GuardProxy, openai_upstream: UpstreamServer) -> None:
    forged = {"token": "forged-" + nonce(), "reason": "依法辦理查詢"}
    reply = _post(warn_proxy, openai_upstream, CONFIRM, forged)
    assert reply.status == 403 and "確認已逾時" in reply.body.decode()
    _no_confirm_post_upstream(openai_upstream)


def test_a_block_level_finding_gets_no_confirm_form(warn_proxy: GuardProxy,
                                                    openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    prompt = f"{classified_prompt(tag)}\n承辦人手機 {MOBILE}"  # classified (block) and a phone (warn)
    page = _post(warn_proxy, openai_upstream, FORM_ACTION, {"prompt": prompt})
    assert page.status == 403 and "已攔截" in page.body.decode()
    assert 'name="token"' not in page.body.decode()
    assert_never_sent(openai_upstream, tag)


def test_api_client_resends_with_a_reason_header(warn_proxy: GuardProxy,
                                                  openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    url = f"{openai_upstream.base_url}/v1/chat/completions"
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": _prompt(tag)}]},
                      ensure_ascii=False).encode()
    first = curl(warn_proxy, url, body, {"content-type": "application/json"})
    assert first.status == 403 and first.json()["error"]["code"] == "confirm_required"
    assert_never_sent(openai_upstream, tag)
    reason = f"陳情案件回電 {tag}"
    second = curl(warn_proxy, url, body, {"content-type": "application/json",
                                          "x-guard-reason": quote(reason)})
    assert second.status == 200
    (seen,) = openai_upstream.received(tag)
    assert seen.body == body and "x-guard-reason" not in seen.headers  # the reason is for the audit only
    (event,) = [e for e in warn_proxy.events() if e["reason"] == reason]
    assert event["decision"] == "warn" and event["action_taken"] == "forwarded"
