"""multipart/form-data: the right boundary, every part header, names, file names, preamble and epilogue."""

from __future__ import annotations

import base64
import pickle

import pytest

from guard.formats import FORMATS, FormatError, NotRewritable, UnreadableContent, format_for
from guard.formats.multipart import parse
from tests.formats.files import BOUNDARY, DOCX_TYPE, docx, form, part
from tests.formats.helpers import texts, wheres

UPLOADS = format_for("uploads")
ID = "A123456789"
CT = f"multipart/form-data; boundary={BOUNDARY}"


FILE = part('form-data; name="file"; filename="notes.txt"', "請摘要會議紀錄".encode(),
            "Content-Type: text/plain")
PURPOSE = part('form-data; name="purpose"', b"assistants")


# ---------------------------------------------------------------- where an identifier can sit: each is read

@pytest.mark.parametrize(("body", "content_type", "where"), [
    (form(PURPOSE, part('form-data; name="file"; filename="a.txt"', f"身分證 {ID}".encode())), CT,
     "files[1](.txt)"),
    (form(part('form-data; name="note"', f"身分證 {ID}".encode())), CT, "form[0]"),
    (form(part(f'form-data; name="{ID}"', b"x")), CT, "form[0].headers"),  # the field name
    (form(part(f'form-data; name="file"; filename="{ID}.txt"', b"x")), CT, "files[0](.txt).headers"),
    (form(part(f"form-data; name=\"file\"; filename*=UTF-8''%E7%8E%8B{ID}.txt", b"x")), CT,
     "files[0](.txt).filename"),  # RFC 5987/2231: decoded before it is read
    (form(part('form-data; name="file"; filename="a.txt"', b"x", f"X-Owner: {ID}")), CT,
     "files[0](.txt).headers"),
    (form(FILE, preamble=f"{ID}\r\n".encode()), CT, "preamble"),
    (form(part('form-data; name="a"', b"x", boundary=f"--{ID}"), boundary=f"--{ID}"),
     f"multipart/form-data; boundary=--{ID}", "boundary"),
    (form(FILE, epilogue=f"{ID}\r\n".encode()), CT, "epilogue"),
    # xboundary=AAA; boundary=BBB: the boundary is BBB, so the ID is inside a part
    (form(part('form-data; name="q"', ID.encode(), boundary="BBB"), boundary="BBB"),
     "multipart/form-data; xboundary=AAA; boundary=BBB", "form[0]"),
    (form(part('form-data; name="q"', ID.encode(), boundary="B B"), boundary="B B"),
     'multipart/form-data; boundary="B B"', "form[0]"),
    # a transfer encoding some servers still decode: the decoded text is read
    (form(part('form-data; name="file"; filename="a.txt"', base64.b64encode(f"身分證 {ID}".encode()),
               "Content-Type: text/plain", "Content-Transfer-Encoding: base64")), CT, "files[0](.txt)"),
])
def test_every_place_is_inspected(body: bytes, content_type: str, where: str) -> None:
    parsed = UPLOADS.extract(body, content_type, "/v1/files")
    found = [s.where for s in parsed.segments if ID in s.text]
    assert where in found, (wheres(parsed), texts(parsed))


def test_file_names_never_appear_in_locations() -> None:
    body = form(part('form-data; name="file"; filename="王小明履歷.txt"', "姓名：王小明".encode()))
    parsed = UPLOADS.extract(body, CT, "/v1/files")
    assert all("王小明" not in w for w in wheres(parsed))


# ---------------------------------------------------------------- rewriting in place

def test_text_parts_and_headers_are_rewritten_in_place() -> None:
    body = form(PURPOSE, part(f'form-data; name="file"; filename="{ID}.txt"', f"姓名：王小明 {ID}".encode(),
                              "Content-Type: text/plain"), epilogue=f"{ID}\r\n".encode())
    parsed = format_for("openai").extract(body, CT, "/v1/files")
    assert UPLOADS.rewrite(parsed, list(parsed.texts)) is body
    out = UPLOADS.rewrite(parsed, [t.replace(ID, "<TW_NATIONAL_ID_1>") for t in parsed.texts])
    assert ID.encode() not in out
    again = parse(out, CT)
    assert [p.name for p in again.parts] == ["purpose", "file"]
    assert again.parts[1].filename == "<TW_NATIONAL_ID_1>.txt"
    assert again.parts[1].payload == "姓名：王小明 <TW_NATIONAL_ID_1>".encode()


@pytest.mark.parametrize("body", [
    form(part("form-data; name=\"file\"; filename*=UTF-8''%E7%8E%8B%E5%B0%8F%E6%98%8E.txt", b"x")),
    form(part('form-data; name="file"; filename="a.docx"', docx(["王小明"]), f"Content-Type: {DOCX_TYPE}")),
])
def test_what_cannot_be_written_back_is_not_rewritable(body: bytes) -> None:
    parsed = UPLOADS.extract(body, CT, "/v1/files")
    with pytest.raises(NotRewritable):
        UPLOADS.rewrite(parsed, [t.replace("王小明", "<PERSON_1>") for t in parsed.texts])


def test_clean_upload_is_returned_byte_for_byte() -> None:
    body = form(PURPOSE, FILE, part('form-data; name="doc"; filename="a.docx"', docx(["夜市攤位管理辦法"]),
                                    f"Content-Type: {DOCX_TYPE}"))
    parsed = UPLOADS.extract(body, CT, "/v1/files")
    assert "夜市攤位管理辦法" in parsed.texts
    assert UPLOADS.rewrite(parsed, list(parsed.texts)) is body


# ---------------------------------------------------------------- malformed or ambiguous: refused

@pytest.mark.parametrize(("body", "content_type"), [
    (form(FILE), "multipart/form-data"),  # no boundary
    (form(FILE), f"multipart/form-data; boundary=AAA; boundary={BOUNDARY}"),  # two boundaries
    (form(FILE), "multipart/form-data; boundary=other"),  # boundary not in the body
    (FILE, CT),  # never closed
    (form(part('form-data; name="a"', f"x\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=b\r\n\r\n"
                                      f"{ID}".encode())), CT),  # a bare-LF delimiter hidden in a part
    (form(FILE, preamble=f"--{BOUNDARY}x\r\n".encode()), CT),  # the boundary in the preamble
    (form(FILE).replace(b"\r\n\r\n", b"\r\n", 1), CT),  # headers never end
    # a bare-LF blank line ends the headers early for a lenient parser: the rest would be data there
    (form(part('form-data; name="a"\n\nX-Data: 1', b"x")), CT),
    (form(part('form-data; name="a"', b"--x\r\n", "Content-Type: multipart/mixed; boundary=x")), CT),
    (form(part('form-data; name="a"', b"x")).replace(f"--{BOUNDARY}\r\n".encode(),
                                                      f"--{BOUNDARY}junk\r\n".encode(), 1), CT),
])
def test_malformed_or_ambiguous_bodies_are_refused(body: bytes, content_type: str) -> None:
    with pytest.raises(FormatError):
        UPLOADS.extract(body, content_type, "/v1/files")


def test_unreadable_file_names_the_part_not_the_file() -> None:
    # (an image file is left to OCR, guard.image_parts: see test_uploads)
    body = form(part('form-data; name="file"; filename="王小明.doc"', b"\xd0\xcf\x11\xe0" + b"\x00" * 32,
                     "Content-Type: application/msword"))
    with pytest.raises(UnreadableContent, match=r"files\[0\]\(\.doc\)") as e:
        UPLOADS.extract(body, CT, "/upload")
    assert "王小明" not in str(e.value)


def test_part_headers_that_are_not_utf8_are_refused() -> None:
    big5 = form(part('form-data; name="file"; filename="\u738b.txt"', b"x"))
    body = big5.replace("\u738b".encode(), "\u738b".encode("cp950"))
    with pytest.raises(FormatError):
        UPLOADS.extract(body, CT, "/upload")


def test_multipart_related_as_gemini_uploads_it() -> None:
    """The Gemini files API's ``multipart/related``: JSON metadata, then the file; no Content-Disposition."""
    body = (f"--{BOUNDARY}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f'{{"file": {{"display_name": "{ID}"}}}}\r\n'
            f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\n身分證 {ID}\r\n--{BOUNDARY}--\r\n").encode()
    content_type = f"multipart/related; boundary={BOUNDARY}"
    parsed = format_for("gemini").extract(body, content_type, "/upload/v1beta/files")
    found = [where for where, text in zip(wheres(parsed), texts(parsed), strict=True) if ID in text]
    assert found == ["form[0]", "form[1]"]
    out = UPLOADS.rewrite(parsed, [t.replace(ID, "<ID>") for t in parsed.texts])
    assert out == body.replace(ID.encode(), b"<ID>")


@pytest.mark.parametrize("api", sorted(FORMATS))
def test_every_format_returns_an_upload_a_worker_can_send_back(api: str) -> None:
    """Uploads are extracted in a worker process: what ``extract`` returns must survive pickling."""
    body = form(part('form-data; name="file"; filename="a.txt"', f"身分證 {ID}".encode(),
                     "Content-Type: text/plain"))
    parsed = pickle.loads(pickle.dumps(format_for(api).extract(body, CT, "/upload")))
    rewritten = format_for(api).rewrite(parsed, [t.replace(ID, "<ID>") for t in parsed.texts])
    assert rewritten == body.replace(ID.encode(), b"<ID>")
