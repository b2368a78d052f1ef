"""Images in requests (inline in JSON, uploaded files): find them, add their OCR text, write masks back.

The shapes the AI APIs use, found wherever they sit in the document (no format knowledge needed):

- a ``data:image/...;base64,...`` URL string (OpenAI ``image_url.url``, Responses ``input_image``);
- an object with base64 ``data`` and an image ``media_type`` / ``mimeType`` / ``mime_type``
  (Anthropic ``source``, Gemini ``inlineData`` / ``inline_data``);
- a bare base64 string that decodes to an image (by its magic number), in any JSON field: a web
  app's own upload shape (``{"file": "iVBORw0KGgo..."}``);
- an image file in a multipart upload (by its magic number, whatever type the client declared);
- a raw body that is an image or a PDF of scanned pages (a web app PUTting the file's bytes).

``with_images`` appends one segment per image (its OCR text) to a parsed request, so the engine
judges the images with the texts in one verdict; the request's writer writes the text segments as before and,
for an image whose text was redacted, the image with the redacted characters blacked out. An image
URL that is not inline (``https://...``) is left uninspected: the unreadable-content policy applies.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from guard.formats import multipart, uploads
from guard.formats._tree import Path, describe, encode_json, loads, put
from guard.formats.base import (
    BodyTooLarge,
    NotRewritable,
    ParsedRequest,
    Segment,
    UnreadableContent,
    media_type,
)
from guard.images import IMAGE_TYPES, OcrText, mask, thumbnail
from guard.verdict import Finding

_DATA_URL = re.compile(r"^data:(image/[a-z0-9.+-]+);base64,(.*)$", re.IGNORECASE | re.DOTALL)
# Any other base64 data URL (application/octet-stream, a parameter before ;base64): read when its
# bytes are an image, whatever it declares; the masked image goes back under its real type.
_OTHER_DATA_URL = re.compile(r"^data:[\w.+\-]+/[\w.+\-]+(?:;[\w.+\-]+=[\w.+\-]+)*;base64,(.*)$",
                             re.IGNORECASE | re.DOTALL)
MIME_KEYS = ("media_type", "mimeType", "mime_type")


@dataclass(frozen=True)
class InlineImage:
    """One base64 image in the document: where it is, its type and its bytes."""

    path: Path
    where: str
    media_type: str
    data: bytes
    data_url: bool  # written back as a data URL (True) or as bare base64 (False)
    part: int | None = None  # a multipart upload's file part (then ``path`` is empty)
    maskable: bool = True    # False for a scanned PDF's page image: the PDF cannot be rewritten
    whole_body: bool = False  # the request body is the image (a raw upload)


def _decode(value: str) -> bytes | None:
    compact = "".join(value.split())
    try:  # missing padding is forgiven, as most servers do
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=False)
    except (binascii.Error, ValueError):
        return None


# How base64 of PNG, JPEG, GIF and WebP begins: only such strings are decoded to check the magic number.
_IMAGE_BASE64_STARTS = ("iVBORw0KGgo", "/9j/", "R0lGOD", "UklGR")
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/\s]+={0,2}\s*")
MIN_BARE_IMAGE = 64  # characters: no image file is shorter


def bare_image_type(value: str) -> str | None:
    """The media type of a bare base64 string that decodes to an image, else None."""
    if len(value) < MIN_BARE_IMAGE or not value.lstrip().startswith(_IMAGE_BASE64_STARTS):
        return None
    head = _decode("".join(value[:96].split())[:64])
    kind = uploads.image_type(head) if head else None
    return kind if kind is not None and _BASE64_TEXT.fullmatch(value) else None


def find_images(node: Any, path: Path = ()) -> list[tuple[Path, str, str, bool]]:
    """(path, media type, base64 text, is a data URL) of every inline image, in document order."""
    out: list[tuple[Path, str, str, bool]] = []
    if isinstance(node, dict):
        mime = next((node[k] for k in MIME_KEYS if isinstance(node.get(k), str)), "").lower()
        inline = mime in IMAGE_TYPES and isinstance(node.get("data"), str)
        if inline:
            out.append(((*path, "data"), mime, node["data"], False))
        for key, child in node.items():
            if not (inline and key == "data"):
                out += find_images(child, (*path, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            out += find_images(child, (*path, i))
    elif isinstance(node, str):
        m = _DATA_URL.match(node)
        if m and m.group(1).lower() in IMAGE_TYPES:
            out.append((path, m.group(1).lower(), m.group(2), True))
        elif (other := _OTHER_DATA_URL.match(node)) and (kind := bare_image_type(other.group(1))):
            out.append((path, kind, other.group(1), True))
        elif (kind := bare_image_type(node)) is not None:
            out.append((path, kind, node, False))
    return out


def _typed(root: Any, path: Path) -> bool:
    """Whether the image at ``path`` sits beside a media type key (Anthropic, Gemini)."""
    node = root
    for step in path[:-1]:
        node = node[step]
    return isinstance(node, dict) and any(isinstance(node.get(k), str) for k in MIME_KEYS)


def images_in_body(body: bytes) -> list[InlineImage]:
    """The inline images of a JSON body (none for other bodies).

    A typed image (data URL, media type) whose base64 does not decode stays where the format put
    it, uninspected (the service's unreadable rule applies); a bare one that looked like an image
    but does not decode is unreadable content: no format knows it is there.
    """
    if body.lstrip()[:1] not in (b"{", b"["):
        return []
    try:
        root = loads(body)
    except Exception:  # not JSON after all: the format's own reader reports it
        return []
    out = []
    for path, mime, encoded, data_url in find_images(root):
        data = _decode(encoded)
        if data is not None:
            out.append(InlineImage(path, describe(root, path), mime, data, data_url))
        elif not data_url and not _typed(root, path):
            raise UnreadableContent(f"{describe(root, path)}: base64 image data does not decode")
    return out


# Each image costs a worker about 2 s; a request with more than this is refused as unreadable
# rather than queueing minutes of OCR (a chat rarely carries more than a few screenshots).
MAX_IMAGES_PER_REQUEST = 20


def images_in_request(body: bytes, content_type: str, uninspected: Sequence[str]) -> list[InlineImage]:
    """Inline images of a JSON body, or the image files and scanned PDFs of a multipart upload that
    its reader left ``uninspected``; more than ``MAX_IMAGES_PER_REQUEST`` is unreadable content."""
    images = _images(body, content_type, uninspected)
    if len(images) > MAX_IMAGES_PER_REQUEST:
        raise UnreadableContent(f"{len(images)} images in one request (at most {MAX_IMAGES_PER_REQUEST})")
    return images


def _images(body: bytes, content_type: str, uninspected: Sequence[str]) -> list[InlineImage]:
    if not media_type(content_type).startswith("multipart/"):
        if uploads.RAW_FILE in uninspected:  # the reader found the body is an image or a scanned PDF
            return _raw_images(body)
        return images_in_body(body)
    out = []
    for i, part in enumerate(multipart.parse(body, content_type).parts):
        data = part.payload  # as a server decodes it (a Content-Transfer-Encoding applied)
        kind = uploads.image_type(data)
        place = uploads.file_place(i, part.filename)
        if part.filename is None or place not in uninspected:
            continue
        if kind is not None:
            # An encoded part (base64, quoted-printable) is not masked in place: it is blocked instead.
            out.append(InlineImage((), place, kind, data, False, part=i, maskable=not part.encoded))
        elif data.startswith(b"%PDF-"):
            out += [InlineImage((), f"{place}[page {page}]", "image/png", image, False, part=i,
                                maskable=False)
                    for page, image in scanned_pages(data)]
    return out


def _raw_images(body: bytes) -> list[InlineImage]:
    """The raw body as an image (masked in place), or the page images of a scanned PDF (not)."""
    place = uploads.RAW_FILE
    kind = uploads.image_type(body)
    if kind is not None:
        return [InlineImage((), place, kind, body, False, whole_body=True)]
    return [InlineImage((), f"{place}[page {page}]", "image/png", image, False, maskable=False)
            for page, image in scanned_pages(body)]


MAX_IMAGES_PER_PDF = 50


def scanned_pages(data: bytes) -> list[tuple[int, bytes]]:
    """(page number, PNG bytes) of the images on each page of a PDF without a text layer.

    A page image pypdf cannot decode makes the whole PDF unreadable (nothing is skipped).
    """
    import pypdf
    from pypdf.errors import PyPdfError

    out: list[tuple[int, bytes]] = []
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if len(reader.pages) > uploads.MAX_PDF_PAGES:
            raise BodyTooLarge("PDF has too many pages")
        for number, page in enumerate(reader.pages, 1):
            for picture in page.images:
                if picture.image is None:
                    raise UnreadableContent("scanned PDF: a page image cannot be decoded")
                buffer = io.BytesIO()
                picture.image.save(buffer, format="PNG")
                out.append((number, buffer.getvalue()))
                if len(out) > MAX_IMAGES_PER_PDF:
                    raise BodyTooLarge("scanned PDF has too many page images")
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as e:
        raise UnreadableContent(f"scanned PDF: pages cannot be read ({e.__class__.__name__})") from None
    return out


def _put_parts(body: bytes, content_type: str, replacements: dict[int, bytes]) -> bytes:
    """``body`` with the data of the given multipart parts replaced."""
    parts = multipart.parse(body, content_type).parts
    out = bytearray(body)
    for i in sorted(replacements, key=lambda k: -parts[k].data.start):
        out[parts[i].data.start:parts[i].data.end] = replacements[i]
    return bytes(out)


def covers(images: Sequence[InlineImage], place: str) -> bool:
    """True when an uninspected place (``messages[0].content[1]``) is one of these images or holds one."""
    return any(i.where == place or i.where.startswith(place + ".") or i.where.startswith(place + "[")
               for i in images)


def masked_images(images: Sequence[InlineImage], ocr: Sequence[OcrText], findings: Sequence[Finding],
                  first_image: int, replaced: Callable[[Finding], bool]) -> list[bytes | None]:
    """Each image with the characters of its replaced findings blacked out (None: nothing to hide).

    ``findings`` are a verdict's over the request's texts followed by the images' OCR texts, the
    first image's being segment ``first_image``; ``replaced`` tells which ones the policy replaces
    (redact, or block).
    """
    out: list[bytes | None] = []
    for k, (image, text) in enumerate(zip(images, ocr, strict=True)):
        spans = [(f.start, f.end) for f in findings if f.segment == first_image + k and replaced(f)]
        out.append(mask(image.data, text, spans) if spans and image.maskable else None)
    return out


def thumbnails(images: Sequence[InlineImage], ocr: Sequence[OcrText], findings: Sequence[Finding],
               first_image: int) -> tuple[bytes, ...]:
    """The review console's view of each image: small, with every value found in it blacked out
    (whatever the policy does with it: a reviewer sees where, never what)."""
    return tuple(
        thumbnail(image.data, text, [(f.start, f.end) for f in findings if f.segment == first_image + k])
        for k, (image, text) in enumerate(zip(images, ocr, strict=True)))


def replaced_in_images(findings: Sequence[Finding], first_image: int, count: int,
                       replaced: Callable[[Finding], bool]) -> bool:
    """Whether the policy replaces a value read in one of ``count`` images (their segments follow
    the texts from ``first_image``): under ``images.personal_data: block`` such a request is blocked."""
    return any(first_image <= f.segment < first_image + count and replaced(f) for f in findings)


def with_images(parsed: ParsedRequest, images: Sequence[InlineImage], ocr: Sequence[OcrText],
                masked: Sequence[bytes | None], content_type: str = "") -> ParsedRequest:
    """``parsed`` plus one segment per image (its OCR text), written back with ``masked`` images.

    The engine replaces values in the image segments like in any text; the writer puts the masked
    image where the original was for each image whose text changed.
    """
    first_image = len(parsed.segments)
    first_extra = first_image + len(images)
    segments = parsed.segments + tuple(
        Segment(o.text, f"{img.where} (image text)") for img, o in zip(images, ocr, strict=True))
    text_writer = parsed.writer

    def write(new_texts: Sequence[str]) -> bytes:
        # [text segments][image segments][extra]: the request's own writer gets its texts and extra.
        if len(new_texts) == first_extra:  # the segments only: extra as it was
            new_texts = [*new_texts, *(s.text for s in parsed.extra)]
        texts = [*new_texts[:first_image], *new_texts[first_extra:]]
        image_texts = new_texts[first_image:first_extra]
        changed = any(new != seg.text for new, seg in zip(texts, parsed.all_segments, strict=True))
        if changed and text_writer is None:
            raise NotRewritable(f"{parsed.format} request cannot be rewritten")
        body = text_writer(texts) if changed and text_writer is not None else parsed.body
        replacements: dict[int, bytes] = {}
        in_json = not any(img.part is not None or img.whole_body or not img.maskable for img in images)
        root = loads(body) if in_json else None
        for img, o, new, replacement in zip(images, ocr, image_texts, masked, strict=True):
            if new == o.text:
                continue
            if replacement is None:  # a scanned PDF, or nothing masked: never send it as it was
                raise NotRewritable(f"{img.where} cannot be rewritten; block it instead")
            if img.whole_body:
                return replacement
            if img.part is not None:
                replacements[img.part] = replacement
                continue
            encoded = base64.b64encode(replacement).decode("ascii")
            put(root, img.path, f"data:{img.media_type};base64,{encoded}" if img.data_url else encoded)
        if root is None:
            return _put_parts(body, content_type, replacements) if replacements else body
        return encode_json(root)

    return ParsedRequest(parsed.format, parsed.body, segments,
                         tuple(u for u in parsed.uninspected if not covers(images, u)), write, parsed.extra)
