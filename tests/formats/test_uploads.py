"""File uploads: the text of TXT/CSV/JSON/MD files and DOCX/XLSX/PPTX/PDF documents; unreadable files."""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import pytest

from guard.formats import BodyTooLarge, NotRewritable, UnreadableContent, format_for
from guard.formats.uploads import extract_file_text, reads_documents
from tests.formats.files import (
    BOUNDARY,
    DOCX_TYPE,
    PPTX_TYPE,
    XLSX_TYPE,
    docx,
    form,
    part,
    pdf,
    pptx,
    raw_pdf,
    rels,
    xlsx,
    zip_archive,
)
from tests.formats.helpers import texts

UPLOADS = format_for("uploads")
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
ID = "A123456789"
CSV = "姓名,電話\n王小明,0912345678\n"
GLYPH_CODES = "".join(f"\\{n:03o}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 14, 15))  # PDF string escapes
HEX_TEXT = b"BT /F1 12 Tf 72 720 Td <%s> Tj ET" % ID.encode().hex().encode()  # no ID in the PDF's bytes


# ---------------------------------------------------------------- what each reader reads

@pytest.mark.parametrize(("data", "content_type", "filename", "expected"), [
    # text files
    (CSV.encode(), "text/csv", "list.csv", [CSV]),
    (CSV.encode("cp950"), "text/csv", "excel-big5.csv", [CSV]),
    ("\ufeff# 會議紀錄\n林美玲".encode(), "text/markdown", "notes.md", ["# 會議紀錄\n林美玲"]),
    (f'{{"owner": "{ID}"}}'.encode(), "application/json", "data.json", [ID]),
    # DOCX: body split over runs, header, footer, comments, footnotes, properties, fields, alt text, links
    (docx(["承辦人王小明", f"身分證{ID}"], header="密等：機密"), "application/octet-stream", "x.docx",
     ["密等：機密", "承辦人王小明", f"身分證{ID}"]),
    (docx(["主旨"], footer=f"聯絡人 {ID}"), DOCX_TYPE, "a.docx", [f"聯絡人 {ID}"]),
    (docx(["主旨"], comment=f"請查 {ID}"), DOCX_TYPE, "a.docx", [f"請查 {ID}"]),
    (docx(["主旨"], footnote=f"註：{ID}"), DOCX_TYPE, "a.docx", [f"註：{ID}"]),
    (docx(["主旨"], title="陳情案", author="王小明"), DOCX_TYPE, "a.docx", ["陳情案", "王小明"]),
    (docx(["主旨"], custom=("承辦人身分證", ID)), DOCX_TYPE, "a.docx", ["承辦人身分證", ID]),
    (docx(["主旨"], field_code=f'HYPERLINK "https://x.example/?id={ID}"'), DOCX_TYPE, "a.docx", [ID]),
    (docx(["主旨"], alt_text=f"身分證正面 {ID}"), DOCX_TYPE, "a.docx", [f"身分證正面 {ID}"]),
    (docx(["主旨"], hyperlink=f"https://x.example/q?id={ID}"), DOCX_TYPE, "a.docx", [f"?id={ID}"]),
    # the main part is wherever _rels/.rels says, and a decoy word/document.xml is read as well
    (docx([f"真正內文 {ID}"], main="word/main.xml", decoy="無害的誘餌"), DOCX_TYPE, "a.docx",
     [f"真正內文 {ID}", "無害的誘餌"]),
    (docx(["無害的內文"], main="word/main.xml", decoy=f"誘餌內 {ID}"), DOCX_TYPE, "a.docx", [f"誘餌內 {ID}"]),
    # XLSX: shared and inline strings, numbers, any sheet file name, sheet names, defined names, comments
    (xlsx([["姓名", "身分證字號"], ["王小明", ID, 912345678]]), XLSX_TYPE, "名冊.xlsx",
     ["姓名\t身分證字號", f"王小明\t{ID}\t912345678"]),
    (xlsx([["王小明", ID]], inline=True), XLSX_TYPE, "a.xlsx", [f"王小明\t{ID}"]),
    (xlsx([["王小明", ID]], sheet_file="data-export.xml"), XLSX_TYPE, "a.xlsx", [f"王小明\t{ID}"]),
    (xlsx([["名單"]], sheet_name=f"王小明{ID}"), XLSX_TYPE, "a.xlsx", [f"王小明{ID}"]),
    (xlsx([["名單"]], defined_name=("承辦人", f'"{ID}"')), XLSX_TYPE, "a.xlsx", ["承辦人", ID]),
    (xlsx([["名單"]], comment=f"核對 {ID}"), XLSX_TYPE, "a.xlsx", [f"核對 {ID}"]),
    # PPTX: slides and speaker notes
    (pptx(["簡報標題", "第二頁"], notes=f"講者備註 {ID}"), PPTX_TYPE, "a.pptx",
     ["簡報標題", "第二頁", f"講者備註 {ID}"]),
    # PDF: text layer, /Info, XMP, annotations, links, form fields, outline, attached files
    (raw_pdf(f"Owner {ID} Wang"), "application/pdf", "a.pdf", [f"Owner {ID} Wang"]),
    (b"junk before the header\n" + raw_pdf("", content=HEX_TEXT), "text/plain", "a.txt", [ID]),  # a PDF still
    (pdf("Minutes", info={"/Author": f"Wang {ID}"}), "application/pdf", "a.pdf", [f"Wang {ID}"]),
    (pdf("Minutes", xmp=f"Chen {ID}"), "application/pdf", "a.pdf", [f"Chen {ID}"]),
    (pdf("Minutes", annotation=f"see {ID}"), "application/pdf", "a.pdf", [f"see {ID}"]),
    (pdf("Minutes", link=f"https://x.example/?id={ID}"), "application/pdf", "a.pdf", [f"?id={ID}"]),
    (pdf("Minutes", field=("national_id", ID)), "application/pdf", "a.pdf", ["national_id", ID]),
    (pdf("Minutes", outline=f"Appendix {ID}"), "application/pdf", "a.pdf", [f"Appendix {ID}"]),
    (pdf("Minutes", attachment=("list.csv", CSV.encode())), "application/pdf", "a.pdf",
     ["王小明,0912345678"]),
])
def test_reader_finds_the_text(data: bytes, content_type: str, filename: str, expected: list[str]) -> None:
    text = extract_file_text(data, content_type, filename)
    for piece in expected:
        assert piece in text


def _with_parts(document: bytes, part_rels: str, parts: dict[str, str | bytes]) -> bytes:
    archive = zipfile.ZipFile(io.BytesIO(document))
    members: dict[str, str | bytes] = {name: archive.read(name) for name in archive.namelist()}
    members["word/_rels/document.xml.rels"] = part_rels
    return zip_archive({**members, **parts})


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


@pytest.mark.parametrize(("part_rels", "parts", "expected"), [
    # an HTML chunk Word imports into the body (altChunk); the image beside it is skipped
    (rels(("aFChunk", "chunk.htm"), ("image", "media/image1.png")),
     {"word/chunk.htm": f"<html><body>身分證 {ID}</body></html>",
      "word/media/image1.png": b"\x89PNG\r\n\x1a\n\x00\x00"}, f"身分證 {ID}"),
    # a tracked change and its author
    (rels(("styles", "styles.xml")),
     {"word/people.xml": f'<w:people {W}><w:person w:author="王小明"/></w:people>'}, "王小明"),
    # a part nothing refers to is read all the same
    (rels(("styles", "styles.xml")),
     {"word/orphan.xml": f"<w:document {W}><w:t>{ID}</w:t></w:document>"}, ID),
])
def test_other_parts_of_a_package_are_read(part_rels: str, parts: dict[str, str | bytes],
                                           expected: str) -> None:
    assert expected in extract_file_text(_with_parts(docx(["主旨"]), part_rels, parts), DOCX_TYPE)


def test_clean_documents_read_nothing_but_their_text() -> None:
    """Styles, themes and settings carry no text: a clean document yields only what its reader shows."""
    assert extract_file_text(docx(["主旨：夜市攤位管理"]), DOCX_TYPE) == "主旨：夜市攤位管理"
    assert extract_file_text(xlsx([["案號", 117]]), XLSX_TYPE) == "工作表1\n\n案號\t117"


# ---------------------------------------------------------------- unreadable: the policy decides

def _zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("_rels/.rels", '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                                  'relationships"><Relationship Id="r" Type="x/officeDocument" '
                                  'Target="word/document.xml"/></Relationships>')
        z.writestr("word/document.xml", "<a>" + " " * (40 * 1024 * 1024) + "</a>")
    return buf.getvalue()


PACKAGE = {"_rels/.rels": rels(("officeDocument", "word/document.xml"))}
DTD = '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'


def _duplicate_parts() -> bytes:
    buf = io.BytesIO(docx(["會議紀錄"]))
    with zipfile.ZipFile(buf, "a") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("word/document.xml", f"<x>{ID}</x>")
    return buf.getvalue()


def _scanned_pdf() -> bytes:
    """A page that is only an image (what a scanner produces): no text layer."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject

    writer = PdfWriter(clone_from=io.BytesIO(raw_pdf("", content=b"q 100 0 0 100 0 0 cm /Im1 Do Q")))
    image = DecodedStreamObject()
    image.set_data(b"\x00" * 3)
    image.update({NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Image"),
                  NameObject("/Width"): NumberObject(1), NameObject("/Height"): NumberObject(1),
                  NameObject("/ColorSpace"): NameObject("/DeviceRGB"),
                  NameObject("/BitsPerComponent"): NumberObject(8)})
    resources = writer.pages[0]["/Resources"]
    resources[NameObject("/XObject")] = DictionaryObject({NameObject("/Im1"): writer._add_object(image)})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(("data", "content_type", "error"), [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "image/png", UnreadableContent),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "application/msword", UnreadableContent),  # .doc
    (raw_pdf(""), "application/pdf", UnreadableContent),  # no text layer at all
    (_scanned_pdf(), "application/pdf", UnreadableContent),  # an image page, whatever the metadata says
    (b"%PDF-1.7\n garbage", "application/pdf", UnreadableContent),
    (raw_pdf(GLYPH_CODES), "application/pdf", UnreadableContent),  # a font without a Unicode map
    (zip_archive({**PACKAGE, "word/document.xml": DTD}), "application/octet-stream", UnreadableContent),
    (zip_archive({**PACKAGE, "word/document.xml": ('<?xml version="1.0" encoding="UTF-16"?>' + DTD)
                  .encode("utf-16")}), DOCX_TYPE, UnreadableContent),
    (zip_archive({"random.bin": "x"}), "application/zip", UnreadableContent),  # a zip that is no document
    (xlsx([["a"]])[:-30], XLSX_TYPE, UnreadableContent),  # truncated
    (_zip_bomb(), DOCX_TYPE, BodyTooLarge),
    (_duplicate_parts(), DOCX_TYPE, UnreadableContent),  # which document.xml does Word read?
    (b"junk before the header\n" + raw_pdf(""), "application/octet-stream", UnreadableContent),  # still a PDF
])
def test_unreadable_files(data: bytes, content_type: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        extract_file_text(data, content_type, None)


def test_shared_string_index_out_of_range_is_unreadable() -> None:
    archive = zipfile.ZipFile(io.BytesIO(xlsx([["王小明"]])))
    members: dict[str, str | bytes] = {name: archive.read(name) for name in archive.namelist()}
    sheet = archive.read("xl/worksheets/sheet1.xml")
    members["xl/worksheets/sheet1.xml"] = sheet.replace(b"<v>0</v>", b"<v>7</v>")
    with pytest.raises(UnreadableContent, match="shared string"):
        extract_file_text(zip_archive(members), XLSX_TYPE)


# ---------------------------------------------------------------- raw upload bodies

def test_multipart_image_is_left_to_ocr_by_its_place() -> None:
    # The proxy reads image files with OCR (guard.image_parts); the reader only names the part.
    body = form(part('form-data; name="note"', "請看附件".encode()),
                part('form-data; name="file"; filename="王小明.png"', b"\x89PNG\r\n\x1a\n\x00\x00",
                     "Content-Type: image/png"))
    parsed = UPLOADS.extract(body, MULTIPART, "/upload")
    assert "請看附件" in texts(parsed)
    assert not any("\x89PNG" in t for t in texts(parsed))
    assert parsed.uninspected == ("files[1](.png)",)


def test_multipart_scanned_pdf_is_left_to_ocr_and_its_other_text_is_read() -> None:
    # A scanned PDF's page images are read by OCR in the proxy; what it holds as text is read here.
    scan = _scanned_pdf()
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(scan)))
    writer.add_metadata({"/Title": f"病歷 {ID}"})
    out = io.BytesIO()
    writer.write(out)
    body = form(part('form-data; name="file"; filename="王小明.pdf"', out.getvalue(),
                     "Content-Type: application/pdf"))
    parsed = UPLOADS.extract(body, MULTIPART, "/upload")
    assert parsed.uninspected == ("files[0](.pdf)",)
    assert any(ID in t for t in texts(parsed))
    with pytest.raises(NotRewritable):
        UPLOADS.rewrite(parsed, [t.replace(ID, "<ID>") for t in parsed.texts])


def test_scanned_pdf_inside_a_document_is_unreadable() -> None:
    from guard.formats.uploads import NoTextLayer

    with pytest.raises(NoTextLayer):
        extract_file_text(_scanned_pdf(), "application/pdf")
    with pytest.raises(UnreadableContent) as e:
        extract_file_text(_scanned_pdf(), "application/pdf", depth=1)
    assert not isinstance(e.value, NoTextLayer)


def test_raw_upload_body() -> None:
    parsed = UPLOADS.extract(raw_pdf(f"Case {ID}"), "application/pdf", "/upload")
    assert texts(parsed) == [f"Case {ID}"]
    with pytest.raises(NotRewritable):
        UPLOADS.rewrite(parsed, ["Case <TW_NATIONAL_ID_1>"])
    parsed = UPLOADS.extract("王小明".encode(), "text/csv", "/upload")
    assert UPLOADS.rewrite(parsed, ["<PERSON_1>"]) == b"<PERSON_1>"


def test_big5_text_file_is_rewritten_in_big5() -> None:
    body = CSV.encode("cp950")
    parsed = UPLOADS.extract(body, "text/csv", "/upload")
    out = UPLOADS.rewrite(parsed, [CSV.replace("王小明", "<PERSON_1>")])
    assert out == CSV.replace("王小明", "<PERSON_1>").encode("cp950")


@pytest.mark.parametrize(("body", "content_type", "in_worker"), [
    (b"--x\r\n", "multipart/form-data; boundary=x", True),
    (raw_pdf("a"), "application/pdf", True),
    (b"\x89PNG\r\n", "", True),  # binary of no declared type: the generic format sniffs it
    (b'{"model": "gpt-4o"}', "application/json", False),
    (b"a=1&b=2", "application/x-www-form-urlencoded", False),
    (b"hello", "text/plain", False),
    (b"", "application/pdf", False),
])
def test_which_bodies_are_read_in_a_worker(body: bytes, content_type: str, in_worker: bool) -> None:
    assert reads_documents(body, content_type) is in_worker


# ---------------------------------------------------------------- files the usual libraries write

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(("name", "expected"), [
    ("python-docx.docx", ["會議紀錄", "主旨：夜市攤位管理辦法修正草案", "密等：機密", "聯絡電話 0912345678",
                          "請補充陳情人身分證 A123456789", "攤位管理辦法修正草案", "117"]),
    ("openpyxl.xlsx", ["名冊", "王小明\t0912345678", "核對身分證 A123456789", "隱藏", "B223456788"]),
    ("python-pptx.pptx", ["簡報標題", "夜市攤位", "講者備註 A123456789"]),
])
def test_files_written_by_the_usual_libraries(name: str, expected: list[str]) -> None:
    text = extract_file_text((DATA / name).read_bytes())
    assert [piece for piece in expected if piece not in text] == []
    assert "<" not in text  # markup of drawings and comment boxes is read as XML, not passed on as text


def test_a_pdf_decompression_bomb_fails_closed_as_too_large() -> None:
    """78 KB on the wire whose content stream inflates past pypdf's 75 MB limit."""
    from pypdf import PdfWriter
    from pypdf.generic import NameObject, StreamObject

    writer = PdfWriter(clone_from=io.BytesIO(raw_pdf("x")))
    stream = StreamObject()
    stream._data = zlib.compress(b" " * 80_000_000, 9)
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    writer.pages[0][NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(BodyTooLarge, match="decompresses past"):
        extract_file_text(out.getvalue(), "application/pdf")
