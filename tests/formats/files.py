"""Real upload files built by the tests: Office packages (zip + XML, with relationships) and PDFs (pypdf).

Each builder writes what Word, Excel or a PDF writer writes, so the readers see the shapes that
applications produce; keyword arguments put text in the less obvious places an attacker (or a careless
user) would: document properties, comments, field codes, alt text, defined names, PDF metadata, ...
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

from pypdf import PdfWriter
from pypdf.annotations import Text
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject, TextStringObject

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
S_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
P_NS = "http://schemas.openxmlformats.org/presentationml/2006/main"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
WP_NS = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
CORE = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX_TYPE = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


def zip_archive(members: Mapping[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in members.items():
            z.writestr(name, text)
    return buf.getvalue()


def rels(*targets: tuple[str, str] | tuple[str, str, str]) -> str:
    """A relationships part: (type, target) or (type, target, "External")."""
    items = "".join(
        f'<Relationship Id="rId{i}" Type="{t[0] if t[0].startswith("http") else R + t[0]}" Target="{t[1]}"'
        + (' TargetMode="External"' if len(t) > 2 else "") + "/>"
        for i, t in enumerate(targets, 1))
    return f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{REL_NS}">{items}</Relationships>'


def _core(title: str, creator: str) -> str:
    return ('<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
            ' xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f'<dc:title>{title}</dc:title><dc:creator>{creator}</dc:creator></cp:coreProperties>')


def _paragraphs(paragraphs: list[str]) -> str:
    """Each paragraph split over two runs, as Word does after an edit."""
    return "".join(f'<w:p><w:r><w:t xml:space="preserve">{p[:2]}</w:t></w:r>'
                   f'<w:r><w:t>{p[2:]}</w:t></w:r></w:p>' for p in paragraphs)


def _wml(root: str, inner: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<w:{root} xmlns:w="{W_NS}" xmlns:wp="{WP_NS}" xmlns:a="{A_NS}">{inner}</w:{root}>')


def docx(body_paragraphs: list[str], header: str = "", *, main: str = "word/document.xml",
         decoy: str = "", title: str = "", author: str = "", custom: tuple[str, str] | None = None,
         comment: str = "", footer: str = "", footnote: str = "", field_code: str = "",
         alt_text: str = "", hyperlink: str = "") -> bytes:
    """A DOCX as Word writes it: package relationships to the main part (``main``), whose own
    relationships reach headers, footers, notes and comments; ``decoy`` goes to a ``word/document.xml``
    that nothing refers to (when ``main`` is elsewhere)."""
    body = _paragraphs(body_paragraphs)
    if field_code:  # a complex field: the code Word evaluates, then the shown result
        body += ('<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
                 f'<w:r><w:instrText xml:space="preserve"> {field_code} </w:instrText></w:r>'
                 '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>1</w:t></w:r>'
                 '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>')
    if alt_text:
        body += (f'<w:p><w:r><w:drawing><wp:inline><wp:docPr id="1" name="圖片 1" descr="{alt_text}"/>'
                 '</wp:inline></w:drawing></w:r></w:p>')
    folder = main.rsplit("/", 1)[0]
    members: dict[str, str | bytes] = {"[Content_Types].xml": "<Types/>"}
    package = [("officeDocument", main)]
    part_rels: list[tuple[str, str] | tuple[str, str, str]] = [("styles", "styles.xml")]
    members[f"{folder}/styles.xml"] = _wml("styles", '<w:style w:styleId="Normal">'
                                                     '<w:name w:val="Normal"/></w:style>')
    for kind, text, root in (("header", header, "hdr"), ("footer", footer, "ftr"),
                             ("comments", comment, "comments"), ("footnotes", footnote, "footnotes")):
        if text:
            wrapped = _paragraphs([text])
            if root == "comments":
                wrapped = f'<w:comment w:id="0" w:author="審核">{wrapped}</w:comment>'
            elif root == "footnotes":
                wrapped = f'<w:footnote w:id="1">{wrapped}</w:footnote>'
            name = f"{kind}1.xml" if kind in ("header", "footer") else f"{kind}.xml"
            members[f"{folder}/{name}"] = _wml(root, wrapped)
            part_rels.append((kind, name))
    if hyperlink:
        part_rels.append(("hyperlink", hyperlink, "External"))
    members[main] = _wml("document", f"<w:body>{body}</w:body>")
    members[f"{folder}/_rels/{main.rsplit('/', 1)[1]}.rels"] = rels(*part_rels)
    if title or author:
        members["docProps/core.xml"] = _core(title, author)
        package.append((CORE, "docProps/core.xml"))
    if custom:
        members["docProps/custom.xml"] = (
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"'
            ' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
            f'<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="2" name="{custom[0]}">'
            f'<vt:lpwstr>{custom[1]}</vt:lpwstr></property></Properties>')
        package.append(("custom-properties", "docProps/custom.xml"))
    if decoy:
        members["word/document.xml"] = _wml("document", f"<w:body>{_paragraphs([decoy])}</w:body>")
    members["_rels/.rels"] = rels(*package)
    return zip_archive(members)


def xlsx(rows: list[list[str | int]], *, sheet_file: str = "sheet1.xml", sheet_name: str = "工作表1",
         defined_name: tuple[str, str] | None = None, comment: str = "", inline: bool = False) -> bytes:
    """An XLSX as Excel writes it: strings in the shared-string table (``inline``: in the cells),
    the sheet reached through the workbook's relationships under any file name."""
    shared: list[str] = []
    cells = []
    for r, row in enumerate(rows, 1):
        out = []
        for c, value in enumerate(row):
            ref = f"{chr(65 + c)}{r}"
            if isinstance(value, int):
                out.append(f'<c r="{ref}"><v>{value}</v></c>')
            elif inline:
                out.append(f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>')
            else:
                shared.append(value)
                out.append(f'<c r="{ref}" t="s"><v>{len(shared) - 1}</v></c>')
        cells.append(f'<row r="{r}">{"".join(out)}</row>')
    names = (f'<definedNames><definedName name="{defined_name[0]}">{defined_name[1]}</definedName>'
             "</definedNames>" if defined_name else "")
    sheet_rels: list[tuple[str, str] | tuple[str, str, str]] = []
    members: dict[str, str | bytes] = {
        "[Content_Types].xml": "<Types/>",
        "_rels/.rels": rels(("officeDocument", "xl/workbook.xml")),
        "xl/workbook.xml": f'<workbook xmlns="{S_NS}" xmlns:r="{R[:-1]}"><sheets>'
                           f'<sheet name="{sheet_name}" sheetId="1" r:id="rId1"/></sheets>{names}</workbook>',
        "xl/_rels/workbook.xml.rels": rels(("worksheet", f"worksheets/{sheet_file}"),
                                           ("sharedStrings", "sharedStrings.xml")),
        "xl/sharedStrings.xml": f'<sst xmlns="{S_NS}">' + "".join(f"<si><t>{s}</t></si>" for s in shared)
                                + "</sst>",
        f"xl/worksheets/{sheet_file}": f'<worksheet xmlns="{S_NS}"><sheetData>{"".join(cells)}</sheetData>'
                                       "</worksheet>",
    }
    if comment:
        members["xl/comments1.xml"] = (f'<comments xmlns="{S_NS}"><authors><author>審核</author></authors>'
                                       '<commentList><comment ref="A1" authorId="0"><text><r>'
                                       f"<t>{comment}</t></r></text></comment></commentList></comments>")
        sheet_rels.append(("comments", "../comments1.xml"))
    if sheet_rels:
        members[f"xl/worksheets/_rels/{sheet_file}.rels"] = rels(*sheet_rels)
    return zip_archive(members)


def pptx(slide_texts: list[str], notes: str = "") -> bytes:
    """A PPTX: presentation → slides (DrawingML text), and a notes page."""
    members: dict[str, str | bytes] = {
        "[Content_Types].xml": "<Types/>",
        "_rels/.rels": rels(("officeDocument", "ppt/presentation.xml")),
        "ppt/presentation.xml": f'<p:presentation xmlns:p="{P_NS}"/>',
        "ppt/_rels/presentation.xml.rels": rels(*[("slide", f"slides/slide{i}.xml")
                                                  for i in range(1, len(slide_texts) + 1)]),
    }
    for i, text in enumerate(slide_texts, 1):
        members[f"ppt/slides/slide{i}.xml"] = (f'<p:sld xmlns:p="{P_NS}" xmlns:a="{A_NS}"><p:cSld><p:spTree>'
                                               f"<p:sp><p:txBody><a:p><a:r><a:t>{text}</a:t></a:r></a:p>"
                                               "</p:txBody></p:sp></p:spTree></p:cSld></p:sld>")
    if notes:
        members["ppt/slides/_rels/slide1.xml.rels"] = rels(("notesSlide", "../notesSlides/notesSlide1.xml"))
        members["ppt/notesSlides/notesSlide1.xml"] = (f'<p:notes xmlns:p="{P_NS}" xmlns:a="{A_NS}"><a:p><a:r>'
                                                      f"<a:t>{notes}</a:t></a:r></a:p></p:notes>")
    return zip_archive(members)


BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"


def part(disposition: str, data: bytes, *headers: str, boundary: str = BOUNDARY) -> bytes:
    """One multipart part as browsers write it: delimiter, Content-Disposition, more headers, data."""
    lines = [f"--{boundary}", f"Content-Disposition: {disposition}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data + b"\r\n"


def form(*parts: bytes, boundary: str = BOUNDARY, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    """A multipart/form-data body of ``parts``, closed, with an optional preamble and epilogue."""
    return preamble + b"".join(parts) + f"--{boundary}--\r\n".encode() + epilogue


def raw_pdf(text: str, content: bytes | None = None) -> bytes:
    """A one-page PDF with a Helvetica text layer (offsets computed so the xref table is exact);
    ``content`` replaces the page's content stream."""
    stream = content if content is not None else f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
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


def pdf(text: str, *, info: Mapping[str, str] | None = None, xmp: str = "", annotation: str = "",
        field: tuple[str, str] | None = None, outline: str = "", attachment: tuple[str, bytes] | None = None,
        link: str = "") -> bytes:
    """A PDF with ``text`` on its page, and text in metadata, XMP, a note, a form field, the outline,
    an attached file or a link, written with pypdf as PDF tools write them."""
    writer = PdfWriter(clone_from=io.BytesIO(raw_pdf(text)))
    if info:
        writer.add_metadata(dict(info))
    if xmp:
        writer.xmp_metadata = (
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator><rdf:Seq>'
            f"<rdf:li>{xmp}</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>").encode()
    if annotation:
        writer.add_annotation(0, Text(rect=(50, 550, 200, 650), text=annotation))
    if link:
        writer.add_annotation(0, DictionaryObject({
            NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Link"),
            NameObject("/Rect"): ArrayObject([NumberObject(n) for n in (10, 10, 90, 30)]),
            NameObject("/A"): DictionaryObject({NameObject("/S"): NameObject("/URI"),
                                                NameObject("/URI"): TextStringObject(link)})}))
    if field:
        widget = writer.add_annotation(0, DictionaryObject({
            NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Widget"),
            NameObject("/FT"): NameObject("/Tx"), NameObject("/T"): TextStringObject(field[0]),
            NameObject("/V"): TextStringObject(field[1]),
            NameObject("/Rect"): ArrayObject([NumberObject(n) for n in (100, 100, 300, 120)])}))
        fields = ArrayObject([widget.indirect_reference])
        writer.root_object[NameObject("/AcroForm")] = DictionaryObject({NameObject("/Fields"): fields})
    if outline:
        writer.add_outline_item(outline, 0)
    if attachment:
        writer.add_attachment(*attachment)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
