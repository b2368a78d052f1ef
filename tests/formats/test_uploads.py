"""File uploads: multipart and raw bodies, text out of TXT/CSV/JSON/MD/DOCX/XLSX/PDF, unreadable files."""

from __future__ import annotations

import pytest

from guard.formats import NotRewritable, UnreadableContent, format_for
from guard.formats.uploads import extract_file_text, parse_multipart
from tests.formats.helpers import docx, texts, wheres, zip_archive

UPLOADS = format_for("uploads")
S_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def xlsx() -> bytes:
    return zip_archive({
        "[Content_Types].xml": "<Types/>",
        "xl/workbook.xml": f'<workbook xmlns="{S_NS}"><sheets><sheet name="A"/></sheets></workbook>',
        "xl/sharedStrings.xml": f'<sst xmlns="{S_NS}"><si><t>姓名</t></si><si><t>身分證字號</t></si>'
                                f'<si><r><t>王</t></r><r><t>小明</t></r></si></sst>',
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{S_NS}"><sheetData>'
                                    '<row r="1"><c r="A1" t="s"><v>0</v></c>'
                                    '<c r="B1" t="s"><v>1</v></c></row>'
                                    '<row r="2"><c r="A2" t="s"><v>2</v></c>'
                                    '<c r="B2" t="inlineStr"><is><t>A123456789</t></is></c>'
                                    '<c r="C2"><v>912345678</v></c></row></sheetData></worksheet>',
    })


def pdf(text: str) -> bytes:
    """A one-page PDF with a Helvetica text layer (offsets computed so the xref table is exact)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


CSV = "姓名,電話\n王小明,0912345678\n"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.mark.parametrize(("data", "content_type", "filename", "expected"), [
    (CSV.encode(), "text/csv", "list.csv", CSV),
    (CSV.encode("cp950"), "text/csv", "excel-big5.csv", CSV),
    ("\ufeff# 會議紀錄\n林美玲".encode(), "text/markdown", "notes.md", "# 會議紀錄\n林美玲"),
    (b'{"owner": "A123456789"}', "application/json", "data.json", '{"owner": "A123456789"}'),
    (docx(["承辦人王小明", "身分證A123456789"], header="密等：機密"), "application/octet-stream", "x.docx",
     "密等：機密\n\n承辦人王小明\n身分證A123456789"),
    (xlsx(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "名冊.xlsx",
     "姓名\t身分證字號\n王小明\tA123456789\t912345678"),
    (pdf("Owner A123456789 Wang"), "application/pdf", "a.pdf", "Owner A123456789 Wang"),
])
def test_extract_file_text(data: bytes, content_type: str, filename: str, expected: str) -> None:
    assert extract_file_text(data, content_type, filename).strip() == expected.strip()


@pytest.mark.parametrize(("data", "content_type"), [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "image/png"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "application/msword"),  # legacy .doc
    (pdf(""), "application/pdf"),  # no text layer, as a scanned PDF
    (b"%PDF-1.7\n garbage", "application/pdf"),
    (zip_archive({"word/document.xml": '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'}),
     "application/octet-stream"),
    (zip_archive({"random.bin": "x"}), "application/zip"),
])
def test_unreadable_files(data: bytes, content_type: str) -> None:
    with pytest.raises(UnreadableContent):
        extract_file_text(data, content_type, None)


BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"


def multipart(parts: list[tuple[str, str | None, str, bytes]], boundary: str = BOUNDARY) -> bytes:
    out = b""
    for name, filename, ctype, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


CT = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"


def test_multipart_openai_files_upload() -> None:
    body = multipart([("purpose", None, "", b"assistants"),
                      ("file", "王小明履歷.txt", "text/plain", "姓名：王小明\n電話：0912345678".encode())])
    parsed = format_for("openai").extract(body, CT, "/v1/files")
    assert texts(parsed) == ["assistants", "姓名：王小明\n電話：0912345678"]
    assert wheres(parsed) == ["form[purpose]", "files[1](.txt)"]  # file names may hold names: not shown
    out = UPLOADS.rewrite(parsed, ["assistants", "姓名：<PERSON_1>\n電話：<PHONE_NUMBER_1>"])
    parts = parse_multipart(out, CT)
    assert out[parts[1].start:parts[1].end].decode() == "姓名：<PERSON_1>\n電話：<PHONE_NUMBER_1>"
    assert out[:parts[1].start] == body[:parse_multipart(body, CT)[1].start]
    assert UPLOADS.rewrite(parsed, list(parsed.texts)) is body


def test_multipart_docx_is_inspected_but_not_rewritable() -> None:
    body = multipart([("file", "簽呈.docx", DOCX_TYPE, docx(["機密公文"]))])
    parsed = format_for("claude_web").extract(body, CT, "/api/o/upload")
    assert texts(parsed) == ["機密公文"]
    with pytest.raises(NotRewritable):
        UPLOADS.rewrite(parsed, ["<CLASSIFICATION_MARKER_1>公文"])


def test_multipart_unreadable_file_names_the_part_not_the_file() -> None:
    body = multipart([("file", "王小明.doc", "application/msword", b"\xd0\xcf\x11\xe0" + b"\x00" * 32)])
    with pytest.raises(UnreadableContent, match=r"files\[0\]\(\.doc\)") as e:
        UPLOADS.extract(body, CT, "/upload")
    assert "王小明" not in str(e.value)


def test_multipart_image_is_left_to_ocr_by_its_place() -> None:
    # The proxy reads image files with OCR (guard.image_parts); the reader only names the part.
    body = multipart([("note", None, "", "請看附件".encode()),
                      ("file", "王小明.png", "image/png", b"\x89PNG\r\n\x1a\n\x00\x00")])
    parsed = UPLOADS.extract(body, CT, "/upload")
    assert texts(parsed) == ["請看附件"]
    assert parsed.uninspected == ("files[1](.png)",)


def test_raw_upload_body() -> None:
    parsed = UPLOADS.extract(pdf("Case A123456789"), "application/pdf", "/upload")
    assert texts(parsed) == ["Case A123456789"]
    parsed = UPLOADS.extract("王小明".encode(), "text/csv", "/upload")
    assert UPLOADS.rewrite(parsed, ["<PERSON_1>"]) == b"<PERSON_1>"
