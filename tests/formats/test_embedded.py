"""Files hidden as base64 in strings: which strings are files, what is read from them, what is refused;
and data URLs of text (a Responses ``input_file``): read as text and redacted in place."""

from __future__ import annotations

import base64
import bz2
import gzip
import json
import lzma
import pickle
import random
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from guard.formats import BodyTooLarge, NotRewritable, UnreadableContent, format_for
from guard.formats.embedded import embedded_file, embedded_text, may_hold_files, text_base64, text_data_url
from guard.formats.generic import GenericFormat
from guard.formats.uploads import reads_documents
from tests.formats.files import docx, pdf, zip_archive

ID_TEXT = "身分證 A123456789"
GENERIC = GenericFormat()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.mark.parametrize(("value", "kind", "text"), [
    (b64(pdf(ID_TEXT.replace("身分證", "ID"))), "pdf", "ID A123456789"),
    ("data:application/pdf;base64," + b64(pdf("ID A123456789")), "pdf", "ID A123456789"),
    ("data:application/octet-stream;name=a.bin;base64," + b64(docx([ID_TEXT])), "zip", ID_TEXT),
    (base64.urlsafe_b64encode(docx([ID_TEXT])).decode().rstrip("="), "zip", ID_TEXT),
    (base64.encodebytes(docx([ID_TEXT])).decode(), "zip", ID_TEXT),  # MIME lines of 76 characters
    (b64(gzip.compress(ID_TEXT.encode())), "gzip", ID_TEXT),
    (b64(zlib.compress(ID_TEXT.encode())), "zlib", ID_TEXT),
    (b64(bz2.compress(ID_TEXT.encode())), "bzip2", ID_TEXT),
    (b64(lzma.compress(ID_TEXT.encode())), "xz", ID_TEXT),
    (b64(gzip.compress(ID_TEXT.encode("cp950"))), "gzip", ID_TEXT),  # Big5 text, as Windows saves it
    (b64(gzip.compress(docx([ID_TEXT]))), "gzip", ID_TEXT),  # a compressed document is read too
])
def test_file_in_a_string_is_read(value: str, kind: str, text: str) -> None:
    found = embedded_text(value)
    assert found is not None and found[0] == kind and text in found[1]


@pytest.mark.parametrize("value", [
    b64(random.Random(1).randbytes(2000)),      # binary of no known type
    b64(f"請查詢 {ID_TEXT}".encode()),            # base64 of text: the normalised view reads it
    "JVBERi0 is how base64 of a PDF begins",    # text that starts like one
    "JVBERi0xLjcKJeLjz9MK 1 0 obj",             # a sentence quoting one
    "eJohn Smith wrote the eJournal entry",     # zlib's two-byte signature in text
    "H4sI",                                     # too short to be a file
    "https://example.gov.tw/api?file=JVBERi0xLjcK",
])
def test_other_strings_are_not_files(value: str) -> None:
    assert embedded_file(value) is None


@pytest.mark.parametrize(("data", "error"), [
    (b"%PDF-1.7\n" + bytes(64), UnreadableContent),                        # corrupt PDF
    (zip_archive({"x.bin": b"\x00"}), UnreadableContent),                   # a zip that is no document
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), UnreadableContent),  # legacy .doc
    (gzip.compress(ID_TEXT.encode())[:-10], UnreadableContent),             # truncated
    (gzip.compress(bytes(range(256))), UnreadableContent),                  # compressed binary
    (bz2.compress(bytes(40 * 1024 * 1024)), BodyTooLarge),                  # a bomb: 40 MB of zeros
    (gzip.compress(gzip.compress(gzip.compress(gzip.compress(ID_TEXT.encode())))), UnreadableContent),  # deep
])
def test_unreadable_file_fails_closed(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        embedded_text(b64(data))


def test_json_body_with_a_file_blocks_redaction_and_survives_a_worker() -> None:
    body = json.dumps({"note": "附件", "file": b64(pdf("ID A123456789"))}).encode()
    parsed = pickle.loads(pickle.dumps(GENERIC.extract(body, "application/json", "/api/x")))
    assert [s.where for s in parsed.all_segments if "A123456789" in s.text] == ["file(pdf)"]
    texts = [s.text.replace("A123456789", "<ID>") for s in parsed.all_segments]
    with pytest.raises(NotRewritable):
        GENERIC.rewrite(parsed, texts)
    note_only = [s.text.replace("附件", "<X>") for s in parsed.all_segments]
    assert json.loads(GENERIC.rewrite(parsed, note_only))["note"] == "<X>"  # the rest is still redactable


@pytest.mark.parametrize(("body", "content_type", "in_worker"), [
    (json.dumps({"f": b64(pdf("a"))}).encode(), "application/json", True),
    (json.dumps({"f": json.dumps({"f": b64(pdf("a"))})}).encode(), "application/json", True),
    (b"f=" + base64.urlsafe_b64encode(docx(["a"])), "application/x-www-form-urlencoded", True),
    (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}', "application/json", False),
    (b"q=eJohn+Smith&mode=chat", "application/x-www-form-urlencoded", True),  # an over-estimate: only cost
    (json.dumps({"f": base64.b64encode(bytes(range(256)) * 8).decode()}).encode(), "application/json", False),
])
def test_bodies_that_may_hold_files_are_read_in_a_worker(body: bytes, content_type: str,
                                                         in_worker: bool) -> None:
    assert may_hold_files(body, form=content_type == "application/x-www-form-urlencoded") is in_worker
    assert reads_documents(body, content_type) is in_worker


def test_many_small_bombs_in_one_body_are_refused() -> None:
    """Each inflates within the per-file limit; together they pass the per-request one."""
    bomb = b64(gzip.compress(b"a" * (30 * 1024 * 1024)))
    body = json.dumps({"parts": [bomb] * 5}).encode()
    with pytest.raises(BodyTooLarge):
        GENERIC.extract(body, "application/json", "/api/x")


# ---------------------------------------------------------------- data URLs of text (a Responses input_file)

def data_url(text: str, media: str = "text/plain", codec: str = "utf-8") -> str:
    return f"data:{media};base64," + b64(text.encode(codec))


CSV = "姓名,身分證字號,電話\n王小明,F123456784,0912345678\n"
MARKDOWN = "# 陳情案件\n\n- 陳情人：林美玲\n- 身分證：F123456784\n"


@pytest.mark.parametrize(("value", "codec", "text"), [
    (data_url(ID_TEXT), "utf-8", ID_TEXT),
    (data_url(CSV, "text/csv"), "utf-8", CSV),
    (data_url(CSV, "text/csv", "cp950"), "cp950", CSV),                     # Big5, as Windows saves it
    (data_url(CSV, "text/csv;charset=big5", "big5"), "cp950", CSV),         # Big5 read as its superset
    (data_url("F123456784", "text/plain;charset=utf-16"), "utf-8", "F123456784"),  # the bytes, not the label
    (data_url(MARKDOWN, "text/markdown"), "utf-8", MARKDOWN),
    (data_url('{"applicant": "F123456784"}', "application/json"), "utf-8", '{"applicant": "F123456784"}'),
    (data_url(CSV, "application/octet-stream"), "utf-8", CSV),              # the bytes decide, not the label
    (data_url(CSV, "text/csv", "utf-8-sig"), "utf-8-sig", CSV),             # a BOM is kept on rewrite
    ("data:text/plain;base64,", "utf-8", ""),                               # an empty file
])
def test_text_data_url_is_decoded_and_encodes_back(value: str, codec: str, text: str) -> None:
    url = text_data_url(value)
    assert url is not None and url.codec == codec and url.text == text
    assert url.with_text(text) == value


@pytest.mark.parametrize("value", [
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
    "data:application/pdf;base64," + b64(pdf("ID A123456789")),             # a container: embedded_text
    data_url(ID_TEXT, "text/plain").replace("base64,", "base64,@@"),        # not base64
    "data:text/plain;base64," + b64(bytes(range(256))),                     # binary labelled as text
    "data:text/plain," + ID_TEXT,                                          # not base64: a plain string
    ID_TEXT,
])
def test_other_strings_are_not_text_data_urls(value: str) -> None:
    assert text_data_url(value) is None


def _responses_file(file_data: str, filename: str = "notes.txt") -> dict[str, object]:
    return {"model": "gpt-4.1", "input": [{"role": "user", "content": [
        {"type": "input_file", "filename": filename, "file_data": file_data},
        {"type": "input_text", "text": "請摘要這個檔案"}]}]}


def _chat_file(file_data: str, filename: str = "notes.txt") -> dict[str, object]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": filename, "file_data": file_data}},
        {"type": "text", "text": "請摘要這個檔案"}]}]}


OPENAI = format_for("openai")
FILE_PARTS = [
    (_responses_file, ("input", 0, "content", 0, "file_data")),
    (_chat_file, ("messages", 0, "content", 0, "file", "file_data")),
]


@pytest.mark.parametrize(("build", "at"), FILE_PARTS)
@pytest.mark.parametrize(("media", "codec", "text"), [
    ("text/plain", "utf-8", "陳情人 王小明，身分證 F123456784，請協助查復。\n"),
    ("text/csv", "cp950", CSV),
    ("text/markdown", "utf-8", MARKDOWN),
    ("application/json", "utf-8", '{"applicant": "F123456784", "note": "請查復"}'),
])
def test_openai_text_file_is_read_and_redacted_in_its_data_url(
        build: Callable[..., dict[str, Any]], at: tuple[Any, ...], media: str, codec: str, text: str) -> None:
    body = json.dumps(build(data_url(text, media, codec)), ensure_ascii=False).encode()
    parsed = pickle.loads(pickle.dumps(OPENAI.extract(body, "application/json", "/v1/responses")))
    assert parsed.uninspected == ()                                          # before: 403 "unreadable"
    assert any(text in s.text for s in parsed.all_segments)                  # the file's text is read
    assert OPENAI.rewrite(parsed, [s.text for s in parsed.all_segments]) == body
    redacted = [s.text.replace("F123456784", "<TW_NATIONAL_ID_1>") for s in parsed.all_segments]
    sent = json.loads(OPENAI.rewrite(parsed, redacted))
    node: Any = sent
    for step in at:
        node = node[step]
    assert node == data_url(text.replace("F123456784", "<TW_NATIONAL_ID_1>"), media, codec)
    assert sent["model"] == build("")["model"]                              # the rest as it was


@pytest.mark.parametrize("part", [
    {"type": "input_file", "file_data": "data:text/plain;base64," + b64(bytes(range(256)))},  # binary
    {"type": "input_file", "file_data": "data:application/pdf;base64," + b64(b"%PDF-1.7\n" + bytes(64))},
    {"type": "input_file", "file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"},        # uploaded before: not here
    {"type": "input_file", "file_url": "https://www.example.gov.tw/a.txt"},  # the guard fetches nothing
])
def test_openai_file_parts_the_guard_cannot_read_stay_unreadable(part: dict[str, str]) -> None:
    body = {"model": "gpt-4.1", "input": [{"role": "user", "content": [part]}]}
    try:
        parsed = OPENAI.extract(json.dumps(body).encode(), "application/json", "/v1/responses")
    except UnreadableContent:
        return                                                                # the corrupt PDF: refused
    assert parsed.uninspected == ("input[0].content[0]",)


# Bare base64 typed by a sibling key: Gemini inlineData (camelCase, and snake_case as the REST API
# also takes it), an Anthropic document's base64 source.
TYPED_BASE64 = [
    ("gemini", lambda data: {"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "text/csv", "data": data}}, {"text": "請摘要"}]}]},
     ("contents", 0, "parts", 0, "inlineData", "data")),
    ("gemini", lambda data: {"contents": [{"role": "user", "parts": [
        {"inline_data": {"mime_type": "text/plain", "data": data}}, {"text": "請摘要"}]}]},
     ("contents", 0, "parts", 0, "inline_data", "data")),
    ("anthropic", lambda data: {"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": [{
        "role": "user", "content": [{"type": "document", "source": {
            "type": "base64", "media_type": "text/plain", "data": data}},
        {"type": "text", "text": "請摘要"}]}]},
     ("messages", 0, "content", 0, "source", "data")),
]


@pytest.mark.parametrize(("service", "build", "at"), TYPED_BASE64)
def test_typed_base64_text_is_read_and_redacted_in_place(service: str, build: Callable[[str], Any],
                                                         at: tuple[Any, ...]) -> None:
    fmt = format_for(service)
    body = json.dumps(build(b64(CSV.encode("cp950"))), ensure_ascii=False).encode()
    parsed = fmt.extract(body, "application/json", "/")
    assert parsed.uninspected == () and any(CSV in s.text for s in parsed.all_segments)
    redacted = [s.text.replace("F123456784", "<ID>") for s in parsed.all_segments]
    sent: Any = json.loads(fmt.rewrite(parsed, redacted))
    for step in at:
        sent = sent[step]
    assert base64.b64decode(sent).decode("cp950") == CSV.replace("F123456784", "<ID>")


@pytest.mark.parametrize(("value", "media"), [
    ("F123456784", "text/plain"),                       # a word, not base64 of one
    ("A123456789ABCDEF", "text/plain"),                 # 16 characters, decodes to no text
    (b64(ID_TEXT.encode()).rstrip("="), "text/plain"),  # unpadded: not what an SDK sends
    (b64(ID_TEXT.encode()), "image/png"),               # a picture's bytes are OCR's
    (b64(pdf("ID A123456789")), "application/pdf"),     # a container: embedded_text reads it
])
def test_other_typed_strings_are_not_base64_text(value: str, media: str) -> None:
    assert text_base64(value, media) is None
