"""Documents uploaded through the running proxy: every part a reader sees is inspected, in the workers.

Each row hides a national ID in a part of a DOCX, XLSX or PDF that the old readers skipped (a main
part found only through ``_rels/.rels``, properties, comments, field codes, alt text, an unusually
named sheet, sheet and defined names, PDF metadata, XMP, notes, form fields): the stand-in service
never receives the file and an event names the finding. Unreadable files and bombs are refused with an
event; clean documents arrive byte for byte; a PDF that takes long to read holds a worker, not the proxy.
"""

from __future__ import annotations

import io
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from pypdf import PdfWriter
from pypdf.generic import NameObject, StreamObject

from tests.e2e.helpers import NATIONAL_ID, CurlResult, GuardProxy, curl, nonce
from tests.e2e.test_upload_multipart import event_of
from tests.e2e.upstream import UpstreamServer
from tests.formats.files import DOCX_TYPE, XLSX_TYPE, docx, form, part, pdf, raw_pdf, xlsx, zip_archive

pytestmark = pytest.mark.usefixtures("curl_available")

PDF_TYPE = "application/pdf"
CT = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"


def upload(proxy: GuardProxy, server: UpstreamServer, tag: str, suffix: str, media_type: str,
           data: bytes) -> tuple[CurlResult, bytes]:
    """A browser-shaped files upload: a purpose field and the file, the tag in its file name."""
    body = form(part('form-data; name="purpose"', b"assistants"),
                part(f'form-data; name="file"; filename="{tag}{suffix}"', data,
                     f"Content-Type: {media_type}"))
    return curl(proxy, f"{server.base_url}/v1/files", body, {"content-type": CT}), body


DOCUMENTS: dict[str, tuple[str, str, Callable[[], bytes]]] = {
    "docx main part through _rels (decoy document.xml)": (
        ".docx", DOCX_TYPE, lambda: docx([f"陳情人身分證字號 {NATIONAL_ID}"], main="word/body.xml",
                                         decoy="會議紀錄")),
    "docx custom property": (".docx", DOCX_TYPE, lambda: docx(["主旨"], custom=("承辦人", NATIONAL_ID))),
    "docx core property": (".docx", DOCX_TYPE, lambda: docx(["主旨"], title=f"身分證 {NATIONAL_ID}")),
    "docx comment": (".docx", DOCX_TYPE, lambda: docx(["主旨"], comment=f"身分證 {NATIONAL_ID}")),
    "docx footer": (".docx", DOCX_TYPE, lambda: docx(["主旨"], footer=f"身分證 {NATIONAL_ID}")),
    "docx field code": (".docx", DOCX_TYPE,
                        lambda: docx(["主旨"], field_code=f'QUOTE "身分證 {NATIONAL_ID}"')),
    "docx alt text": (".docx", DOCX_TYPE, lambda: docx(["主旨"], alt_text=f"身分證正面 {NATIONAL_ID}")),
    "xlsx sheet under any file name": (".xlsx", XLSX_TYPE,
                                       lambda: xlsx([["身分證"], [NATIONAL_ID]], sheet_file="export.xml")),
    "xlsx sheet name": (".xlsx", XLSX_TYPE, lambda: xlsx([["名單"]], sheet_name=NATIONAL_ID)),
    "xlsx defined name": (".xlsx", XLSX_TYPE,
                          lambda: xlsx([["名單"]], defined_name=("身分證", f'"{NATIONAL_ID}"'))),
    "pdf /Info": (".pdf", PDF_TYPE, lambda: pdf("Minutes", info={"/Subject": f"ID {NATIONAL_ID}"})),
    "pdf XMP": (".pdf", PDF_TYPE, lambda: pdf("Minutes", xmp=f"ID {NATIONAL_ID}")),
    "pdf annotation": (".pdf", PDF_TYPE, lambda: pdf("Minutes", annotation=f"ID {NATIONAL_ID}")),
    "pdf form field": (".pdf", PDF_TYPE, lambda: pdf("Minutes", field=("national_id", NATIONAL_ID))),
}


@pytest.mark.parametrize("where", list(DOCUMENTS))
def test_identifier_anywhere_in_a_document_is_blocked(
        guard_proxy: GuardProxy, openai_upstream: UpstreamServer, where: str) -> None:
    suffix, media_type, build = DOCUMENTS[where]
    tag = nonce()
    reply, _ = upload(guard_proxy, openai_upstream, tag, suffix, media_type, build())
    assert reply.status == 403, reply.body
    assert reply.json()["error"]["code"] == "personal_data"
    assert openai_upstream.received(tag) == []
    event = event_of(guard_proxy, reply)
    assert event["decision"] == "block" and event["entities"].get("TW_NATIONAL_ID", 0) >= 1
    assert NATIONAL_ID not in str(event)


def _zip_bomb() -> bytes:
    """A DOCX whose main part inflates 40 MB of blanks from a few kilobytes."""
    return zip_archive({"_rels/.rels": '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                                       'relationships"><Relationship Id="r" Type="x/officeDocument" '
                                       'Target="word/document.xml"/></Relationships>',
                        "word/document.xml": "<a>" + " " * (40 * 1024 * 1024) + "</a>"})


@pytest.mark.parametrize(("suffix", "media_type", "build", "reason"), [
    (".pdf", PDF_TYPE, lambda: raw_pdf(""), "unreadable_content"),  # no text layer
    (".pdf", PDF_TYPE, lambda: b"%PDF-1.7\n" + b"\x00" * 64, "unreadable_content"),
    (".docx", DOCX_TYPE, lambda: zip_archive({"x.bin": b"\x00"}), "unreadable_content"),  # not a document
    (".docx", DOCX_TYPE, _zip_bomb, "body_too_large"),
])
def test_unreadable_document_is_refused_with_an_event(
        guard_proxy: GuardProxy, openai_upstream: UpstreamServer, suffix: str, media_type: str,
        build: Callable[[], bytes], reason: str) -> None:
    tag = nonce()
    reply, _ = upload(guard_proxy, openai_upstream, tag, suffix, media_type, build())
    assert reply.status == 403
    assert reply.json()["error"]["code"] == reason
    assert openai_upstream.received(tag) == []
    event = event_of(guard_proxy, reply)
    assert event["decision"] == "error" and event["error"] == reason


@pytest.mark.parametrize(("suffix", "media_type", "build"), [
    (".docx", DOCX_TYPE, lambda: docx(["主旨：夜市攤位管理辦法修正草案"], title="草案", comment="請參考")),
    (".xlsx", XLSX_TYPE, lambda: xlsx([["案號", "主旨"], [117, "夜市攤位申請"]], sheet_file="data.xml")),
    (".pdf", PDF_TYPE, lambda: pdf("Night market rules", info={"/Title": "Draft"}, annotation="see p. 2")),
])
def test_clean_document_arrives_byte_for_byte(
        guard_proxy: GuardProxy, openai_upstream: UpstreamServer, suffix: str, media_type: str,
        build: Callable[[], bytes]) -> None:
    tag = nonce()
    reply, body = upload(guard_proxy, openai_upstream, tag, suffix, media_type, build())
    assert reply.status == 200, reply.body
    (seen,) = openai_upstream.received(tag)
    assert seen.body == body


# ---------------------------------------------------------------- availability: reading happens in a worker

def _slow_pdf() -> bytes:
    """About 15 KB on the wire; its one content stream inflates to 7.5 MB of text operators (pypdf needs
    far longer than the time limit to read it)."""
    writer = PdfWriter(clone_from=io.BytesIO(raw_pdf("x")))
    stream = StreamObject()
    stream._data = zlib.compress(b"BT /F1 12 Tf 72 720 Td " + b"(ab) Tj 1 0 Td " * 500_000 + b"ET", 9)
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    writer.pages[0][NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_slow_document_does_not_hold_up_other_traffic(
        guard_proxy: GuardProxy, openai_upstream: UpstreamServer, plain_upstream: UpstreamServer,
        upstream_cert: tuple[Path, Path]) -> None:
    tag = nonce()
    data = _slow_pdf()
    replies: list[CurlResult] = []
    slow = threading.Thread(target=lambda: replies.append(
        upload(guard_proxy, openai_upstream, tag, ".pdf", PDF_TYPE, data)[0]))
    slow.start()
    time.sleep(1.5)  # the upload is in the proxy (15 KB on loopback) and its reading has begun
    other = curl(guard_proxy, f"{plain_upstream.base_url}/ping-{tag}", b"hello", cacert=upstream_cert[0])
    still_reading = slow.is_alive()
    slow.join(60)
    assert other.status == 200
    assert still_reading, "other traffic waited for the document to be read"
    (reply,) = replies
    assert reply.status == 403  # past the time limit: the worker is replaced and nothing is sent
    assert openai_upstream.received(tag) == []
    assert event_of(guard_proxy, reply)["decision"] == "error"
    _wait_for_a_worker(guard_proxy, openai_upstream)


def _wait_for_a_worker(proxy: GuardProxy, server: UpstreamServer) -> None:
    """The overrunning worker was replaced; the tests after this one need its successor ready (a
    fresh engine takes a few seconds, much longer on a loaded machine)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        tag = nonce()
        if upload(proxy, server, tag, ".txt", "text/plain", "請摘要。".encode())[0].status == 200:
            return
        time.sleep(2)
    raise AssertionError("no inspection worker came back after the overrun")
