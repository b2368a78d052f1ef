"""File uploads to AI services (multipart and raw bodies): the text of TXT, CSV, JSON, MD, DOCX, XLSX, PDF.

Office files are read with the standard library (zipfile + xml.etree; documents that declare a DTD are
refused, archive members are size-capped); PDF text comes from pypdf. A file whose text cannot be read
raises :class:`UnreadableContent` and the policy decides (default for external services: block).
Uploaded text files and plain form fields can be rewritten; Office and PDF files cannot (block them).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote
from xml.etree import ElementTree as ET

from guard.formats._reply import json_reply
from guard.formats.base import (
    BodyTooLarge,
    FormatError,
    NativeResponse,
    NotRewritable,
    ParsedRequest,
    Segment,
    UnreadableContent,
    media_type,
    rewrite_parsed,
)
from guard.notice import BlockNotice, short_message

MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024
MAX_PDF_PAGES = 2000

OOXML = "application/vnd.openxmlformats-officedocument."
FILE_MEDIA_TYPES = frozenset({
    "application/pdf", "application/octet-stream", "application/zip", "application/msword",
    "application/vnd.ms-excel", "application/vnd.ms-powerpoint", "text/csv", "text/markdown",
    "text/tab-separated-values", "application/rtf",
})
TEXT_EXTENSIONS = frozenset({"txt", "csv", "tsv", "json", "md", "markdown", "log", "xml", "html", "htm",
                             "yaml", "yml", "py", "js", "ts", "java", "c", "cpp", "sql", "ini"})


def is_upload(mt: str) -> bool:
    """Media types that are file uploads rather than API or chat requests."""
    return (mt.startswith("multipart/") or mt in FILE_MEDIA_TYPES or mt.startswith(OOXML)
            or mt.startswith(("image/", "audio/", "video/")))


# ---------------------------------------------------------------------------------------------- text

def decode_text(data: bytes) -> str:
    """Decode a text file: BOMs, then UTF-8, then Big5 (CP950) as Traditional-Chinese Windows saves CSV."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "strict")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data:
        raise UnreadableContent("binary data where text was expected")
    for enc in ("utf-8", "cp950"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise UnreadableContent("text in an unknown encoding")


# ---------------------------------------------------------------------------------------------- office

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


def _natural(name: str) -> tuple[object, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


class _Archive:
    """A zip archive read with size limits; XML members parsed without DTDs."""

    def __init__(self, data: bytes) -> None:
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, OSError, ValueError):
            raise UnreadableContent("corrupt zip archive") from None
        self.total = 0

    def names(self) -> list[str]:
        return self.zip.namelist()

    def xml(self, name: str) -> ET.Element:
        info = self.zip.getinfo(name)
        if info.flag_bits & 0x1:
            raise UnreadableContent("encrypted document")
        if info.file_size > MAX_MEMBER_BYTES:
            raise BodyTooLarge("document part exceeds the size limit")
        try:
            with self.zip.open(info) as f:
                raw = f.read(MAX_MEMBER_BYTES + 1)
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError):
            raise UnreadableContent("corrupt document part") from None
        self.total += len(raw)
        if len(raw) > MAX_MEMBER_BYTES or self.total > MAX_ARCHIVE_BYTES:
            raise BodyTooLarge("document exceeds the size limit")
        if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
            raise UnreadableContent("document declares a DTD")
        try:
            return ET.fromstring(raw)
        except (ET.ParseError, RecursionError):
            raise UnreadableContent("malformed document XML") from None


def _docx_text(el: ET.Element, out: list[str]) -> None:
    for child in el:
        tag = child.tag
        if tag in (W + "t", W + "delText"):
            out.append(child.text or "")
        elif tag == W + "tab":
            out.append("\t")
        elif tag in (W + "br", W + "cr"):
            out.append("\n")
        elif tag != W + "instrText":
            _docx_text(child, out)
            if tag == W + "p":
                out.append("\n")


def docx_text(data: bytes) -> str:
    """Headers first (classification markings live there), then the body, notes, comments, footers."""
    arc = _Archive(data)
    names = arc.names()
    order = ([n for n in names if re.fullmatch(r"word/header\d*\.xml", n)] + ["word/document.xml"]
             + [n for n in ("word/footnotes.xml", "word/endnotes.xml", "word/comments.xml") if n in names]
             + [n for n in names if re.fullmatch(r"word/footer\d*\.xml", n)])
    out: list[str] = []
    for name in order:
        try:
            _docx_text(arc.xml(name), out)
        except RecursionError:
            raise UnreadableContent("document nesting too deep") from None
        out.append("\n")
    return "".join(out).strip("\n")


def xlsx_text(data: bytes) -> str:
    """Every cell as text, tab-separated per row: shared strings, inline strings, formula strings, numbers."""
    arc = _Archive(data)
    names = arc.names()
    shared: list[str] = []
    if "xl/sharedStrings.xml" in names:
        for si in arc.xml("xl/sharedStrings.xml").iter(S + "si"):
            shared.append("".join(t.text or "" for t in si.iter(S + "t")))
    sheets = sorted((n for n in names if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)), key=_natural)
    out: list[str] = []
    for name in sheets:
        rows = []
        for row in arc.xml(name).iter(S + "row"):
            cells = []
            for c in row.iter(S + "c"):
                kind, v = c.get("t"), c.find(S + "v")
                raw = v.text if v is not None else None
                index = int(raw) if kind == "s" and raw and raw.isdigit() else -1
                if 0 <= index < len(shared):
                    cells.append(shared[index])
                elif kind == "inlineStr":
                    cells.append("".join(t.text or "" for t in c.iter(S + "t")))
                elif v is not None and v.text:
                    cells.append(v.text)
            if cells:
                rows.append("\t".join(cells))
        out.append("\n".join(rows))
    return "\n\n".join(out)


def pptx_text(data: bytes) -> str:
    arc = _Archive(data)
    pattern = re.compile(r"ppt/(slides/slide|notesSlides/notesSlide)\d+\.xml")
    slides = sorted((n for n in arc.names() if pattern.fullmatch(n)), key=_natural)
    out = []
    for name in slides:
        for para in arc.xml(name).iter(A + "p"):
            out.append("".join(t.text or "" for t in para.iter(A + "t")))
    return "\n".join(out)


class NoTextLayer(UnreadableContent):
    """A PDF whose pages are images (a scan): the proxy may read them with OCR (guard.image_parts)."""


def pdf_text(data: bytes) -> str:
    """The text layer of a PDF; a scanned PDF (no text layer) or an encrypted one is unreadable."""
    import pypdf  # only uploads need it; keeps proxy start-up light
    from pypdf.errors import PyPdfError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableContent("encrypted PDF")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise BodyTooLarge("PDF has too many pages")
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError,
            NotImplementedError):
        raise UnreadableContent("unreadable PDF") from None
    if not text.strip():
        raise NoTextLayer("PDF without a text layer (scanned image?)")
    return text


# ---------------------------------------------------------------------------------------------- files

_OFFICE: dict[str, Callable[[bytes], str]] = {
    "word/document.xml": docx_text, "xl/workbook.xml": xlsx_text, "ppt/presentation.xml": pptx_text}


def file_kind(data: bytes, content_type: str = "", filename: str | None = None) -> str:
    """``pdf``, ``docx``, ``xlsx``, ``pptx``, ``text`` or ``binary``: by content, then by declared type."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return "binary"
        for marker, kind in (("word/document.xml", "docx"), ("xl/workbook.xml", "xlsx"),
                             ("ppt/presentation.xml", "pptx")):
            if marker in names:
                return kind
        return "binary"
    mt = media_type(content_type)
    ext = (filename or "").rsplit(".", 1)[-1].lower() if filename and "." in filename else ""
    if mt.startswith(("image/", "audio/", "video/")) or data.startswith(b"\xd0\xcf\x11\xe0"):
        return "binary"
    if mt.startswith("text/") or mt in ("application/json", "application/xml") or ext in TEXT_EXTENSIONS:
        return "text"
    try:
        decode_text(data)
    except (UnreadableContent, UnicodeDecodeError):
        return "binary"
    return "text"


def extract_file_text(data: bytes, content_type: str = "", filename: str | None = None) -> str:
    """The text of one uploaded file, or :class:`UnreadableContent`."""
    kind = file_kind(data, content_type, filename)
    if kind == "pdf":
        return pdf_text(data)
    if kind in ("docx", "xlsx", "pptx"):
        return {"docx": docx_text, "xlsx": xlsx_text, "pptx": pptx_text}[kind](data)
    if kind == "text":
        try:
            return decode_text(data)
        except UnicodeDecodeError:
            raise UnreadableContent("text in an unknown encoding") from None
    raise UnreadableContent(f"{media_type(content_type) or 'binary'} file cannot be read as text")


# ---------------------------------------------------------------------------------------------- multipart

@dataclass(frozen=True)
class Part:
    """One multipart part: its form name, filename, type and where its data sits in the body."""

    name: str
    filename: str | None
    content_type: str
    start: int
    end: int


def _boundary(content_type: str) -> bytes:
    m = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', content_type, re.IGNORECASE)
    if not m:
        raise FormatError("multipart body without a boundary")
    return (m.group(1) or m.group(2)).encode("latin-1")


def _disposition_param(value: str, key: str) -> str | None:
    star = re.search(rf"{key}\*=([^']*)'[^']*'([^;]+)", value, re.IGNORECASE)
    if star:
        return unquote(star.group(2).strip(), encoding=star.group(1) or "utf-8", errors="replace")
    m = re.search(rf'(?:^|;)\s*{key}=(?:"((?:[^"\\]|\\.)*)"|([^;]*))', value, re.IGNORECASE)
    if not m:
        return None
    return m.group(1) if m.group(1) is not None else m.group(2).strip()


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    delim = b"--" + _boundary(content_type)
    pos = body.find(delim)
    if pos < 0:
        raise FormatError("multipart body without its boundary")
    parts: list[Part] = []
    while True:
        pos += len(delim)
        if body[pos:pos + 2] == b"--":
            return parts
        eol = body.find(b"\n", pos)
        if eol < 0:
            raise FormatError("truncated multipart body")
        head_start = eol + 1
        if body[head_start:head_start + 2] == b"\r\n":
            head_end, data_start = head_start, head_start + 2
        else:
            head_end = body.find(b"\r\n\r\n", head_start)
            if head_end < 0:
                raise FormatError("multipart part without a header end")
            data_start = head_end + 4
        data_end = body.find(b"\r\n" + delim, data_start)
        if data_end < 0:
            raise FormatError("unterminated multipart part")
        headers: dict[str, str] = {}
        for line in body[head_start:head_end].decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        parts.append(Part(_disposition_param(disposition, "name") or "",
                          _disposition_param(disposition, "filename"),
                          headers.get("content-type", ""), data_start, data_end))
        pos = data_end + 2


def file_place(index: int, filename: str | None) -> str:
    """Where a file part is, for events: its index and extension, never its name."""
    return f"files[{index}]{_ext(filename)}"


_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


def image_type(data: bytes) -> str | None:
    """The media type of PNG, JPEG, GIF or WebP bytes by their magic number (what OCR reads)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mt for magic, mt in _IMAGE_MAGIC if data.startswith(magic)), None)


def _ext(filename: str | None) -> str:
    return f"(.{filename.rsplit('.', 1)[-1].lower()[:8]})" if filename and "." in filename else ""


def extract_upload(fmt: str, body: bytes, content_type: str) -> ParsedRequest:
    """Segments of an upload: one per plain form field and one per file (its whole text).

    Locations name the field and the file's extension, never the file name (it may hold a person's name).
    """
    mt = media_type(content_type)
    if not body:
        return ParsedRequest(fmt, body, ())
    if not mt.startswith("multipart/"):
        kind = file_kind(body, content_type)
        text = extract_file_text(body, content_type)
        writable = kind == "text"
        return ParsedRequest(fmt, body, (Segment(text, "file"),), (),
                             (lambda new: new[0].encode("utf-8")) if writable else _not_rewritable)
    parts = parse_multipart(body, content_type)
    segments: list[Segment] = []
    spans: list[tuple[Part, bool]] = []
    images: list[str] = []  # image files: read by OCR in the proxy (guard.image_parts), not here
    for i, part in enumerate(parts):
        data = body[part.start:part.end]
        if part.filename is None:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = extract_file_text(data, part.content_type)
            where, writable = f"form[{part.name}]", True
        elif image_type(data) is not None:
            images.append(file_place(i, part.filename))
            continue
        else:
            try:
                text = extract_file_text(data, part.content_type, part.filename)
            except NoTextLayer:  # a scanned PDF: its page images are read like image files
                images.append(file_place(i, part.filename))
                continue
            except UnreadableContent as e:
                raise UnreadableContent(f"files[{i}]{_ext(part.filename)}: {e}") from None
            where = f"files[{i}]{_ext(part.filename)}"
            writable = file_kind(data, part.content_type, part.filename) == "text"
        if text.strip():
            segments.append(Segment(text, where))
            spans.append((part, writable))

    def write(new_texts: Sequence[str]) -> bytes:
        out = bytearray(body)
        for (part, writable), seg, new in sorted(zip(spans, segments, new_texts, strict=True),
                                                 key=lambda t: -t[0][0].start):
            if new == seg.text:
                continue
            if not writable:
                raise NotRewritable(f"{seg.where} cannot be rewritten; block it instead")
            out[part.start:part.end] = new.encode("utf-8")
        return bytes(out)

    return ParsedRequest(fmt, body, tuple(segments), tuple(images), write)


def _not_rewritable(new_texts: Sequence[str]) -> bytes:
    raise NotRewritable("uploaded document cannot be rewritten; block it instead")


class UploadsFormat:
    """Registered for upload endpoints (e.g. ``/v1/files``, attachment APIs) and raw upload hosts."""

    name = "uploads"

    def extract(self, body: bytes, content_type: str, path: str) -> ParsedRequest:
        return extract_upload(self.name, body, content_type)

    def rewrite(self, parsed: ParsedRequest, new_texts: Sequence[str]) -> bytes:
        return rewrite_parsed(parsed, new_texts)

    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        return json_reply(403, {"error": {"message": short_message(notice), "code": notice.reason_code,
                                          "event_id": notice.event_id}})
