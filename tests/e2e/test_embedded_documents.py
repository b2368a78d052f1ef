"""Documents hidden as base64 in a request's strings, through the running proxy: read, or refused.

A PDF in an OpenAI tool call's arguments or in a custom field, a DOCX in a web app's own JSON or form
field, compressed text in a field: each is decoded by its file signature and read like an upload, so
a national ID or a name inside never reaches the stand-in service (a document cannot be redacted in
place: the request is blocked) and the event names the finding. A corrupt or legacy document is
refused as unreadable with an event; a clean document and random binary arrive byte for byte.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import json
import lzma
import random
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from tests import webapps
from tests.e2e.conftest import _server
from tests.e2e.helpers import (
    NATIONAL_ID,
    CurlResult,
    GuardProxy,
    assert_block_message,
    curl,
    nonce,
    write_policy,
)
from tests.e2e.test_upload_multipart import event_of
from tests.e2e.upstream import UpstreamServer
from tests.e2e.webapp_server import WebAppServer, WsClient
from tests.formats.files import docx, form, part, pdf, raw_pdf, xlsx, zip_archive

pytestmark = pytest.mark.usefixtures("curl_available")

NAME = "陳志明"
CHAT = "/v1/chat/completions"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"


@pytest.fixture(scope="module")
def webapp_upstream(upstream_cert: tuple[Path, Path]) -> Iterator[UpstreamServer]:
    """A web app catalogued with the generic format: its own JSON and form shapes."""
    yield from _server(upstream_cert)


@pytest.fixture(scope="module")
def copilot(upstream_cert: tuple[Path, Path]) -> Iterator[WebAppServer]:
    """Copilot's stand-in: prompts travel as WebSocket messages."""
    server = WebAppServer("copilot", *upstream_cert).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, webapp_upstream: UpstreamServer,
          openai_upstream: UpstreamServer, anthropic_upstream: UpstreamServer,
          gemini_upstream: UpstreamServer, copilot: WebAppServer) -> Iterator[GuardProxy]:
    directory = tmp_path_factory.mktemp("guard-embedded")
    policy = write_policy(directory / "policy.yaml", {"e2e-webapp": ("generic", webapp_upstream),
                                                      "e2e-openai": ("openai", openai_upstream),
                                                      "e2e-anthropic": ("anthropic", anthropic_upstream),
                                                      "e2e-gemini": ("gemini", gemini_upstream),
                                                      "e2e-copilot": ("copilot", copilot)})
    guard = GuardProxy(confdir=directory, policy=policy, log_path=directory / "proxy.log",
                       options=("guard_timeout=60",))
    guard.start()
    try:
        yield guard
    finally:
        guard.stop()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def url_safe(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


Build = Callable[[str], bytes]


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _chat(tag: str, **fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"請整理附件 {tag}"}], **fields}


def _tool_call(tag: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A chat request replaying an assistant's tool call whose arguments carry the file."""
    return {"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": f"請上傳報告 {tag}"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_7Qd2", "type": "function",
            "function": {"name": "upload_report", "arguments": json.dumps(arguments)}}]},
        {"role": "tool", "tool_call_id": "call_7Qd2", "content": "uploaded"}]}


# Builders of request bodies that hide a file with personal data in a string (the tag marks the request).
def _tool_call_pdf(tag: str) -> bytes:
    file = b64(pdf(f"Applicant ID {NATIONAL_ID}"))
    return _dumps(_tool_call(tag, {"filename": "report.pdf", "content": file}))


def _custom_field_data_url(tag: str) -> bytes:
    return _dumps(_chat(tag, x_attachment={
        "data": "data:application/octet-stream;base64," + b64(pdf(f"ID {NATIONAL_ID}"))}))


def _pdf_metadata(tag: str) -> bytes:
    return _dumps(_chat(tag, metadata={"file": b64(pdf("Minutes", info={"/Subject": f"ID {NATIONAL_ID}"}))}))


def _webapp(tag: str, field: str, value: Any) -> bytes:
    return _dumps({"conversation": tag, "attachment": {"name": "陳情書", field: value}})


def _docx_name_and_id(tag: str) -> bytes:
    return _webapp(tag, "bytes", b64(docx([f"陳情人{NAME}先生，身分證字號 {NATIONAL_ID}。"])))


def _mime_lines_xlsx(tag: str) -> bytes:
    return _webapp(tag, "sheet", base64.encodebytes(xlsx([["身分證"], [NATIONAL_ID]])).decode())


def _form_url_safe_docx(tag: str) -> bytes:
    return f"conversation={tag}&doc={quote_plus(url_safe(docx([f'身分證 {NATIONAL_ID}'])))}".encode()


def _multipart_text_field_pdf(tag: str) -> bytes:
    return form(part('form-data; name="conversation"', tag.encode()),
                part('form-data; name="pdf"', b64(pdf(f"ID {NATIONAL_ID}")).encode()))


def _compressed(compress: Callable[[bytes], bytes], text: str) -> Build:
    return lambda tag: _webapp(tag, "draft", b64(compress(text.encode())))


def _bzip2_docx(tag: str) -> bytes:
    return _webapp(tag, "archive", b64(bz2.compress(docx([f"身分證 {NATIONAL_ID}"]))))


def _rtf(tag: str) -> bytes:
    return _webapp(tag, "rtf", b64(rb"{\rtf1\ansi ID " + NATIONAL_ID.encode() + rb"\par}"))


APP = "/api/attachments"
ID_TEXT = f"承辦人{NAME}，身分證 {NATIONAL_ID}"
ID = ("TW_NATIONAL_ID",)
HIDDEN = [
    pytest.param("openai", CHAT, JSON, _tool_call_pdf, ID, id="openai tool-call argument: base64 PDF"),
    pytest.param("openai", CHAT, JSON, _custom_field_data_url, ID, id="openai field: octet-stream URL"),
    pytest.param("openai", CHAT, JSON, _pdf_metadata, ID, id="openai custom field: PDF metadata"),
    pytest.param("webapp", APP, JSON, _docx_name_and_id, ("TW_NATIONAL_ID", "PERSON"),
                 id="web app JSON: DOCX with a name and an ID"),
    pytest.param("webapp", APP, JSON, _mime_lines_xlsx, ID, id="MIME-lined XLSX"),
    pytest.param("webapp", "/api/upload", FORM, _form_url_safe_docx, ID, id="web app form: URL-safe DOCX"),
    pytest.param("webapp", "/api/upload", MULTIPART, _multipart_text_field_pdf, ID, id="multipart: PDF"),
    pytest.param("webapp", APP, JSON, _compressed(gzip.compress, ID_TEXT), ID, id="gzip text"),
    pytest.param("webapp", APP, JSON, _compressed(zlib.compress, ID_TEXT), ID, id="zlib text"),
    pytest.param("webapp", APP, JSON, _compressed(lzma.compress, ID_TEXT), ID, id="xz text"),
    pytest.param("webapp", APP, JSON, _bzip2_docx, ID, id="bzip2 of a DOCX"),
    pytest.param("webapp", APP, JSON, _rtf, ID, id="RTF"),
]


def _send(proxy: GuardProxy, servers: dict[str, UpstreamServer], service: str, path: str,
          content_type: str, body: bytes) -> CurlResult:
    return curl(proxy, f"{servers[service].base_url}{path}", body, {"content-type": content_type})


@pytest.fixture
def servers(openai_upstream: UpstreamServer, anthropic_upstream: UpstreamServer,
            gemini_upstream: UpstreamServer, webapp_upstream: UpstreamServer) -> dict[str, UpstreamServer]:
    return {"openai": openai_upstream, "anthropic": anthropic_upstream, "gemini": gemini_upstream,
            "webapp": webapp_upstream}


@pytest.mark.parametrize(("service", "path", "content_type", "build", "entities"), HIDDEN)
def test_document_in_a_string_is_read_and_blocked(
        proxy: GuardProxy, servers: dict[str, UpstreamServer], service: str, path: str, content_type: str,
        build: Build, entities: tuple[str, ...]) -> None:
    tag = nonce()
    reply = _send(proxy, servers, service, path, content_type, build(tag))
    assert reply.status == 403, reply.body[:300]
    assert servers[service].received(tag) == []
    event = event_of(proxy, reply)
    assert event["decision"] == "block"
    for entity in entities:
        assert event["entities"].get(entity, 0) >= 1, event["entities"]
    assert NATIONAL_ID not in json.dumps(event, ensure_ascii=False)
    assert NAME not in json.dumps(event, ensure_ascii=False)


UNREADABLE: dict[str, Callable[[], bytes]] = {
    "corrupt PDF": lambda: b"%PDF-1.7\n" + b"\x00" * 64,
    "PDF page without a text layer": lambda: raw_pdf(""),
    "zip that is not an Office package": lambda: zip_archive({"notes.bin": b"\x00\x01"}),
    "legacy .doc (OLE)": lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),
    "truncated gzip": lambda: gzip.compress(f"身分證 {NATIONAL_ID}".encode())[:-12],
    "gzip of binary data": lambda: gzip.compress(bytes(range(256)) * 4),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_document_in_a_string_is_refused_with_an_event(
        proxy: GuardProxy, webapp_upstream: UpstreamServer, case: str) -> None:
    tag = nonce()
    body = json.dumps({"conversation": tag, "file": b64(UNREADABLE[case]())}).encode()
    reply = curl(proxy, f"{webapp_upstream.base_url}/api/attachments", body, {"content-type": JSON})
    assert reply.status == 403, reply.body[:300]
    assert webapp_upstream.received(tag) == []
    event = event_of(proxy, reply)
    assert event["decision"] == "error" and event["error"] == "unreadable_content"


PASSING: dict[str, Callable[[], str]] = {
    "clean base64 PDF": lambda: b64(pdf("Night market rules", info={"/Title": "Draft"})),
    "clean PDF as a data URL": lambda: "data:application/pdf;base64," + b64(pdf("Agenda for Tuesday")),
    "clean base64 DOCX": lambda: b64(docx(["主旨：夜市攤位管理辦法修正草案"], title="草案")),
    "clean gzip-compressed text": lambda: b64(gzip.compress("下週二上午十點開會".encode())),
    "random binary": lambda: b64(random.Random(7).randbytes(3000)),
}


@pytest.mark.parametrize("case", list(PASSING))
def test_clean_file_and_random_binary_arrive_byte_for_byte(
        proxy: GuardProxy, webapp_upstream: UpstreamServer, case: str) -> None:
    tag = nonce()
    body = json.dumps({"conversation": tag, "file": PASSING[case]()}, indent=1).encode()
    reply = curl(proxy, f"{webapp_upstream.base_url}/api/attachments", body, {"content-type": JSON})
    assert reply.status == 200, reply.body[:300]
    (seen,) = webapp_upstream.received(tag)
    assert seen.body == body


def test_base64_of_plain_text_is_still_inspected(proxy: GuardProxy, webapp_upstream: UpstreamServer) -> None:
    """Not a file: no signature. The normalised view decodes it and finds the ID."""
    tag = nonce()
    hidden = b64(f"請查詢身分證 {NATIONAL_ID} 的案件".encode())
    body = json.dumps({"conversation": tag, "note": hidden}).encode()
    reply = curl(proxy, f"{webapp_upstream.base_url}/api/attachments", body, {"content-type": JSON})
    for seen in webapp_upstream.received(tag):
        assert hidden not in seen.text
    event = event_of(proxy, reply)
    assert event["entities"].get("TW_NATIONAL_ID", 0) >= 1


@pytest.mark.parametrize("file", [
    pytest.param(lambda: docx([f"陳情人{NAME}，身分證 {NATIONAL_ID}"]), id="DOCX with an ID: blocked"),
    pytest.param(lambda: b"%PDF-1.7\n" + bytes(64), id="corrupt PDF: unreadable"),
])
def test_document_in_a_websocket_message_never_leaves(proxy: GuardProxy, copilot: WebAppServer,
                                                      file: Callable[[], bytes]) -> None:
    client = WsClient(proxy.port, copilot, proxy.ca, "/c/api/chat?api-version=2")
    try:
        tag = nonce()
        client.send(json.dumps({"event": "send", "conversationId": "Yb3XQm1m8z2Xp", "mode": "chat",
                                "content": [{"type": "text", "text": f"請摘要附件 {tag}"},
                                            {"type": "file", "data": b64(file())}]}))
        notice = webapps.read_copilot(client.receive_until(
            lambda messages: any(json.loads(m).get("event") == "done" for m in messages)))
        assert_block_message(notice)
        assert not [r for r in copilot.requests if tag.encode() in r.raw]
    finally:
        client.close()


# The APIs' own document parts: read like any embedded file (before, always refused as unreadable).
def _openai_file_part(tag: str, data: bytes) -> bytes:
    return _dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "report.pdf",
                                  "file_data": "data:application/pdf;base64," + b64(data)}},
        {"type": "text", "text": f"請摘要 {tag}"}]}]})


def _anthropic_document(tag: str, data: bytes) -> bytes:
    return _dumps({"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": [{"role": "user", "content": [
        {"type": "document",
         "source": {"type": "base64", "media_type": "application/pdf", "data": b64(data)}},
        {"type": "text", "text": f"請摘要 {tag}"}]}]})


def _gemini_inline_data(tag: str, data: bytes) -> bytes:
    return _dumps({"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "application/pdf", "data": b64(data)}}, {"text": f"請摘要 {tag}"}]}]})


API_DOCUMENTS = [
    pytest.param("openai", CHAT, _openai_file_part, id="openai file part"),
    pytest.param("anthropic", "/v1/messages", _anthropic_document, id="anthropic document block"),
    pytest.param("gemini", "/v1beta/models/gemini-2.0-flash:generateContent", _gemini_inline_data,
                 id="gemini inlineData"),
]


@pytest.mark.parametrize(("service", "path", "build"), API_DOCUMENTS)
def test_api_document_part_is_read(proxy: GuardProxy, servers: dict[str, UpstreamServer], service: str,
                                   path: str, build: Callable[[str, bytes], bytes]) -> None:
    tag = nonce()
    reply = _send(proxy, servers, service, path, JSON, build(tag, pdf(f"Applicant ID {NATIONAL_ID}")))
    assert reply.status == 403, reply.body[:300]
    assert servers[service].received(tag) == []
    event = event_of(proxy, reply)
    assert event["decision"] == "block" and event["entities"].get("TW_NATIONAL_ID", 0) >= 1
    tag = nonce()
    body = build(tag, pdf("Night market rules", info={"/Title": "Draft"}))
    reply = _send(proxy, servers, service, path, JSON, body)
    assert reply.status == 200, reply.body[:300]
    (seen,) = servers[service].received(tag)
    assert seen.body == body


@pytest.mark.parametrize(("data", "blocked"), [
    pytest.param(gzip.compress(ID_TEXT.encode()), True, id="gzip text: blocked"),
    pytest.param(b"%PDF-1.7\n" + bytes(48), False, id="corrupt PDF: unreadable"),
])
def test_file_in_a_query_value_never_leaves(proxy: GuardProxy, webapp_upstream: UpstreamServer,
                                            data: bytes, blocked: bool) -> None:
    """A web app keeping its state compressed in the URL (``?state=H4sI…``)."""
    tag = nonce()
    reply = curl(proxy, f"{webapp_upstream.base_url}/share/{tag}?state={quote_plus(url_safe(data))}")
    assert reply.status == 403, reply.body[:300]
    assert webapp_upstream.received(tag) == []
    event = event_of(proxy, reply)
    assert NATIONAL_ID not in json.dumps(event, ensure_ascii=False)
    if blocked:
        assert event["decision"] == "block" and event["entities"].get("TW_NATIONAL_ID", 0) >= 1
    else:
        assert event["decision"] == "error" and event["error"] == "unreadable_content"
