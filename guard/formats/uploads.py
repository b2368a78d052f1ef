"""File uploads to AI services (multipart and raw bodies): every part, and the text of each file.

Multipart bodies are split by :mod:`guard.formats.multipart`; Office and PDF files are read by
:mod:`guard.formats.documents`. A file whose text cannot be read raises :class:`UnreadableContent`
and the policy decides (default for external services: block). Text files, form fields, part headers,
preamble and epilogue can be rewritten in place; Office and PDF files cannot (they are blocked instead).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from guard.formats import multipart
from guard.formats._reply import json_reply
from guard.formats.base import (
    NativeResponse,
    NotRewritable,
    ParsedRequest,
    Segment,
    UnreadableContent,
    media_type,
    rewrite_parsed,
)
from guard.formats.documents import MAX_PDF_PAGES, READERS, NoTextLayer
from guard.formats.multipart import Part, Span
from guard.notice import BlockNotice, short_message

__all__ = ["MAX_PDF_PAGES", "NoTextLayer", "extract_upload", "file_place", "image_type"]

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

def text_codec(data: bytes) -> str:
    """A text file's codec: BOMs, then UTF-8, then Big5 (CP950) as Traditional-Chinese Windows saves CSV."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in data:
        raise UnreadableContent("binary data where text was expected")
    for codec in ("utf-8", "cp950"):
        try:
            data.decode(codec)
        except UnicodeDecodeError:
            continue
        return codec
    raise UnreadableContent("text in an unknown encoding")


def decode_text(data: bytes) -> str:
    try:
        return data.decode(text_codec(data))
    except UnicodeDecodeError:
        raise UnreadableContent("text in an unknown encoding") from None


# ---------------------------------------------------------------------------------------------- files

def file_kind(data: bytes, content_type: str = "", filename: str | None = None) -> str:
    """``pdf``, ``office`` (a zip package: DOCX, XLSX, PPTX, OpenDocument), ``text`` or ``binary``:
    by content first (a declared type or extension can lie), then by the declared type."""
    if b"%PDF-" in data[:1024]:  # PDF readers look for the header in the first kilobyte
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "office"  # the reader refuses a zip that is not an Office package
    mt = media_type(content_type)
    ext = filename.rsplit(".", 1)[-1].lower() if filename and "." in filename else ""
    if mt.startswith(("image/", "audio/", "video/")) or data.startswith(b"\xd0\xcf\x11\xe0"):
        return "binary"
    if mt.startswith("text/") or mt in ("application/json", "application/xml") or ext in TEXT_EXTENSIONS:
        return "text"
    try:
        decode_text(data)
    except (UnreadableContent, UnicodeDecodeError):
        return "binary"
    return "text"


def extract_file_text(data: bytes, content_type: str = "", filename: str | None = None,
                      depth: int = 0) -> str:
    """The text of one uploaded file, or :class:`UnreadableContent`."""
    kind = file_kind(data, content_type, filename)
    if kind in READERS:
        return READERS[kind](data, depth)
    if kind == "text":
        return decode_text(data)
    raise UnreadableContent(f"{media_type(content_type) or 'binary'} file cannot be read as text")


# ---------------------------------------------------------------------------------------------- multipart

@dataclass(frozen=True)
class _Place:
    """Where a segment's text sits in the body and its codec; no span for text that cannot be
    written back (a document, a decoded ``filename*``)."""

    span: Span | None
    codec: str = "utf-8"


@dataclass(frozen=True)
class _Splice:
    """Writes new texts over their places in the body (a plain object, so a worker can return it)."""

    body: bytes
    segments: tuple[Segment, ...]
    places: tuple[_Place, ...]

    def __call__(self, new_texts: Sequence[str]) -> bytes:
        edits = []
        for segment, place, new in zip(self.segments, self.places, new_texts, strict=True):
            if new == segment.text:
                continue
            if place.span is None:
                raise NotRewritable(f"{segment.where} cannot be rewritten; block it instead")
            try:
                edits.append((place.span, new.encode(place.codec)))
            except UnicodeEncodeError:
                raise NotRewritable(f"{segment.where} cannot hold the rewritten text") from None
        out = bytearray(self.body)
        for span, data in sorted(edits, key=lambda e: -e[0].start):
            out[span.start:span.end] = data
        return bytes(out)


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


def _utf8(body: bytes, span: Span, where: str) -> str:
    try:
        return body[span.start:span.end].decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableContent(f"{where} is not UTF-8 text") from None


def _file(data: bytes, span: Span | None, where: str, content_type: str = "",
          filename: str | None = None) -> tuple[Segment, _Place]:
    """One file's text; a text file is written back in its own codec, a document not at all."""
    try:
        text = extract_file_text(data, content_type, filename)
    except NoTextLayer as e:
        raise NoTextLayer(f"{where}: {e}", e.text) from None
    except UnreadableContent as e:
        raise UnreadableContent(f"{where}: {e}") from None
    text_file = span is not None and file_kind(data, content_type, filename) == "text"
    return Segment(text, where), _Place(span if text_file else None, text_codec(data) if text_file else "")


def _part_segments(body: bytes, index: int, part: Part,
                   images: list[str]) -> Iterator[tuple[Segment, _Place]]:
    """A part's headers (field name, file name and every other header), its names when the headers
    encode them (``filename*``, escapes), and its data.

    An image file, and a PDF with scanned pages, is named in ``images`` rather than read here: the
    proxy reads them with OCR (guard.image_parts). A scanned PDF's other text is read here.
    """
    where = file_place(index, part.filename) if part.filename is not None else f"form[{index}]"
    headers = _utf8(body, part.headers, f"{where} headers")
    if headers.strip():
        yield Segment(headers, f"{where}.headers"), _Place(part.headers)
    for label, value in (("name", part.name), ("filename", part.filename)):
        if value and value not in headers:
            yield Segment(value, f"{where}.{label}"), _Place(None)
    if not part.payload.strip():
        return
    if part.filename is None and not part.content_type and not part.encoded:
        try:  # a plain form field
            yield Segment(part.payload.decode("utf-8"), where), _Place(part.data)
            return
        except UnicodeDecodeError:
            pass
    if part.filename is not None and image_type(part.payload) is not None:
        images.append(where)
        return
    span = None if part.encoded else part.data
    try:
        found = _file(part.payload, span, where, part.content_type, part.filename)
    except NoTextLayer as e:  # a scanned PDF: its page images are read like image files
        if part.filename is None:
            raise
        images.append(where)
        found = Segment(e.text, where), _Place(None)
    yield found


RAW_FILE = "file"  # where a raw body's file is, for events and for guard.image_parts


def _raw_file(body: bytes, content_type: str, images: list[str]) -> list[tuple[Segment, _Place]]:
    """A raw body's file (a web app PUTting the bytes): its text, or, for an image or a PDF of scanned
    pages, named in ``images`` for OCR (with the scanned PDF's other text)."""
    if image_type(body) is not None:
        images.append(RAW_FILE)
        return []
    try:
        return [_file(body, Span(0, len(body)), RAW_FILE, content_type)]
    except NoTextLayer as e:
        images.append(RAW_FILE)
        return [(Segment(e.text, RAW_FILE), _Place(None))]


def extract_upload(fmt: str, body: bytes, content_type: str) -> ParsedRequest:
    """Segments of an upload: for multipart, the preamble, every part's headers, names and data, and
    the epilogue; for a raw body, the file's text.

    Locations name the part and the file's extension, never the file name (it may hold a person's name).
    """
    if not body:
        return ParsedRequest(fmt, body, ())
    found: list[tuple[Segment, _Place]] = []
    images: list[str] = []  # image files and scanned PDFs: read by OCR in the proxy, not here
    if not media_type(content_type).startswith("multipart/"):
        found += _raw_file(body, content_type, images)
    else:
        form = multipart.parse(body, content_type)
        # The boundary travels on every delimiter line; it cannot be rewritten without the header.
        found.append((Segment(multipart.boundary_of(content_type).decode("ascii"), "boundary"), _Place(None)))
        if body[form.preamble.start:form.preamble.end].strip():
            found.append((Segment(_utf8(body, form.preamble, "preamble"), "preamble"), _Place(form.preamble)))
        for i, part in enumerate(form.parts):
            found.extend(_part_segments(body, i, part, images))
        if body[form.epilogue.start:form.epilogue.end].strip():
            found.append((Segment(_utf8(body, form.epilogue, "epilogue"), "epilogue"), _Place(form.epilogue)))
    found = [(segment, place) for segment, place in found if segment.text.strip()]
    segments = tuple(segment for segment, _ in found)
    places = tuple(p for _, p in found)
    return ParsedRequest(fmt, body, segments, tuple(images), _Splice(body, segments, places))


def reads_documents(body: bytes, content_type: str) -> bool:
    """Whether extracting ``body`` goes through the file readers (uploads, and binary bodies the generic
    format sniffs): such extraction runs in an inspection worker, never on the proxy's event loop."""
    if not body:
        return False
    mt = media_type(content_type)
    if is_upload(mt):
        return True
    textual = mt.startswith("text/") or mt.endswith(("json", "x-www-form-urlencoded"))
    if textual or body.lstrip()[:1] in b'{["':
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


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
