"""File uploads through the running proxy (curl --form and the openai SDK's ``files.create``).

The default policy for an external service: an identifier in a text file is redacted in place; a
document that cannot be rewritten (DOCX) is blocked instead; a classification marking blocks; a file
whose text cannot be read is blocked (``unreadable_upload: block``); a clean file goes out untouched.
"""

from __future__ import annotations

import base64
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import (
    MOBILE,
    NATIONAL_ID,
    CurlResult,
    GuardProxy,
    assert_never_sent,
    curl,
    nonce,
    run_client,
)
from tests.e2e.upstream import UpstreamServer
from tests.formats.helpers import docx

pytestmark = pytest.mark.usefixtures("curl_available")

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
CLASSIFIED = "密等：機密\n主旨：採購案評選會議紀錄\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + secrets.token_bytes(256)


def _upload(proxy: GuardProxy, server: UpstreamServer, directory: Path, name: str, data: bytes,
            media_type: str) -> CurlResult:
    """``curl --form``: a purpose field and one file, as the OpenAI and Anthropic files APIs take them."""
    path = directory / name
    path.write_bytes(data)
    return curl(proxy, f"{server.base_url}/v1/files",
                form=("purpose=assistants", f"file=@{path};type={media_type}"))


def _error(reply: CurlResult) -> tuple[str, str]:
    """(message, code) of a native error: OpenAI's ``error.code``, or Anthropic's ``error.type``."""
    assert reply.status == 403
    error = reply.json()["error"]
    return error["message"], error.get("code") or error["type"]


def _native_code(server: UpstreamServer, code: str, anthropic_upstream: UpstreamServer) -> str:
    """Anthropic's envelope has no reason code: every refusal is a ``permission_error``."""
    return "permission_error" if server is anthropic_upstream else code


def _event(proxy: GuardProxy, message: str) -> dict[str, Any]:
    """The event whose reference the user was given in ``message``."""
    match = re.search(r"事件編號：(\S+?)（", message)
    assert match, message
    (event,) = [e for e in proxy.events() if e["event_id"] == match.group(1)]
    return event


@pytest.fixture(params=["openai", "anthropic"])
def files_upstream(request: pytest.FixtureRequest, openai_upstream: UpstreamServer,
                   anthropic_upstream: UpstreamServer) -> UpstreamServer:
    return {"openai": openai_upstream, "anthropic": anthropic_upstream}[request.param]


# ---------------------------------------------------------------- text files: redacted in place

@pytest.mark.parametrize(("suffix", "media_type", "content"), [
    (".txt", "text/plain", f"陳情人身分證字號 {NATIONAL_ID}，手機 {MOBILE}，請協助查復。\n"),
    (".csv", "text/csv", f"案號,身分證字號,電話\n117,{NATIONAL_ID},{MOBILE}\n"),
])
def test_text_file_with_an_id_is_redacted(guard_proxy: GuardProxy, files_upstream: UpstreamServer,
                                          tmp_path: Path, suffix: str, media_type: str, content: str) -> None:
    tag = nonce()
    reply = _upload(guard_proxy, files_upstream, tmp_path, tag + suffix, content.encode(), media_type)
    assert reply.status == 200, reply.body
    (seen,) = files_upstream.received(tag)
    assert NATIONAL_ID not in seen.text and MOBILE not in seen.text
    assert "<TW_NATIONAL_ID_1>" in seen.text and "<PHONE_NUMBER_1>" in seen.text
    assert content.split(NATIONAL_ID)[0] in seen.text  # the rest of the file is as it was


# ---------------------------------------------------------------- blocked: never sent

@pytest.mark.parametrize(("suffix", "media_type", "content", "code"), [
    (".docx", DOCX_TYPE, docx([f"陳情人身分證字號 {NATIONAL_ID}"]), "personal_data"),  # not rewritable
    (".txt", "text/plain", CLASSIFIED.encode(), "classified"),
    (".docx", DOCX_TYPE, docx(["主旨：採購案評選會議紀錄"], header="密等：機密"), "classified"),
    (".png", "image/png", PNG, "unreadable_content"),
    (".bin", "application/octet-stream", PNG, "unreadable_content"),
])
def test_file_is_blocked_with_the_native_error(guard_proxy: GuardProxy, files_upstream: UpstreamServer,
                                               anthropic_upstream: UpstreamServer, tmp_path: Path,
                                               suffix: str, media_type: str, content: bytes,
                                               code: str) -> None:
    tag = nonce()
    reply = _upload(guard_proxy, files_upstream, tmp_path, tag + suffix, content, media_type)
    message, native_code = _error(reply)
    assert native_code == _native_code(files_upstream, code, anthropic_upstream)
    assert "事件編號" in message and NATIONAL_ID not in message
    assert ("未送出" if code == "unreadable_content" else "已攔截") in message
    assert_never_sent(files_upstream, tag)
    event = _event(guard_proxy, message)
    assert event["path"] == "/v1/files" and event["decision"] == ("error" if code == "unreadable_content"
                                                                  else "block")


def test_docx_with_an_id_is_blocked_as_personal_data(guard_proxy: GuardProxy, openai_upstream: UpstreamServer,
                                                     tmp_path: Path) -> None:
    tag = nonce()
    reply = _upload(guard_proxy, openai_upstream, tmp_path, tag + ".docx",
                    docx([f"陳情人身分證字號 {NATIONAL_ID}"]), DOCX_TYPE)
    message, code = _error(reply)
    assert code == "personal_data" and "第4點" in message and "身分證統一編號" in message
    event = _event(guard_proxy, message)
    assert event["entities"] == {"TW_NATIONAL_ID": 1}
    assert event["action_taken"] == "answered (not rewritable)"
    assert_never_sent(openai_upstream, tag)


# ---------------------------------------------------------------- clean files: byte for byte

def _multipart(filename: str, media_type: str, data: bytes) -> tuple[bytes, str]:
    boundary = "----guard-e2e-" + secrets.token_hex(8)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {media_type}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(("suffix", "media_type", "content"), [
    (".csv", "text/csv", "案號,主旨\n117,夜市攤位申請\n".encode("cp950")),  # Big5, as Excel saves it
    (".txt", "text/plain", "請摘要：臺北市夜市攤位管理辦法修正草案。\n".encode()),
    (".docx", DOCX_TYPE, docx(["主旨：夜市攤位管理辦法修正草案", "說明：請各單位於期限內提供意見。"])),
])
def test_clean_file_arrives_byte_identical(guard_proxy: GuardProxy, files_upstream: UpstreamServer,
                                           suffix: str, media_type: str, content: bytes) -> None:
    tag = nonce()
    body, content_type = _multipart(tag + suffix, media_type, content)
    reply = curl(guard_proxy, f"{files_upstream.base_url}/v1/files", body, {"content-type": content_type})
    assert reply.status == 200, reply.body
    (seen,) = files_upstream.received(tag)
    assert seen.body == body


# ---------------------------------------------------------------- the openai SDK: client.files.create

def _sdk_upload(client_python: str, proxy: GuardProxy, server: UpstreamServer, path: Path) -> dict[str, Any]:
    return run_client(client_python, "openai_upload_client.py", "--proxy", proxy.url, "--ca", str(proxy.ca),
                      "--base-url", server.base_url, "--file", str(path))


def test_sdk_upload_is_redacted(client_python: str, guard_proxy: GuardProxy, openai_upstream: UpstreamServer,
                                tmp_path: Path) -> None:
    tag = nonce()
    path = tmp_path / f"{tag}.txt"
    path.write_text(f"陳情人身分證字號 {NATIONAL_ID}，請協助查復。\n", encoding="utf-8")
    result = _sdk_upload(client_python, guard_proxy, openai_upstream, path)
    assert result.get("id") == "file-e2e", result
    assert NATIONAL_ID.encode() in base64.b64decode(result["sent"])  # the client did send it ...
    (seen,) = openai_upstream.received(tag)
    assert NATIONAL_ID not in seen.text and "<TW_NATIONAL_ID_1>" in seen.text  # ... the service did not


def test_sdk_upload_of_a_classified_document_is_refused(client_python: str, guard_proxy: GuardProxy,
                                                        openai_upstream: UpstreamServer,
                                                        tmp_path: Path) -> None:
    tag = nonce()
    path = tmp_path / f"{tag}.docx"
    path.write_bytes(docx(["主旨：採購案評選會議紀錄"], header="密等：機密"))
    error = _sdk_upload(client_python, guard_proxy, openai_upstream, path)["error"]
    assert error["class"] == "PermissionDeniedError" and error["status"] == 403
    assert error["body"]["code"] == "classified" and "第3點" in error["body"]["message"]
    assert_never_sent(openai_upstream, tag)
