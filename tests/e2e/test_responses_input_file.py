"""A text file sent inline as a Responses API ``input_file`` (``file_data`` = a base64 data URL), with the
official openai SDK through the running proxy.

The file's text is inspected like any prompt: an identifier is redacted inside the file, which still
reaches the service as a data URL of the same media type (base64 of the redacted text, in the file's
own codec); a classification marking blocks with the Traditional Chinese notice; a clean file is
forwarded byte for byte. Before, every such file was refused as unreadable. The same for Gemini's
``inlineData`` of a text type.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import (
    NATIONAL_ID,
    GuardProxy,
    assert_block_message,
    assert_never_sent,
    nonce,
    run_client,
)
from tests.e2e.raw import exchange, http_request
from tests.e2e.upstream import UpstreamServer

PLACEHOLDER = "<TW_NATIONAL_ID_1>"


def _send(client_python: str, proxy: GuardProxy, server: UpstreamServer, path: Path, media_type: str,
          prompt: str) -> dict[str, Any]:
    return run_client(client_python, "openai_responses_file_client.py", "--proxy", proxy.url,
                      "--ca", str(proxy.ca), "--base-url", server.base_url, "--file", str(path),
                      "--media-type", media_type, "--prompt", prompt)


def _file_data(body: str) -> str:
    (part,) = [p for p in json.loads(body)["input"][0]["content"] if p["type"] == "input_file"]
    return str(part["file_data"])


# (file suffix, media type, codec, text, what the service gets): what staff attach, in the codecs
# their tools save.
FILES = [
    (".txt", "text/plain", "utf-8", f"陳情人身分證字號 {NATIONAL_ID}，請協助查復。\n",
     f"陳情人身分證字號 {PLACEHOLDER}，請協助查復。\n"),
    (".csv", "text/csv", "cp950", f"姓名,身分證字號\n王小明,{NATIONAL_ID}\n",   # Big5, as Windows saves it
     f"姓名,身分證字號\n<PERSON_1>,{PLACEHOLDER}\n"),
    (".md", "text/markdown", "utf-8", f"# 陳情案件\n\n- 身分證：{NATIONAL_ID}\n",
     f"# 陳情案件\n\n- 身分證：{PLACEHOLDER}\n"),
    (".json", "application/json", "utf-8", json.dumps({"applicant_id": NATIONAL_ID}),
     json.dumps({"applicant_id": PLACEHOLDER})),
]


@pytest.mark.parametrize(("suffix", "media_type", "codec", "text", "redacted"), FILES)
def test_identifier_in_an_inline_text_file_is_redacted_inside_it(
        client_python: str, guard_proxy: GuardProxy, openai_upstream: UpstreamServer, tmp_path: Path,
        suffix: str, media_type: str, codec: str, text: str, redacted: str) -> None:
    tag = nonce()
    path = tmp_path / f"case{suffix}"
    path.write_bytes(text.encode(codec))
    result = _send(client_python, guard_proxy, openai_upstream, path, media_type, f"請摘要這個檔案 {tag}")
    assert "error" not in result, result
    sent = _file_data(base64.b64decode(result["sent"]).decode())
    assert NATIONAL_ID in base64.b64decode(sent.partition(",")[2]).decode(codec)   # the client sent it ...
    (seen,) = openai_upstream.received(tag)
    assert NATIONAL_ID not in seen.text                                              # ... the service did not
    head, _, payload = _file_data(seen.text).partition(",")
    assert head == f"data:{media_type};base64"
    assert base64.b64decode(payload).decode(codec) == redacted


def test_classified_inline_text_file_is_blocked(client_python: str, guard_proxy: GuardProxy,
                                                openai_upstream: UpstreamServer, tmp_path: Path) -> None:
    tag = nonce()
    path = tmp_path / "minutes.txt"
    path.write_text("密等：機密\n主旨：採購案評選會議紀錄\n", encoding="utf-8")
    error = _send(client_python, guard_proxy, openai_upstream, path, "text/plain", f"請摘要 {tag}")["error"]
    assert error["class"] == "PermissionDeniedError" and error["status"] == 403
    assert error["body"]["code"] == "classified"
    assert_block_message(error["body"]["message"])
    assert_never_sent(openai_upstream, tag)


def test_clean_inline_text_file_is_forwarded_byte_for_byte(client_python: str, guard_proxy: GuardProxy,
                                                           openai_upstream: UpstreamServer,
                                                           tmp_path: Path) -> None:
    tag = nonce()
    path = tmp_path / "rules.csv"
    path.write_text("攤位,營業時間\n士林夜市,17:00-24:00\n", encoding="utf-8")
    result = _send(client_python, guard_proxy, openai_upstream, path, "text/csv", f"請整理 {tag}")
    assert "error" not in result, result
    (seen,) = openai_upstream.received(tag)
    assert seen.body == base64.b64decode(result["sent"])


def test_gemini_inline_text_file_is_redacted_inside_it(guard_proxy: GuardProxy,
                                                       gemini_upstream: UpstreamServer) -> None:
    """The same file as Gemini's ``inlineData`` (bare base64 typed by ``mimeType``), as a raw request."""
    tag = nonce()
    text = f"姓名,身分證字號\n王小明,{NATIONAL_ID}\n"
    body = json.dumps({"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "text/csv", "data": base64.b64encode(text.encode("cp950")).decode()}},
        {"text": f"請摘要 {tag}"}]}]}, ensure_ascii=False).encode()
    target = gemini_upstream.host_port
    reply = exchange(guard_proxy, target, http_request(
        "POST", "/v1beta/models/gemini-2.0-flash:generateContent", target, body,
        (("content-type", "application/json"),)))
    assert reply.status == 200, reply.body[:300]
    (seen,) = gemini_upstream.received(tag)
    data = json.loads(seen.text)["contents"][0]["parts"][0]["inlineData"]["data"]
    assert base64.b64decode(data).decode("cp950") == f"姓名,身分證字號\n<PERSON_1>,{PLACEHOLDER}\n"
