"""curl through the running guard proxy: Gemini, raw JSON, compressed and broken bodies, non-AI hosts."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    NATIONAL_ID,
    GuardProxy,
    assert_block_message,
    assert_never_sent,
    assert_redacted_upstream,
    classified_prompt,
    clean_prompt,
    curl,
    echoed,
    nonce,
    pii_prompt,
)
from tests.e2e.upstream import UpstreamServer

pytestmark = pytest.mark.usefixtures("curl_available")

GEMINI_PATH = "/v1beta/models/gemini-2.0-flash:generateContent"
JSON = {"content-type": "application/json"}


def _gemini_body(prompt: str) -> bytes:
    return json.dumps({"contents": [{"role": "user", "parts": [{"text": prompt}]}]},
                      ensure_ascii=False).encode()


def _chat_body(prompt: str) -> bytes:
    return json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]},
                      ensure_ascii=False).encode()


# ---------------------------------------------------------------- Gemini generateContent

def test_gemini_identifiers_are_redacted_and_restored(guard_proxy: GuardProxy,
                                                       gemini_upstream: UpstreamServer) -> None:
    tag = nonce()
    prompt = pii_prompt(tag)
    reply = curl(guard_proxy, f"{gemini_upstream.base_url}{GEMINI_PATH}?key=e2e", _gemini_body(prompt), JSON)
    assert reply.status == 200
    assert_redacted_upstream(gemini_upstream, tag)
    assert reply.json()["candidates"][0]["content"]["parts"][0]["text"] == echoed(prompt)


def test_gemini_classified_prompt_gets_permission_denied(guard_proxy: GuardProxy,
                                                         gemini_upstream: UpstreamServer) -> None:
    tag = nonce()
    reply = curl(guard_proxy, f"{gemini_upstream.base_url}{GEMINI_PATH}?key=e2e",
                 _gemini_body(classified_prompt(tag)), JSON)
    assert reply.status == 403
    error = reply.json()["error"]
    assert error["code"] == 403 and error["status"] == "PERMISSION_DENIED"
    assert_block_message(error["message"])
    assert_never_sent(gemini_upstream, tag)


# ---------------------------------------------------------------- raw JSON posts: exact bytes

def test_clean_raw_json_is_forwarded_byte_for_byte(guard_proxy: GuardProxy,
                                                   openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    # Odd spacing, key order and \u escapes: re-serialising anywhere on the way would change these bytes.
    body = ('{ "messages" :[ {"content": "' + clean_prompt(tag).replace("台灣", "\\u53f0\\u7063")
            + '", "role":"user"}],\n  "temperature": 0.50, "model":"gpt-4o-mini" }').encode()
    reply = curl(guard_proxy, f"{openai_upstream.base_url}/v1/chat/completions", body, JSON)
    assert reply.status == 200
    seen = openai_upstream.received(tag)
    assert len(seen) == 1 and seen[0].body == body


def test_redaction_rewrites_only_the_affected_string(guard_proxy: GuardProxy,
                                                     openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    prompt = pii_prompt(tag)
    doc = {"model": "gpt-4o-mini", "temperature": 0.5, "user": "clerk-17", "metadata": {"case": tag},
           "messages": [{"role": "system", "content": "你是公文助理。"}, {"role": "user", "content": prompt}]}
    reply = curl(guard_proxy, f"{openai_upstream.base_url}/v1/chat/completions",
                 json.dumps(doc, ensure_ascii=False).encode(), JSON)
    assert reply.status == 200
    sent = json.loads(assert_redacted_upstream(openai_upstream, tag))
    assert sent["messages"][1]["content"] == prompt.replace(NATIONAL_ID, "<TW_NATIONAL_ID_1>").replace(
        "0912345678", "<PHONE_NUMBER_1>")
    others = {k: v for k, v in doc.items() if k != "messages"}
    assert {k: v for k, v in sent.items() if k != "messages"} == others
    assert sent["messages"][0] == doc["messages"][0]
    assert reply.json()["choices"][0]["message"]["content"] == echoed(prompt)


def test_gzip_body_with_an_identifier_is_redacted(guard_proxy: GuardProxy,
                                                  openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    prompt = pii_prompt(tag)
    reply = curl(guard_proxy, f"{openai_upstream.base_url}/v1/chat/completions",
                 gzip.compress(_chat_body(prompt)), {**JSON, "content-encoding": "gzip"})
    assert reply.status == 200
    assert_redacted_upstream(openai_upstream, tag)
    (seen,) = openai_upstream.received(tag)
    assert seen.headers.get("content-encoding") == "gzip"  # re-compressed, with a matching length
    assert int(seen.headers["content-length"]) == len(seen.body)
    assert reply.json()["choices"][0]["message"]["content"] == echoed(prompt)


# ---------------------------------------------------------------- fail closed

FAIL_CLOSED = [
    pytest.param(lambda tag: ('{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
                              + pii_prompt(tag) + '"}').encode(), JSON, id="truncated-json"),
    pytest.param(lambda tag: gzip.compress(_chat_body(pii_prompt(tag)))[:-12] + b"\x00" * 4,
                 {**JSON, "content-encoding": "gzip"}, id="corrupt-gzip"),
    pytest.param(lambda tag: _chat_body(pii_prompt(tag)),
                 {**JSON, "content-encoding": "x-unknown"}, id="unknown-encoding"),
]


@pytest.mark.parametrize(("make_body", "headers"), FAIL_CLOSED)
def test_undecodable_body_is_refused_and_never_sent(guard_proxy: GuardProxy, openai_upstream: UpstreamServer,
                                                    make_body, headers: dict[str, str]) -> None:
    tag = nonce()
    reply = curl(guard_proxy, f"{openai_upstream.base_url}/v1/chat/completions", make_body(tag), headers)
    assert reply.status == 403
    error = reply.json()["error"]
    assert error["code"] == "undecodable_body"
    assert "未送出" in error["message"] and "事件編號" in error["message"]
    # The tag sits inside the broken body: search the raw bytes too, not only what decodes.
    assert not any(tag.encode() in r.body or tag in r.text for r in openai_upstream.requests)


def test_oversized_body_is_refused_and_never_sent(small_limit_proxy: GuardProxy,
                                                  openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    prompt = clean_prompt(tag) + "夜市小吃介紹。" * 6000  # ~126 KB of UTF-8, over the 64 KiB limit
    url = f"{openai_upstream.base_url}/v1/chat/completions"
    reply = curl(small_limit_proxy, url, _chat_body(prompt), JSON)
    assert reply.status == 403
    assert reply.json()["error"]["code"] == "body_too_large"
    assert_never_sent(openai_upstream, tag)
    small = clean_prompt(nonce())  # the same proxy still forwards a body under the limit
    assert curl(small_limit_proxy, f"{openai_upstream.base_url}/v1/chat/completions",
                _chat_body(small), JSON).status == 200


def test_compression_bomb_is_refused(small_limit_proxy: GuardProxy, openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    body = gzip.compress(_chat_body(clean_prompt(tag) + " " * 4_000_000))  # ~4 KB on the wire, 4 MB inside
    assert len(body) < 64 * 1024
    reply = curl(small_limit_proxy, f"{openai_upstream.base_url}/v1/chat/completions", body,
                 {**JSON, "content-encoding": "gzip"})
    assert reply.status == 403
    assert reply.json()["error"]["code"] == "body_too_large"
    assert not any(tag in r.text for r in openai_upstream.requests)


# ---------------------------------------------------------------- non-AI hosts are not opened

def _certificate_through_proxy(proxy: GuardProxy, target: str) -> bytes:
    """CONNECT through the proxy, finish a TLS handshake without verifying, return the server's cert (DER)."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(4096)
        assert answer.split(b" ", 2)[1] == b"200", answer
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(sock, server_hostname=None) as tls_sock:
            cert = tls_sock.getpeercert(binary_form=True)
    assert cert is not None
    return cert


def _der(pem: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.read_text())


def test_non_ai_host_tls_is_passed_through(guard_proxy: GuardProxy, plain_upstream: UpstreamServer,
                                           openai_upstream: UpstreamServer,
                                           upstream_cert: tuple[Path, Path]) -> None:
    own = _der(upstream_cert[0])
    assert _certificate_through_proxy(guard_proxy, plain_upstream.host_port) == own
    # The control: a catalogued AI host is opened, so there the client sees a certificate the proxy made.
    assert _certificate_through_proxy(guard_proxy, openai_upstream.host_port) != own


def test_non_ai_host_gets_the_body_untouched(guard_proxy: GuardProxy, plain_upstream: UpstreamServer,
                                             upstream_cert: tuple[Path, Path]) -> None:
    tag = nonce()
    body = _chat_body(pii_prompt(tag))
    # Trusting only the upstream's own certificate works; trusting only the proxy's CA does not.
    reply = curl(guard_proxy, f"{plain_upstream.base_url}/v1/chat/completions", body, JSON,
                 cacert=upstream_cert[0])
    assert reply.status == 200
    (seen,) = plain_upstream.received(tag)
    assert seen.body == body  # not inspected: identifiers and all, byte for byte
    with pytest.raises(AssertionError, match="curl exited 60"):
        curl(guard_proxy, f"{plain_upstream.base_url}/v1/chat/completions", body, JSON)
