"""Documents and compressed data hidden as base64 in a string: found by their file signature and read.

A web app or an API client may put a whole file in a JSON field, a form value or a WebSocket message
(``{"file": "JVBERi0xLjcK..."}``, ``data:application/octet-stream;base64,UEsDBB...``). Such a string
is binary base64, which the generic walk skips as technical data; here it is decoded (standard or
URL-safe alphabet, bare or as a ``data:`` URL of any declared type) and, when the bytes begin with a
known container signature, read as an upload of that file would be:

- PDF and zip packages (DOCX, XLSX, PPTX, OpenDocument) by the document readers, within their limits;
- RTF as the text it is (as an uploaded RTF file is read);
- gzip, zlib, bzip2 and xz inflated (at most :data:`MAX_INFLATED` bytes, the readers' per-part limit),
  and what comes out read again: a document, or text;
- legacy OLE files (``.doc``, ``.xls``) have no reader: :class:`UnreadableContent`.

Anything with a signature that cannot be read raises :class:`UnreadableContent` (or
:class:`BodyTooLarge` for a bomb): the request fails closed. Binary without a known signature is not
a container and stays technical; base64 of text is not binary and is inspected as text elsewhere.

A ``data:`` URL of text (``data:text/plain;base64,…``, CSV, Markdown, JSON: a Responses API
``input_file``) is no container: :func:`text_data_url` decodes it (:func:`text_base64` decodes bare
base64 that a sibling ``mimeType`` types, Gemini's ``inlineData``), and the JSON and form readers put
its text where the string was, so it is inspected like any string and a redaction is written back
into the same URL (:meth:`TextDataUrl.with_text`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from guard.formats import compression
from guard.formats.base import BodyTooLarge, ContentEncodingError, UnreadableContent
from guard.formats.documents import MAX_ARCHIVE_BYTES, MAX_MEMBER_BYTES, MAX_NESTING, READERS

MAX_INFLATED = MAX_MEMBER_BYTES
MAX_TEXT_CHARS = MAX_ARCHIVE_BYTES  # text read from all files of one request: many small bombs add up
MIN_BASE64 = 16  # characters (12 bytes): the shortest gzip or zlib stream of a few words
_PDF_WINDOW = 1024  # PDF readers find ``%PDF-`` anywhere in the first kilobyte
_SNIFF_CHARS = (_PDF_WINDOW + 8) // 3 * 4  # base64 characters that cover that window

_DATA_URL = re.compile(r"^\s*data:[\w.+\-]+/[\w.+\-]+(?:;[\w.+\-]+=[^;,]*)*;base64,", re.IGNORECASE)
_BASE64 = re.compile(r"[A-Za-z0-9+/_\-]+={0,2}")
_WHITESPACE = re.compile(r"\s+")
_URL_SAFE = str.maketrans("-_", "+/")

_MAGIC = (
    (b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"{\\rtf", "rtf"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)
_COMPRESSED = frozenset({"gzip", "zlib", "bzip2", "xz"})


# How base64 of each signature begins. A text body with a string (or form value) that begins so is
# read in an inspection worker, since decoding and reading is CPU work. This runs on the event loop
# for every JSON and form body, so it splits at quotes (C speed) instead of scanning with a regex.
_SIGNATURE_STARTS = (b"JVBERi0", b"UEsDB", b"UEsFB", b"0M8R4KGxGuE", b"e1xydGY", b"H4sI", b"Qlpo",
                     b"/Td6WFo", b"_Td6WFo", b"eJ", b"eNo", b"eAE", b"eF")


def _begins_like_a_file(head: bytes) -> bool:
    head = head.lstrip()
    if head[:5].lower() == b"data:":
        head = head.partition(b",")[2]
    return head.startswith(_SIGNATURE_STARTS)


def may_hold_files(body: bytes, form: bool = False) -> bool:
    """Whether a JSON (or form) body may hold base64 of a file: a cheap over-estimate."""
    if any(_begins_like_a_file(piece[:256]) for piece in body.split(b'"')):
        return True
    values = (field[:1024].partition(b"=")[2].replace(b"+", b" ") for field in body.split(b"&"))
    return form and any(_begins_like_a_file(unquote_to_bytes(value)) for value in values)


def _zlib_header(data: bytes) -> bool:
    """A zlib stream header: deflate method, a 32 KB window at most, and the header's own check."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7 and (data[0] << 8 | data[1]) % 31 == 0


def container_kind(data: bytes) -> str | None:
    """``pdf``, ``zip``, ``ole``, ``rtf``, ``gzip``, ``zlib``, ``bzip2`` or ``xz`` by signature, else None."""
    if b"%PDF-" in data[:_PDF_WINDOW]:
        return "pdf"
    kind = next((k for magic, k in _MAGIC if data.startswith(magic)), None)
    if kind == "bzip2" and data[3:4] not in b"123456789":
        return None
    if kind is None and _zlib_header(data):
        return "zlib"
    return kind


def _payload(value: str) -> str | None:
    """The base64 characters of ``value`` (a bare string or a ``data:`` URL), whitespace removed."""
    data_url = _DATA_URL.match(value)
    payload = value[data_url.end():] if data_url else value
    if len(payload) < MIN_BASE64:
        return None
    runs = payload[:_SNIFF_CHARS + 256].split()
    # Line breaks (MIME's 76-column lines) are allowed; words of a sentence are not base64
    if any(len(run) < MIN_BASE64 for run in runs[:-1]):
        return None
    head = "".join(runs)
    if not _BASE64.fullmatch(head[:_SNIFF_CHARS].rstrip("=")):
        return None
    return payload


def _b64decode(text: str) -> bytes | None:
    text = text.translate(_URL_SAFE)
    try:  # missing padding is forgiven, as most servers do
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def embedded_file(value: str) -> tuple[str, bytes] | None:
    """The container kind and bytes of a string that is base64 of a file with a known signature."""
    payload = _payload(value)
    if payload is None:
        return None
    head = _WHITESPACE.sub("", payload[:_SNIFF_CHARS + 256])[:_SNIFF_CHARS]
    sniffed = _b64decode(head[: len(head) // 4 * 4])
    kind = container_kind(sniffed) if sniffed else None
    if kind is None:
        return None
    data = _b64decode(_WHITESPACE.sub("", payload))
    if data is None:
        return None  # not base64 after all (a stray character past the sniffed head): read as text
    if kind == "zlib" and not _inflates(data):
        return None  # two bytes are a weak signature: a zlib stream is one only when it inflates
    return kind, data


def _inflates(data: bytes) -> bool:
    try:
        compression.decompress(data, "zlib", MAX_INFLATED)
    except BodyTooLarge:
        return True  # a bomb is a container (and refused when read)
    except ContentEncodingError:
        return False
    return True


def read_file(kind: str, data: bytes, depth: int = 0) -> str:
    """The text of an embedded file, or :class:`UnreadableContent` / :class:`BodyTooLarge`."""
    if kind == "pdf":
        return READERS["pdf"](data, depth)
    if kind == "zip":
        return READERS["office"](data, depth)
    if kind == "ole":
        raise UnreadableContent("embedded legacy Office file (.doc/.xls) cannot be read")
    if kind == "rtf":
        return _text(data)
    if kind in _COMPRESSED:
        try:
            inflated = compression.decompress(data, kind, MAX_INFLATED)
        except ContentEncodingError:
            raise UnreadableContent(f"embedded {kind} data is corrupt") from None
        inner = container_kind(inflated)
        if inner is None:
            return _text(inflated)
        if depth >= MAX_NESTING:
            raise UnreadableContent("embedded files nest too deeply")
        return read_file(inner, inflated, depth + 1)
    raise UnreadableContent(f"embedded {kind} file cannot be read")


def _text(data: bytes) -> str:
    from guard.formats.uploads import decode_text  # uploads imports the formats that import this module

    try:
        return decode_text(data)
    except UnreadableContent:
        raise UnreadableContent("embedded data is binary of no known type") from None


@dataclass(frozen=True)
class TextDataUrl:
    """Base64 of text: its head (``data:text/csv;base64,``, empty for bare base64), codec and text."""

    head: str
    codec: str
    text: str

    def with_text(self, text: str) -> str:
        """The same URL holding ``text``: same media type and parameters, same codec."""
        return self.head + base64.b64encode(text.encode(self.codec)).decode("ascii")


# Media types of pictures and sound: read by OCR (images) or refused, never decoded as text.
_NOT_TEXT_MEDIA = ("image/", "audio/", "video/", "font/")


def text_data_url(value: str) -> TextDataUrl | None:
    """The text of a base64 ``data:`` URL whose bytes are text, else None.

    The bytes decide, not the declared type (which may say ``application/octet-stream`` of a CSV) nor
    a declared ``charset`` (``utf-16`` over ASCII bytes would hide from the guard what a service
    reading UTF-8 sees): a file signature makes it a container (:func:`embedded_text` reads it); text
    is what ``uploads.text_codec`` reads, as for an uploaded text file (a BOM, UTF-8, Big5).
    """
    head = _DATA_URL.match(value)
    if head is None:
        return None
    return _text_in_base64(value[:head.end()], value[head.end():], value[head.start():head.end()].strip()[5:])


def text_base64(value: str, media_type: str) -> TextDataUrl | None:
    """Bare base64 that a sibling field types (Gemini ``inlineData``'s ``mimeType``), read as
    :func:`text_data_url` reads a data URL's payload; its ``head`` is empty.

    Only padded base64 of :data:`MIN_BASE64` characters or more: a short word under such a key is
    read as the word it is, not as the bytes it would decode to.
    """
    payload = _WHITESPACE.sub("", value)
    if len(payload) < MIN_BASE64 or len(payload) % 4 or not _BASE64.fullmatch(payload.rstrip("=")):
        return None
    return _text_in_base64("", value, media_type)


def _text_in_base64(head: str, payload: str, media_type: str) -> TextDataUrl | None:
    from guard.formats.uploads import text_codec  # uploads imports the formats that import this module

    if media_type.lower().startswith(_NOT_TEXT_MEDIA):
        return None
    data = _b64decode(_WHITESPACE.sub("", payload))
    if data is None or container_kind(data) is not None:
        return None
    try:
        codec = text_codec(data)
        return TextDataUrl(head, codec, data.decode(codec))
    except (UnreadableContent, UnicodeDecodeError):
        return None


def embedded_text(value: str) -> tuple[str, str] | None:
    """(kind, text) of a string that is base64 of a document or compressed data, else None."""
    found = embedded_file(value)
    if found is None:
        return None
    kind, data = found
    return kind, read_file(kind, data)
